"""The command line of the comparison, read once into a Plan that every other part receives."""

from __future__ import annotations

import argparse
import math
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import database
import workloads
from compare import loadtools
from compare.instructions import PROJECT_STYLE, STYLES
from serve.settings import DATABASE_POOL_SIZE, WORKERS

ROOT = Path(__file__).resolve().parent.parent
# The database scenarios need a database: asked by name, they are not in the default list,
# which stays the same wherever it runs.
DATABASE_SCENARIOS = ("db", "queries", "fortunes", "updates")
# Those that the baselines (baselines/) answer too: every scenario without a database.
BASELINE_SCENARIOS = ("hello", "json", "io", "cpu")
SCENARIOS = (*BASELINE_SCENARIOS, *DATABASE_SCENARIOS)
# What the default run covers, to stay within about 10 minutes on 2 cores: five launches of
# about 100 s each. Five, because a t-interval needs several (its critical value is 12.7
# at 2, 2.78 at 5): at the launch-to-launch spread of the CPU-per-request ratio measured
# on a busy, shared 2-core machine (0.09-0.14 on a log scale) five give about ±11-17%,
# enough to name the 11-24% differences earlier reports found; a quiet machine does
# better. --scenarios, --fractions and --repeats ask for more.
DEFAULT_SCENARIOS = ("hello", "json")
DEFAULT_FRACTIONS = "0.1,0.25,0.5,0.75"
DEFAULT_REPEATS = 5
APP_NAMES = {"flask": "Flask", "fastapi": "FastAPI"}


class Plan(BaseModel):
    """What to run: validated once, then passed to every part of the comparison."""

    model_config = ConfigDict(frozen=True)

    flask_url: str
    fastapi_url: str
    launch: bool
    same_app: Literal["flask", "fastapi"] | None  # an A/A comparison: that app on both ports
    # The apps compared: the project's (typed), or the baselines of one response style.
    style: Literal["project", "plain", "typed"] = "project"
    workers: list[int]  # with launch: one level per entry (a worker sweep when several)
    # With launch: database connections per worker, one launch per entry (a pool-size
    # sweep when several); None: conf.json's.
    pool_sizes: list[int] | None = None
    tool: Literal["wrk", "ab", "hey"]  # the closed-loop runs' load tool
    scenarios: list[str]
    connections: list[int]  # closed-loop levels (a connection sweep when several)
    fractions: list[float]  # open-loop rates as shares of the lower closed-loop capacity
    rates: list[float] | None  # open-loop rates given instead of fractions
    arrivals: Literal["poisson", "uniform"]
    seed: int | None  # of the open-loop arrivals; None: drawn, and reported
    duration_s: int
    warmup_s: int
    repeats: int  # with launch: independent launches; else rounds against the same apps
    poll_s: float
    io_ms: int
    cpu_n: int
    queries_n: int = 20
    updates_n: int = 5
    max_error_rate: float
    pin: bool | None  # None: pin where there are cores enough
    out: Path

    def path(self, scenario: str) -> str:
        return {
            "hello": "/",
            "json": "/json",
            "io": f"/io?ms={self.io_ms}",
            "cpu": f"/cpu?n={self.cpu_n}",
            "db": "/db",
            "queries": f"/queries?n={self.queries_n}",
            "fortunes": "/fortunes",
            "updates": f"/updates?n={self.updates_n}",
        }[scenario]

    @property
    def names(self) -> dict[str, str]:
        """What the report calls the app on each port: Flask and FastAPI, or in an A/A
        comparison the one app's A (the Flask port) and B (the FastAPI port)."""
        if self.same_app:
            return {
                app: f"{APP_NAMES[self.same_app]} {ab}"
                for app, ab in zip(APP_NAMES, "AB", strict=True)
            }
        return dict(APP_NAMES)

    @property
    def styles(self) -> dict[str, str]:
        """Each port's app's response style: plain (dicts) or typed (pydantic models)."""
        style = PROJECT_STYLE if self.style == "project" else self.style
        return dict.fromkeys(APP_NAMES, style)

    @property
    def uses_database(self) -> bool:
        return any(scenario in DATABASE_SCENARIOS for scenario in self.scenarios)


def positive_int(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def number(text: str, valid, says: str) -> float:
    """text as a float for which valid(value) holds, else an error that says what it takes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {says}")
    return value


def positive_float(text: str) -> float:
    return number(text, lambda value: 0 < value < math.inf, "a number above 0")


def distinct(values: list, text: str) -> list:
    """`values`, read from `text`, unless one of them is there twice."""
    if len(values) != len(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a level")
    return values


def int_list(text: str) -> list[int]:
    return distinct([positive_int(part) for part in text.split(",")], text)


def float_list(text: str) -> list[float]:
    return distinct([positive_float(part) for part in text.split(",")], text)


def fraction_list(text: str) -> list[float]:
    says = "a share above 0 and at most 1 (idle is always run)"
    return distinct([number(part, lambda v: 0 < v <= 1, says) for part in text.split(",")], text)


def seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) >= 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 2**32-1")
    return int(text)


def scenario_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{','.join(unknown)!r} not of {','.join(SCENARIOS)}")
    return distinct(names, text)


def fraction(text: str) -> float:
    return number(text, lambda value: 0 <= value <= 1, "a share from 0 to 1")


# compare.sh's exit codes and what each means: --help lists them from here.
EXIT_DONE = 0
EXIT_BAD_FLAGS = 2
EXIT_TARGET = 3
EXIT_LOAD_TOOL = 4
EXIT_ERRORS = 5
EXIT_CODES = {
    EXIT_DONE: "done",
    EXIT_BAD_FLAGS: "a bad flag or value, named in one line",
    EXIT_TARGET: "a target is unreachable, is not one of these apps, both URLs serve the same"
    " app (or, with --same-app, not that app, or one instance), the apps cannot be launched,"
    " --pin cannot keep the load tool on cores of its own, or the database scenarios have"
    " no database (it says how to get one)",
    EXIT_LOAD_TOOL: "the load tool is missing (it says how to install it) or failed",
    EXIT_ERRORS: "a run's errors and non-2xx answers passed --max-error-rate (the report is"
    " still written, and says which run)",
}
# Stopped by signal N, as a shell reports it: a launch is stopped on the way out.
EXIT_SIGNAL_BASE = 128
INTERRUPTED = (
    "stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 a closed terminal); no report written"
)


def exit_codes() -> str:
    """The exit codes as --help lists them, each meaning wrapped under its code."""
    rows = [*EXIT_CODES.items(), (f"{EXIT_SIGNAL_BASE}+N", INTERRUPTED)]
    return "exit codes:\n" + "\n".join(
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<7}", subsequent_indent=" " * 9)
        for code, meaning in rows
    )


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line naming the flag, and exit 2, as every script of this project does."""
        self.exit(EXIT_BAD_FLAGS, f"{self.prog}: {message} (--help lists every option)\n")


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
    add("--flask", metavar="URL", default="http://127.0.0.1:8080", help="the Flask app" + default)
    add(
        "--fastapi",
        metavar="URL",
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
    add("--io-ms", metavar="MS", type=int, default=10, help="the io scenario's /io?ms=" + default)
    add(
        "--cpu-n",
        metavar="N",
        type=int,
        default=10_000,
        help="the cpu scenario's /cpu?n=" + default,
    )
    add(
        "--queries-n",
        metavar="N",
        type=int,
        default=20,
        help="the queries scenario's /queries?n=" + default,
    )
    add(
        "--updates-n",
        metavar="N",
        type=int,
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
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more seconds")
    if not 0.2 <= args.poll <= 60:
        parser.error("--poll must be between 0.2 and 60 seconds")
    for flag, check in [
        ("--io-ms", lambda: workloads.IoQuery(ms=args.io_ms)),
        ("--cpu-n", lambda: workloads.CpuQuery(n=args.cpu_n)),
        ("--queries-n", lambda: database.RowsQuery(n=args.queries_n)),
        ("--updates-n", lambda: database.RowsQuery(n=args.updates_n)),
    ]:
        try:
            check()
        except ValidationError as error:
            parser.error(f"{flag}: {error.errors()[0]['msg']}")
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
    )
