"""The command line of the comparison, read once into a Plan that every other part receives."""

from __future__ import annotations

import argparse
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import workloads
from compare import loadtools
from serve.config import WORKERS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("hello", "json", "io", "cpu")


class Plan(BaseModel):
    """What to run: validated once, then passed to every part of the comparison."""

    model_config = ConfigDict(frozen=True)

    flask_url: str
    fastapi_url: str
    launch: bool
    workers: list[int]  # with launch: one level per entry (a worker sweep when several)
    tool: Literal["wrk", "ab", "hey"]
    scenarios: list[str]
    connections: list[int]  # one level per entry (a connection sweep when several)
    rate: list[float] | None  # fixed request rates: equal work for both apps
    duration_s: int
    warmup_s: int
    repeats: int
    poll_s: float
    io_ms: int
    cpu_n: int
    max_error_rate: float
    pin: bool | None  # None: pin where there are cores enough
    out: Path

    def path(self, scenario: str) -> str:
        return {
            "hello": "/",
            "json": "/json",
            "io": f"/io?ms={self.io_ms}",
            "cpu": f"/cpu?n={self.cpu_n}",
        }[scenario]

    @property
    def load_tool(self) -> str:
        """The tool that generates the load: the open-loop generator at fixed rates."""
        return loadtools.OPEN_LOOP if self.rate else self.tool


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


def distinct(values: list) -> list:
    if len(values) != len(set(values)):
        raise argparse.ArgumentTypeError(f"{values} repeats a level")
    return values


def int_list(text: str) -> list[int]:
    return distinct([positive_int(part) for part in text.split(",")])


def float_list(text: str) -> list[float]:
    return distinct([positive_float(part) for part in text.split(",")])


def scenario_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{unknown} not of {','.join(SCENARIOS)}")
    return distinct(names)


def fraction(text: str) -> float:
    return number(text, lambda value: 0 <= value <= 1, "a share from 0 to 1")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line naming the flag, and exit 2, as every script of this project does."""
        self.exit(2, f"{self.prog}: {message} (--help lists every option)\n")


def parse(argv: list[str] | None = None) -> Plan:
    """The Plan the flags describe; a bad flag exits 2 with one line naming it."""
    parser = Parser(
        prog="compare.sh",
        description="Loads the Flask and the FastAPI app identically and reports their"
        " CPU and RAM cost side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--flask", default="http://127.0.0.1:8080", help="URL of the Flask app")
    add("--fastapi", default="http://127.0.0.1:8081", help="URL of the FastAPI app")
    add(
        "--launch",
        action="store_true",
        help="start both apps here with ./up.sh (Unit where unitd is on PATH, else granian)",
    )
    add(
        "--workers",
        type=int_list,
        default=[1],
        help="with --launch: workers per app; several (1,2,4) make a worker sweep",
    )
    add("--tool", choices=loadtools.TOOLS, default="wrk", help="load generator")
    add(
        "--scenarios",
        type=scenario_list,
        default=list(SCENARIOS),
        help=f"comma-separated, of {','.join(SCENARIOS)}",
    )
    add(
        "--connections",
        type=int_list,
        default=[32],
        help="comma-separated levels; several (16,32,64,128,256,512) make a connection sweep;"
        " with --rate, the most connections the generator may open",
    )
    add(
        "--rate",
        type=float_list,
        help="fixed request rates per second (e.g. 500 or 200,1000): both apps get the same"
        " work from an open-loop generator, and are compared at equal load",
    )
    add("--duration", type=positive_int, default=10, help="seconds of each counted run")
    add("--warmup", type=int, default=2, help="seconds of load per app before counting (0: none)")
    add("--repeats", type=positive_int, default=3, help="counted runs per app and level")
    add("--poll", type=float, default=1.0, help="seconds between /status polls during a run")
    add("--io-ms", type=int, default=10, help="the io scenario's wait, as /io?ms=")
    add("--cpu-n", type=int, default=10_000, help="the cpu scenario's size, as /cpu?n=")
    add(
        "--max-error-rate",
        type=fraction,
        default=0.01,
        help="share of errors and non-2xx answers above which the exit code is 5",
    )
    pinning = parser.add_mutually_exclusive_group()
    pinning.add_argument(
        "--pin",
        dest="pin",
        action="store_true",
        default=None,
        help="the load tool on cores of its own, the apps on the others (the default where"
        " there are 2 cores or more; against running apps, the cores their /status does not"
        " list)",
    )
    pinning.add_argument(
        "--no-pin", dest="pin", action="store_false", help="the load tool and apps share cores"
    )
    add("--out", type=Path, help="report directory (default: results/<timestamp>)")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more seconds")
    if not 0.2 <= args.poll <= 60:
        parser.error("--poll must be between 0.2 and 60 seconds")
    try:
        workloads.IoQuery(ms=args.io_ms)
        workloads.CpuQuery(n=args.cpu_n)
    except ValidationError as error:
        first = error.errors()[0]
        parser.error(f"--{'io-ms' if first['loc'][0] == 'ms' else 'cpu-n'}: {first['msg']}")
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
        workers=args.workers,
        tool=args.tool,
        scenarios=args.scenarios,
        connections=args.connections,
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        repeats=args.repeats,
        poll_s=args.poll,
        io_ms=args.io_ms,
        cpu_n=args.cpu_n,
        max_error_rate=args.max_error_rate,
        pin=args.pin,
        out=args.out or ROOT / "results" / datetime.now().strftime("%Y%m%d-%H%M%S"),
    )
