"""How long each point of the cost line must run for its CPU to be counted well: the slope
compare fits per app and launch, and its standard error, at each run length.

    .venv/bin/python benchmarks/run_length.py [--durations 1,2,4,8,16] [--repeats 2]
        [--scenario hello] [--out results/run-length]

For each duration it runs ./compare.sh --launch --scenarios SCENARIO --repeats REPEATS
--duration D (compare's other defaults: four fixed rates, each a point of the line), then
fits each app's cost line in each launch from its report.json as compare does, and
prints per duration the median relative standard error of the slope (the noise one
launch's figure keeps from the runs' length) and the median r². The shortest duration
past which that stops falling much is long enough: the spread from launch to launch,
not the runs' length, then limits the estimate.

On the project's 2-core machine, quiet, on 2026-12-08 (granian; stopped before 16 s):

    $ APP_USER=root SERVER=granian .venv/bin/python benchmarks/run_length.py
    hello: 2 launches at each duration; compare's four rates
    seconds lines slope s.e.     r² minutes
          1     4       9.6%  0.981     1.1
          2     4       8.5%  0.985     1.5
          4     4      10.4%  0.979     2.5
          8     4      10.2%  0.978     4.3

The slope's error does not fall with the runs' length: the CPU is read to the
nanosecond (metrics/cpu.py), so even a 1 s run counts it well, and what is left is the
line's own curvature (r² 0.98: at low rates each request pays a wake-up). compare's
4 s stays: longer runs buy no precision, only fewer launches in the same time.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.failures import run_benchmark  # noqa: E402
from compare.flag_values import Parser, int_list, whole_number  # noqa: E402
from compare.plan import SCENARIOS  # noqa: E402
from compare.run import Run  # noqa: E402


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--durations", type=int_list, default="1,2,4,8,16", help="seconds of each run (1,2,4,8,16)")
    add("--repeats", type=whole_number(1), default=2, help="launches at each duration (2)")
    add("--scenario", choices=SCENARIOS, default="hello", help="the scenario loaded (hello)")
    add("--out", type=Path, default=ROOT / "results" / "run-length", help="where compare writes")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def slopes(report: dict) -> list[tuple[float, float]]:
    """Each app's cost line in each launch: (relative standard error of its slope, r²)."""
    from scipy import stats

    runs = [Run.model_validate(run) for run in report["runs"]]
    found = []
    for app in ("flask", "fastapi"):
        for repeat in sorted({run.repeat for run in runs}):
            points = [
                (run.served_per_s, run.net_cores)
                for run in runs
                if run.app == app and run.repeat == repeat and run.level.kind == "open"
            ]
            if len({x for x, _ in points}) < 3:  # a standard error needs a third point
                continue
            fit = stats.linregress(*zip(*points, strict=True))
            found.append((fit.stderr / abs(fit.slope), fit.rvalue**2))
    return found


def main() -> int:
    args = parse()
    print(f"{args.scenario}: {args.repeats} launches at each duration; compare's four rates")
    print(f"{'seconds':>7} {'lines':>5} {'slope s.e.':>10} {'r²':>6} {'minutes':>7}")
    for duration in args.durations:
        out = args.out / f"{duration}s"
        started = time.monotonic()
        argv = [
            str(ROOT / "compare.sh"),
            "--launch",
            f"--scenarios={args.scenario}",
            f"--repeats={args.repeats}",
            f"--duration={duration}",
            f"--out={out}",
        ]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode not in (0, 5):  # 5: some run's errors; the report is written
            print(done.stderr, file=sys.stderr, end="")
            return done.returncode
        found = slopes(json.loads((out / "report.json").read_text()))
        error = statistics.median(e for e, _ in found)
        fit = statistics.median(r for _, r in found)
        minutes = (time.monotonic() - started) / 60
        print(f"{duration:>7} {len(found):>5} {error:>10.1%} {fit:>6.3f} {minutes:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
