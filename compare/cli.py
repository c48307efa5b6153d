"""The command line of the comparison, read once into a Plan that every other part receives."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import database
import workloads
from compare import loadtools, pool
from compare.exits import EXIT_ERRORS, EXIT_TARGET, exit_codes
from compare.flag_values import (
    Parser,
    app_url,
    float_list,
    fraction,
    fraction_list,
    int_list,
    positive_int,
    query_value,
    scenario_list,
    seed,
)
from compare.instructions import STYLES
from compare.plan import APP_NAMES, BASELINE_SCENARIOS, DATABASE_SCENARIOS, SCENARIOS, Plan
from serve.settings import DATABASE_POOL_SIZE, WORKERS

ROOT = Path(__file__).resolve().parent.parent
# What the default run covers, to stay within about 12 minutes on 2 cores: six launches of
# about 100 s each. Several, because a t-interval needs them (its critical value is 12.7 at
# 2, 2.57 at 6); an even number, so that the apps' two places (ports, which server starts
# first), swapped every second launch, balance 3:3 (with five they split 3:2 and a place's
# effect stays in the ratio). At the launch-to-launch spread of the CPU-per-request ratio
# measured on a busy, shared 2-core machine (0.09-0.14 on a log scale) six give about
# ±10-16%; a quiet machine does better. --scenarios, --fractions and --repeats ask for more.
DEFAULT_SCENARIOS = ("hello", "json")
DEFAULT_FRACTIONS = "0.1,0.25,0.5,0.75"
DEFAULT_REPEATS = 6


def parse(argv: list[str] | None = None) -> Plan:
    """The Plan the flags describe; a bad flag exits 2 with one line naming it.

    A list's default is given as it is typed ("hello,json"): argparse reads it
    with the list's type, and --help shows it as written.
    """
    parser = Parser(
        prog="compare.sh",
        description="Loads the Flask and the FastAPI app identically and estimates what FastAPI"
        " costs\nagainst Flask in CPU and RAM, each figure a ratio with its 95% confidence"
        " interval\nacross independent launches of both apps.",
        epilog=exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    default = " (default: %(default)s)"
    add(
        "--flask",
        metavar="URL",
        type=app_url,
        default="http://127.0.0.1:8080",
        help="the Flask app" + default,
    )
    add(
        "--fastapi",
        metavar="URL",
        type=app_url,
        default="http://127.0.0.1:8081",
        help="the FastAPI app" + default,
    )
    add(
        "--launch",
        action="store_true",
        help="start both apps here with ./up.sh (Unit where unitd is on PATH, else granian),"
        " anew for every repeat",
    )
    add(
        "--same-app",
        choices=tuple(APP_NAMES),
        help="an A/A comparison: this app against itself, two instances served the same way"
        " (with --launch: on both ports; else --flask and --fastapi must serve it), to see"
        " how often the estimates call a difference that does not exist",
    )
    add(
        "--style",
        choices=("project", *STYLES),
        default="project",
        help="with --launch: the project's apps (flask-wsgi.py, fastapi-asgi.py: typed), or"
        " the baselines (baselines/) of one response style, each framework written as its"
        " documentation teaches it plainly (dicts) or typed (pydantic models), served the"
        f" same way and measured whole; they answer {','.join(BASELINE_SCENARIOS)}" + default,
    )
    add(
        "--workers",
        metavar="N[,N...]",
        type=int_list,
        default="1",
        help="with --launch: workers per app; several (1,2,4) make a worker sweep" + default,
    )
    add(
        "--tool",
        choices=loadtools.TOOLS,
        default="wrk",
        help="load generator of the closed-loop capacity runs" + default,
    )
    add(
        "--scenarios",
        metavar="NAME[,NAME...]",
        type=scenario_list,
        default=",".join(DEFAULT_SCENARIOS),
        help=f"which endpoints to load, of {','.join(SCENARIOS)}; the database ones need"
        " a database (with --launch: PostgreSQL's server here, or DATABASE_URL)" + default,
    )
    add(
        "--pool-size",
        metavar="N[,N...]",
        type=int_list,
        help="with --launch and database scenarios only: database connections per worker;"
        " several (2,4,8) make a pool-size sweep, a launch of each in every repeat (default:"
        " conf.json's"
        " DATABASE_POOL_SIZE)",
    )
    add(
        "--connections",
        metavar="N[,N...]",
        type=int_list,
        default="32",
        help="connections of the closed-loop capacity runs, one level or several (16,32,64:"
        " a sweep; capacity is the highest); the most the open-loop generator may open" + default,
    )
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument(
        "--fractions",
        metavar="F[,F...]",
        type=fraction_list,
        default=DEFAULT_FRACTIONS,
        help="open-loop rates, as shares of the lower of the two apps' closed-loop capacity"
        " measured in the first repeat; the same rates for both apps, and idle besides" + default,
    )
    rates.add_argument(
        "--rate",
        metavar="R[,R...]",
        type=float_list,
        help="open-loop rates in requests per second, instead of --fractions",
    )
    add(
        "--arrivals",
        choices=("poisson", "uniform"),
        default="poisson",
        help="open-loop arrivals: at random (poisson) or evenly spaced" + default,
    )
    add(
        "--seed",
        metavar="N",
        type=seed,
        help="the seed of the random arrivals, to repeat them (default: drawn, and reported)",
    )
    add(
        "--duration",
        metavar="S",
        type=positive_int,
        default=4,
        help="seconds of each counted run" + default,
    )
    add(
        "--warmup",
        metavar="S",
        type=int,
        default=2,
        help="seconds of closed-loop load per app and scenario before counting, 0 for none"
        + default,
    )
    add(
        "--repeats",
        metavar="N",
        type=positive_int,
        default=DEFAULT_REPEATS,
        help="independent repeats: with --launch each is a launch of both apps of its own;"
        " against running apps, rounds against the same launch" + default,
    )
    add(
        "--poll",
        metavar="S",
        type=float,
        default=1.0,
        help="seconds between /status polls during a run" + default,
    )
    add(
        "--io-ms",
        metavar="MS",
        type=query_value(workloads.IoQuery, "ms"),
        default=10,
        help="the io scenario's /io?ms=" + default,
    )
    add(
        "--cpu-n",
        metavar="N",
        type=query_value(workloads.CpuQuery, "n"),
        default=10_000,
        help="the cpu scenario's /cpu?n=" + default,
    )
    add(
        "--queries-n",
        metavar="N",
        type=query_value(database.RowsQuery, "n"),
        default=20,
        help="the queries scenario's /queries?n=" + default,
    )
    add(
        "--updates-n",
        metavar="N",
        type=query_value(database.RowsQuery, "n"),
        default=5,
        help="the updates scenario's /updates?n=" + default,
    )
    add(
        "--max-error-rate",
        metavar="SHARE",
        type=fraction,
        default=0.01,
        help="share of errors and non-2xx answers above which the exit code is"
        f" {EXIT_ERRORS}" + default,
    )
    pinning = parser.add_mutually_exclusive_group()
    pinning.add_argument(
        "--pin",
        dest="pin",
        action="store_true",
        default=None,
        help="the load tool on cores of its own, the apps on the others, or exit"
        f" {EXIT_TARGET} where it cannot (default: pinned where there are 2 cores or more;"
        " against running apps, the load tool on the cores their /status does not list)",
    )
    pinning.add_argument(
        "--no-pin", dest="pin", action="store_false", help="the load tool and apps share cores"
    )
    add("--out", metavar="DIR", type=Path, help="report directory (default: results/<timestamp>)")
    add(
        "--from",
        dest="sources",
        metavar="REPORT",
        type=Path,
        nargs="+",
        help="run nothing: pool the reports of earlier --launch runs (batches: their folders"
        " or report.json files, two or more) into one estimate per figure, the batch a random"
        " effect, with the spread between batches; only --out goes with it",
    )
    args = parser.parse_args(argv)
    if args.sources:
        defaults = vars(parser.parse_args([]))
        given = [
            action.option_strings[0]
            for action in parser._actions
            if action.dest not in ("sources", "out", "help")
            and getattr(args, action.dest) != defaults[action.dest]
        ]
        if given:
            parser.error(f"--from runs nothing: {', '.join(given)} would do nothing with it")
        try:
            pool.read_batches(args.sources)
        except ValueError as error:
            parser.error(str(error))
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more seconds")
    if not 0.2 <= args.poll <= 60:
        parser.error("--poll must be between 0.2 and 60 seconds")
    if args.pool_size:
        if not args.launch:
            parser.error("--pool-size needs --launch: running apps have the pools they have")
        if max(args.pool_size) > DATABASE_POOL_SIZE.high:
            parser.error(f"--pool-size must be {DATABASE_POOL_SIZE.range}")
        others = [name for name in args.scenarios if name not in DATABASE_SCENARIOS]
        if others:
            parser.error(
                f"--pool-size sizes the database's pools: {','.join(others)} would run once per"
                f" size for nothing; give database scenarios only ({','.join(DATABASE_SCENARIOS)})"
            )
    if args.style != "project":
        if not args.launch:
            parser.error("--style needs --launch: running apps are the apps they are")
        if args.same_app:
            parser.error("--style compares two frameworks' baselines: not with --same-app")
        others = [name for name in args.scenarios if name not in BASELINE_SCENARIOS]
        if others:
            parser.error(
                f"--style {args.style}: the baselines answer {','.join(BASELINE_SCENARIOS)},"
                f" not {','.join(others)}"
            )
    if max(args.workers) > WORKERS.high:
        parser.error(f"--workers must be {WORKERS.range}")
    if args.workers != [1] and not args.launch:
        parser.error("--workers needs --launch: running apps have the workers they have")
    if not args.launch and args.flask.rstrip("/") == args.fastapi.rstrip("/"):
        parser.error("--flask and --fastapi are the same URL: both would be one app")
    if args.rate and max(args.rate) > loadtools.OPEN_LOOP_MAX_RATE:
        parser.error(
            f"--rate must be at most {loadtools.OPEN_LOOP_MAX_RATE:g} requests per second"
            " (the open-loop generator's honest limit on one core)"
        )
    return Plan(
        flask_url=args.flask.rstrip("/"),
        fastapi_url=args.fastapi.rstrip("/"),
        launch=args.launch,
        same_app=args.same_app,
        style=args.style,
        workers=args.workers,
        pool_sizes=args.pool_size,
        tool=args.tool,
        scenarios=args.scenarios,
        connections=args.connections,
        fractions=[] if args.rate else args.fractions,
        rates=args.rate,
        arrivals=args.arrivals,
        seed=args.seed,
        duration_s=args.duration,
        warmup_s=args.warmup,
        repeats=args.repeats,
        poll_s=args.poll,
        io_ms=args.io_ms,
        cpu_n=args.cpu_n,
        queries_n=args.queries_n,
        updates_n=args.updates_n,
        max_error_rate=args.max_error_rate,
        pin=args.pin,
        out=args.out or ROOT / "results" / datetime.now().strftime("%Y%m%d-%H%M%S"),
        sources=args.sources,
    )
