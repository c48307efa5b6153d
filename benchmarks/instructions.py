"""Instructions per request of the project's two apps and of the four baselines, for every
scenario, counted by valgrind's callgrind, and the parity layer's share.

    .venv/bin/python benchmarks/instructions.py [--requests 200] [--warmup 50] [--jobs 1]
        [--scenarios hello,json,io,cpu] [--io-ms 10] [--cpu-n 10000]

Each app's own callable runs in-process, with no server (compare/instructions.py
says how, and what the figure leaves out). "parity layer" is what the project's
app costs over its framework's typed baseline, whose answers are the same bytes:
the share of a figure that is this project's glue rather than the framework. The
io scenario waits as long as compare's does: the wait itself is no instructions,
but asyncio's timer and wake-up are (Flask's sleep is one system call). A count
does not move with the load on the machine; it does with the versions of Python
and of every package, and with the heap that each app's imports leave behind:
where pymalloc's pools stand moves a figure by up to 1% (2% on cpu, whose sieve
makes an integer per step) with no change to a request's code. Needs valgrind
(Debian: apt-get install valgrind). It took 3 minutes here with --jobs 2, and 6
with both cores kept busy by other work.

$ .venv/bin/python benchmarks/instructions.py --jobs 2
Instructions per request: 200 counted after 50 of warm-up,
each app's callable in-process under callgrind, with no server
                                     hello          json            io           cpu
app                                      /         /json     /io?ms=10  /cpu?n=10000
baselines/flask-plain.py           372,719       827,701       402,482     5,665,678
baselines/flask-typed.py           399,626     1,205,239       430,875     5,695,315
flask-wsgi.py                      403,762     1,210,740       432,473     5,764,586
  parity layer (over typed)          +1.0%         +0.5%         +0.4%         +1.2%
baselines/fastapi-plain.py         480,203     3,398,470       532,231     5,764,419
baselines/fastapi-typed.py         354,732       870,552       535,363     5,752,347
fastapi-asgi.py                    355,802       871,106       536,975     5,751,015
  parity layer (over typed)          +0.3%         +0.1%         +0.3%         -0.0%
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workloads  # noqa: E402
from compare import instructions  # noqa: E402
from compare.flag_values import Parser, positive_int, query_value, scenario_list  # noqa: E402
from compare.plan import BASELINE_SCENARIOS, Plan  # noqa: E402

# The apps of each framework: plain and typed baselines, then the project's app.
APPS = {
    "flask": ["baselines/flask-plain.py", "baselines/flask-typed.py", "flask-wsgi.py"],
    "fastapi": ["baselines/fastapi-plain.py", "baselines/fastapi-typed.py", "fastapi-asgi.py"],
}


def flags() -> Parser:
    parser = Parser(
        prog="benchmarks/instructions.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--requests", type=positive_int, default=200, help="counted requests per app and target")
    add("--warmup", type=positive_int, default=instructions.WARMUP, help="requests before those")
    add("--jobs", type=positive_int, default=1, help="apps counted at once (a core each)")
    # The database scenarios need a database, which the baselines do not have.
    add(
        "--scenarios",
        type=scenario_list,
        default=",".join(BASELINE_SCENARIOS),
        help="comma-separated",
    )
    # The apps' own ranges; /io?ms=0 is a wait of none, whose count leaves out the timer.
    ms, n = query_value(workloads.IoQuery, "ms"), query_value(workloads.CpuQuery, "n")
    add("--io-ms", type=ms, default=workloads.IO_MS, help="the io scenario's wait, as /io?ms=")
    add("--cpu-n", type=n, default=workloads.CPU_N, help="the cpu scenario's size, as /cpu?n=")
    add(
        "--json",
        metavar="PATH",
        type=Path,
        help="also write the counts there, as compare's reports read them from"
        f" {instructions.COMMITTED.relative_to(ROOT)}",
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags()
    args = parser.parse_args(argv)
    needing = [name for name in args.scenarios if name not in BASELINE_SCENARIOS]
    if needing:
        parser.error(f"--scenarios: {','.join(needing)} need a database, which no baseline has")
    return args


def count_all(targets: list[str], requests: int, warmup: int, jobs: int) -> dict:
    """{app: {target: Counted}} for every app, `jobs` apps at a time."""
    apps = [app for framework_apps in APPS.values() for app in framework_apps]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {
            app: pool.submit(instructions.per_request, ROOT / app, targets, requests, warmup)
            for app in apps
        }
        try:
            return {app: future.result() for app, future in futures.items()}
        finally:
            pool.shutdown(cancel_futures=True)


def main() -> int:
    args = parse()
    plan = Plan.model_construct(io_ms=args.io_ms, cpu_n=args.cpu_n)  # for its paths only
    targets = [plan.path(scenario) for scenario in args.scenarios]
    print(f"Instructions per request: {args.requests} counted after {args.warmup} of warm-up,")
    print("each app's callable in-process under callgrind, with no server")
    try:
        counted = count_all(targets, args.requests, args.warmup, args.jobs)
    except instructions.InstructionsError as error:
        print(f"benchmarks/instructions.py: {error}", file=sys.stderr)
        return 1
    templ = "{:<28}" + " {:>13}" * len(targets)
    print(templ.format("", *args.scenarios))
    print(templ.format("app", *targets))
    for framework_apps in APPS.values():
        *_, typed, project = framework_apps
        for app in framework_apps:
            print(templ.format(app, *(f"{counted[app][t].per_request:,.0f}" for t in targets)))
        shares = [counted[project][t].per_request / counted[typed][t].per_request for t in targets]
        print(templ.format("  parity layer (over typed)", *(f"{s - 1:+.1%}" for s in shares)))
    if args.json:
        args.json.write_text(json.dumps(document(args, targets, counted), indent=2) + "\n")
        print(f"written: {args.json}")
    return 0


def document(args: argparse.Namespace, targets: list[str], counted: dict) -> dict:
    """The counts per scenario, framework and style (plain, typed, and the project's app,
    which is typed), with what they were counted with."""
    scenarios = {}
    for scenario, target in zip(args.scenarios, targets, strict=True):
        scenarios[scenario] = {"target": target}
        for framework, (plain, typed, project) in APPS.items():
            scenarios[scenario][framework] = {
                "plain": round(counted[plain][target].per_request),
                "typed": round(counted[typed][target].per_request),
                "project": round(counted[project][target].per_request),
            }
    return {
        "about": "instructions per request of each app's own callable, in-process under"
        " callgrind, with no server: the framework's own cost; the project's apps are typed",
        "command": ["benchmarks/instructions.py", *sys.argv[1:]],
        "requests": args.requests,
        "warmup": args.warmup,
        "python": platform.python_version(),
        "versions": {framework: version(framework) for framework in APPS},
        "scenarios": scenarios,
    }


if __name__ == "__main__":
    sys.exit(main())
