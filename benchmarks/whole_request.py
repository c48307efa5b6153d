"""Instructions per request of the whole serving stack, server and every process it starts
included, for both apps under granian and NGINX Unit, with the kernel's side of the same
requests (system calls and context switches).

    .venv/bin/python benchmarks/whole_request.py [--servers granian,unit]
        [--styles project,plain,typed] [--scenarios hello,json,...] [--connections 1,16]
        [--requests 200] [--warmup 300] [--no-kernel-side] [--json docs/whole-request.json]

compare/whole_request.py says how a count is taken. For each server and style, one launch
of ./up.sh under callgrind counts every case; one launch without counts each case's
system calls and context switches (project style only). A case is a scenario's target on
a number of connections: every scenario on the first --connections; io and the database's
on each (their waits overlap there). The database's scenarios need one, as up.sh finds it
(DATABASE, DATABASE_URL); the baselines (styles plain and typed) have none. Beside each
count: the same app's own callable in-process (compare/instructions.py), so that what the
server and its interface add around it shows. Under Unit, VENV and UNITD as for ./up.sh;
VENV's Python runs both servers' apps and the in-process counts. Needs valgrind, vgdb
(valgrind's) and strace, and ptrace: root, or one's own processes where ptrace is allowed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import database  # noqa: E402
import workloads  # noqa: E402
from compare import instructions, whole_request  # noqa: E402
from compare.callgrind_control import ControlError  # noqa: E402
from compare.failures import run_benchmark  # noqa: E402
from compare.flag_values import Parser, int_list, positive_int, query_value, scenario_list  # noqa: E402
from compare.instructions import InstructionsError  # noqa: E402
from compare.keepalive import ClientError  # noqa: E402
from compare.kernel_side import KernelSideError  # noqa: E402
from compare.loadtools import LoadToolError  # noqa: E402
from compare.plan import BASELINE_SCENARIOS, DATABASE_SCENARIOS, Plan  # noqa: E402
from compare.stack import StackError  # noqa: E402
from compare.whole_request import (  # noqa: E402
    Case,
    Counted,
    Counting,
    Failed,
    KernelCounted,
    Stack,
)
from serve.config import SERVERS  # noqa: E402
from serve.database_config import read_database  # noqa: E402
from serve.exits import Refused  # noqa: E402
from serve.settings import ConfigError, read_venv  # noqa: E402

# The scenarios whose requests wait (a sleep, the database): counted on every --connections.
WAITING = ("io", *DATABASE_SCENARIOS)
STYLES = tuple(whole_request.STYLE_APPS)
CONDITIONS = ("contended", "alone")
# Each style's app files, as compare/instructions.py counts them in-process.
APP_FILES = {
    "project": {"flask": "flask-wsgi.py", "fastapi": "fastapi-asgi.py"},
    "plain": {"flask": "baselines/flask-plain.py", "fastapi": "baselines/fastapi-plain.py"},
    "typed": {"flask": "baselines/flask-typed.py", "fastapi": "baselines/fastapi-typed.py"},
}
LOGS = ROOT / "results"


def unitd() -> str | None:
    return shutil.which(os.environ.get("UNITD") or "unitd")


def server_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of {','.join(SERVERS)}")
    return names


def condition_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if any(name not in CONDITIONS for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of {','.join(CONDITIONS)}")
    return names


def style_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in STYLES]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of {','.join(STYLES)}")
    return names


def flags() -> Parser:
    parser = Parser(
        prog="benchmarks/whole_request.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--servers",
        type=server_list,
        default="granian,unit" if unitd() else "granian",
        help="comma-separated; unit needs unitd on PATH or UNITD naming one",
    )
    add("--styles", type=style_list, default=",".join(STYLES), help="comma-separated")
    add(
        "--scenarios",
        type=scenario_list,
        default="hello,json,io,cpu,db,queries,fortunes,updates",
        help="comma-separated; the database's need one, as up.sh finds it",
    )
    add(
        "--connections",
        type=int_list,
        default="1,16",
        help="connections of each case: the first for every scenario, each for io and the"
        " database's",
    )
    add(
        "--requests",
        type=positive_int,
        default=Counting.requests,
        help=f"the most requests in each of the {whole_request.WINDOWS} windows of a count;"
        f" fewer where a request costs more than {whole_request.WINDOW_INSTRUCTIONS:.0e} /"
        f" this, but no fewer than {whole_request.MIN_REQUESTS}",
    )
    add("--warmup", type=positive_int, default=Counting.warmup, help="the most in a warm-up")
    add(
        "--conditions",
        type=condition_list,
        default=",".join(CONDITIONS),
        help="contended: a busy loop on every core while counting, so that what else runs"
        " adds little; alone: the stack with the machine to itself (run it on a quiet one)",
    )
    add(
        "--kernel-side",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count the system calls and context switches of the project's apps",
    )
    ms, n = query_value(workloads.IoQuery, "ms"), query_value(workloads.CpuQuery, "n")
    rows = query_value(database.RowsQuery, "n")
    add("--io-ms", type=ms, default=workloads.IO_MS, help="the io scenario's wait, as /io?ms=")
    add("--cpu-n", type=n, default=workloads.CPU_N, help="the cpu scenario's size, as /cpu?n=")
    add("--queries-n", type=rows, default=20, help="the queries scenario's rows")
    add("--updates-n", type=rows, default=5, help="the updates scenario's rows")
    add("--json", metavar="PATH", type=Path, help="also write the counts there")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags()
    args = parser.parse_args(argv)
    try:
        args.venv = read_venv(dict(os.environ))
        database_kind = read_database(dict(os.environ))[0]
    except ConfigError as error:
        parser.error(str(error))
    if "unit" in args.servers and not unitd():
        parser.error("--servers: unit, but no unitd is on PATH and UNITD names none")
    args.database = database_kind != "none"
    return args


def check_tools(args: argparse.Namespace) -> None:
    for name in ("valgrind", "vgdb", *(["strace"] if args.kernel_side else [])):
        if shutil.which(name) is None:
            raise LoadToolError(f"{name} is not on PATH (Debian: apt-get install valgrind strace)")


def cases(args: argparse.Namespace, style: str) -> tuple[list[Case], list[str]]:
    """The style's cases, and the scenarios left out (and why)."""
    plan = Plan.model_construct(
        io_ms=args.io_ms, cpu_n=args.cpu_n, queries_n=args.queries_n, updates_n=args.updates_n
    )
    found, left_out = [], []
    for scenario in args.scenarios:
        if scenario in DATABASE_SCENARIOS and (style != "project" or not args.database):
            why = "the baselines have no database" if style != "project" else "no database"
            left_out.append(f"{scenario} ({why})")
            continue
        levels = args.connections if scenario in WAITING else args.connections[:1]
        found += [Case(scenario, plan.path(scenario), level) for level in levels]
    return found, left_out


def versions(args: argparse.Namespace) -> dict[str, str]:
    python = str(args.venv / "bin" / "python")
    asked = subprocess.run(
        [
            python,
            "-c",
            "import json, platform; from importlib.metadata import version as v;"
            " print(json.dumps({'python': platform.python_version(), **{n: v(n) for n in"
            " ('flask', 'fastapi', 'granian', 'psycopg')}}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(asked.stdout)
    found_unitd = unitd()
    if found_unitd:
        said = subprocess.run([found_unitd, "--version"], capture_output=True, text=True).stderr
        version = re.search(r"unit version: (\S+)", said)
        found["unit"] = version[1] if version else "unknown"
    return found


def in_process(args: argparse.Namespace, app_file: str, targets: list[str]) -> dict:
    """{target: instructions} of `app_file`'s callable in-process, by VENV's python."""
    python = str(args.venv / "bin" / "python")
    counted = instructions.per_request(ROOT / app_file, targets, 200, python=python)
    return {target: found.per_request for target, found in counted.items()}


def baseline_targets(found: list[Case]) -> list[str]:
    return sorted({case.target for case in found if case.scenario in BASELINE_SCENARIOS})


def callables(args: argparse.Namespace, style: str, found: list[Case]) -> dict:
    """{app: {target: instructions}} of each app's own callable, for the cases without a
    database."""
    targets = baseline_targets(found)
    if not targets:
        return {}
    return {app: in_process(args, app_file, targets) for app, app_file in APP_FILES[style].items()}


def own_work(args: argparse.Namespace) -> dict:
    """{target: instructions} of the work behind each route that both apps do alike
    (compare/own_work.py), less the driver's own."""
    targets = baseline_targets(cases(args, "project")[0])
    if not targets:
        return {}
    counted = in_process(args, "compare/own_work.py", ["/none", *targets])
    return {target: round(counted[target] - counted["/none"], 1) for target in targets}


def per_request(values: dict, requests: int) -> dict:
    return {key: round(value / requests, 1) for key, value in values.items()}


def app_row(
    counted: Counted | Failed, kernel: KernelCounted | Failed | None, alone: float | None
) -> dict:
    if isinstance(counted, Failed):
        return {"failed": counted.reason}
    total = sum(counted.requests)
    row = {
        "per_request": round(counted.per_request, 1),
        "windows": [
            list(pair) for pair in zip(counted.requests, counted.instructions, strict=True)
        ],
        "warmup": counted.warmup,
        "each_window": [round(n, 1) for n in counted.each_window],
        "idle_others": counted.idle_others,
        "by_role": per_request(counted.by_role, total),
        "by_kind": per_request(counted.by_kind, total),
        "callable": None if alone is None else round(alone, 1),
    }
    if isinstance(kernel, Failed):
        row["kernel"] = {"failed": kernel.reason}
    elif kernel:
        row["kernel"] = {
            "requests": kernel.requests,
            "system_calls": kernel.calls,
            "context_switches": {role: list(pair) for role, pair in kernel.switches.items()},
        }
    return row


def run_server(args: argparse.Namespace, server: str, found_server: dict, save) -> None:
    """Each style and condition counted under `server`, into `found_server` (its launches
    and rows), saved after each."""

    def progress(what: str) -> None:
        print(f"  {server}: {what}", file=sys.stderr, flush=True)

    for style in args.styles:
        found, left_out = cases(args, style)
        for why in left_out:
            print(f"{server} {style}: left out {why}")
        if not found:
            continue
        alone = callables(args, style, found)
        with_database = args.database and style == "project"
        stack = Stack(server, style, {} if with_database else {"DATABASE": "none"})
        for condition in args.conditions:
            contended = condition == "contended"
            progress(f"{style}, {condition}")
            log = LOGS / f"whole-request-{server}-{style}-{condition}.log"
            counted, found_server["launches"][f"{style}, {condition}"] = whole_request.count(
                stack, found, counting(args), log, contended, progress
            )
            kernel = {}
            if args.kernel_side and style == "project":
                log = LOGS / f"whole-request-{server}-{style}-{condition}-kernel.log"
                kernel = whole_request.kernel_side(stack, counted, log, contended, progress)
            for case in found:
                row = {"style": style, "condition": condition, "scenario": case.scenario}
                row |= {"target": case.target, "connections": case.connections}
                for app in whole_request.APPS:
                    row[app] = app_row(
                        counted[case][app],
                        kernel.get(case, {}).get(app),
                        alone.get(app, {}).get(case.target) if case.connections == 1 else None,
                    )
                found_server["rows"].append(row)
            save()


def counting(args: argparse.Namespace) -> Counting:
    return Counting(requests=args.requests, warmup=args.warmup)


def main() -> int:
    args = parse()
    check_tools(args)
    print("Whole-request instructions per request: every process of the server under callgrind")
    found_versions = versions(args)
    document = {
        "about": "instructions per request of the whole serving stack, every process of the"
        " server under callgrind; the kernel's side from a native launch",
        "command": ["benchmarks/whole_request.py", *sys.argv[1:]],
        "counting": {
            "requests": args.requests,
            "warmup": args.warmup,
            "probe": whole_request.PROBE,
            "window_instructions": whole_request.WINDOW_INSTRUCTIONS,
            "warmup_instructions": whole_request.WARMUP_INSTRUCTIONS,
        },
        "versions": found_versions,
        "own_work": own_work(args),
        "servers": {},
    }

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(document, indent=2) + "\n")

    for server in args.servers:
        found_server = document["servers"][server] = {"launches": {}, "rows": []}
        try:
            run_server(args, server, found_server, save)
        except (ControlError, KernelSideError, InstructionsError) as error:
            raise LoadToolError(str(error)) from None
        except (StackError, ClientError) as error:
            raise Refused(str(error)) from None
        print_server(server, found_server, found_versions)
    if args.json:
        print(f"written: {args.json}")
    return 0


def print_server(server: str, found: dict, found_versions: dict) -> None:
    version = found_versions.get(server, "")
    print(f"\n{server} {version}, Python {found_versions['python']}: per request")
    templ = "{:<8} {:<10} {:<18} {:>4} {:>11} {:>11} {:>6}  {}"
    header = ("style", "condition", "target", "conn", "Flask", "FastAPI", "ratio")
    print(templ.format(*header, "each callable alone, F / FA"))
    for row in found["rows"]:
        flask, fastapi = row["flask"], row["fastapi"]
        cells = (row["style"], row["condition"], row["target"], row["connections"])
        failed = [
            f"{app}: {row[app]['failed']}" for app in whole_request.APPS if "failed" in row[app]
        ]
        if failed:
            print(templ.format(*cells, "-", "-", "-", "not counted: " + "; ".join(failed)))
            continue
        alone = ""
        if flask["callable"] and fastapi["callable"]:
            alone = f"{flask['callable']:,.0f} / {fastapi['callable']:,.0f}"
        counts = (flask["per_request"], fastapi["per_request"])
        ratio = f"{counts[1] / counts[0]:.3f}"
        print(templ.format(*cells, *(f"{c:,.0f}" for c in counts), ratio, alone))
    print(
        "\nthe project's apps, per request: where the instructions ran (the server's"
        " processes and code; Python: the interpreter and extensions; the C library), and"
        " the kernel's side: system calls and context switches of the stack (the database's"
        " after the slash)"
    )
    split = "{:<10} {:<18} {:>4} {:<8} {:>9} {:>9} {:>8} {:>11} {:>11}"
    print(
        split.format(
            "condition", "target", "conn", "app", "server", "Python", "system", "calls", "switches"
        )
    )
    for row in found["rows"]:
        if row["style"] != "project":
            continue
        for app in whole_request.APPS:
            if "failed" in row[app]:
                continue
            kinds = row[app]["by_kind"]
            python = kinds.get("interpreter", 0) + kinds.get("extensions", 0)
            calls, switches = kernel_cells(row[app].get("kernel"))
            cells = (row["condition"], row["target"], row["connections"], app)
            where = (kinds.get("server", 0), python, kinds.get("system", 0))
            print(split.format(*cells, *(f"{n:,.0f}" for n in where), calls, switches))


def kernel_cells(kernel: dict | None) -> tuple[str, str]:
    """System calls and context switches per request: the stack's / the database's."""
    if not kernel or "failed" in kernel:
        return "", ""
    n = kernel["requests"]

    def per(values: dict, database: bool) -> float:
        return sum(v for role, v in values.items() if (role == "database") == database) / n

    calls = {role: sum(counted.values()) for role, counted in kernel["system_calls"].items()}
    switches = {role: sum(pair) for role, pair in kernel["context_switches"].items()}
    return tuple(
        f"{per(values, False):.1f}" + (f"/{per(values, True):.1f}" if "database" in values else "")
        for values in (calls, switches)
    )


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
