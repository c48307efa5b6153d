"""How often compare's estimates call a difference that does not exist: A/A comparisons of one
app against itself, counted over the headline rows. The target is at most 5%.

    .venv/bin/python benchmarks/aa_calibration.py [--app flask] [--launches 20] [--size 5]
        [--draws 2000] [--seed 1] [--out results/aa-flask] [-- COMPARE_FLAG ...]
    .venv/bin/python benchmarks/aa_calibration.py --from results/aa-flask/report.json

It runs ./compare.sh --launch --same-app APP once, with --repeats LAUNCHES and compare's
defaults otherwise (or the flags after --): LAUNCHES launches of two instances of one
app. From those it forms --draws comparisons of --size launches each (compare's default
--repeats), drawn at random without replacement within each, and estimates every
headline figure of every scenario as compare does (compare.statistics.estimate, paired
by launch). A row calls a difference when its words name one: the interval excludes 1
and does not lie within ±5%. With --from it reads a report.json of such a run instead.

What it assumes: the launches are exchangeable, so that any --size of them make a
comparison as a run with --repeats SIZE would (each launch independent of the others,
no drift across the run; the rates were set once, in the first launch, as in any run).
The draws share launches, so they are not independent: the confidence interval printed
for the rate counts only as many comparisons as there are disjoint sets of --size
launches (LAUNCHES // SIZE per row), which makes it wide but honest. Time: a launch of
compare's default plan takes about 2 minutes on a 2-core machine, so 20 take about 40.

Measured on this project's shared 2-core machine, busy with other work (a made-up
session: FILL IN on a quiet machine, and the README quotes its rate):

    $ .venv/bin/python benchmarks/aa_calibration.py --from results/aa-flask/report.json
    A/A: Flask A against Flask B, 20 launches, 2000 draws of 5
    figure                            rows  differences  rate
    ...
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.cli import APP_NAMES, DEFAULT_REPEATS  # noqa: E402
from compare.statistics import estimate  # noqa: E402

TARGET = 0.05  # the most false differences a headline row may show
DIFFERENCES = ("lower", "higher")


def run_compare(app: str, launches: int, out: Path, extra: list[str]) -> Path:
    """./compare.sh --launch --same-app app with `launches` repeats; its report.json."""
    argv = [
        str(ROOT / "compare.sh"),
        "--launch",
        f"--same-app={app}",
        f"--repeats={launches}",
        f"--out={out}",
        *extra,
    ]
    print(" ".join(argv), flush=True)
    done = subprocess.run(argv)
    if done.returncode not in (0, 5):  # 5: some run's errors; the report is written
        sys.exit(f"aa_calibration.py: compare exited {done.returncode}")
    return out / "report.json"


def headline_values(report: dict) -> dict[tuple[str, int, str], dict[str, list]]:
    """Each headline row's per-launch values of both instances: (scenario, workers, figure)."""
    return {
        (row["scenario"], row["workers"], name): figure["per_repeat"]
        for row in report["headline"]
        for name, figure in row["figures"].items()
    }


def calibrate(report: dict, size: int, draws: int, seed: int) -> list[tuple[str, int, int]]:
    """Per headline figure: its label, the rows estimated and those calling a difference."""
    names = report["environment"]["names"]
    values = headline_values(report)
    launches = len(next(iter(values.values()))["flask"])
    if size > launches:
        sys.exit(f"aa_calibration.py: --size {size} is more than the {launches} launches")
    draw = random.Random(seed)
    rows: Counter[str] = Counter()
    called: Counter[str] = Counter()
    labels = {
        name: figure["label"]
        for row in report["headline"]
        for name, figure in row["figures"].items()
    }
    for _ in range(draws):
        picked = sorted(draw.sample(range(launches), size))
        for (_, _, name), per_launch in values.items():
            subset = {app: [per_launch[app][i] for i in picked] for app in per_launch}
            found = estimate(subset, names)
            if found.decision in ("no data", "no interval"):
                continue
            rows[name] += 1
            called[name] += found.decision in DIFFERENCES
    return [(labels[name], rows[name], called[name]) for name in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=tuple(APP_NAMES), default="flask", help="(flask)")
    parser.add_argument("--launches", type=int, default=20, help="launches to run (20)")
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"launches per comparison ({DEFAULT_REPEATS})",
    )
    parser.add_argument("--draws", type=int, default=2000, help="comparisons drawn (2000)")
    parser.add_argument("--seed", type=int, default=1, help="of the draws (1)")
    parser.add_argument("--out", type=Path, help="compare's report directory")
    parser.add_argument("--from", dest="source", type=Path, help="a report.json to read instead")
    parser.add_argument("compare_flags", nargs="*", help="after --: more flags for compare")
    args = parser.parse_args()
    if args.size < 2 or args.launches < args.size or args.draws < 1:
        parser.error(
            "need --size of 2 or more, --launches of at least --size, --draws of 1 or more"
        )
    source = args.source or run_compare(
        args.app, args.launches, args.out or ROOT / "results" / f"aa-{args.app}", args.compare_flags
    )
    try:
        report = json.loads(source.read_text())
    except (OSError, ValueError) as error:
        parser.error(f"--from: {error}")
    if not report["environment"].get("same_app"):
        parser.error(f"{source} is no A/A comparison (compare --same-app)")
    launches = report["environment"]["repeats"]["count"]
    results = calibrate(report, args.size, args.draws, args.seed)
    names = report["environment"]["names"]
    print(
        f"A/A: {names['fastapi']} against {names['flask']}, {launches} launches,"
        f" {args.draws} draws of {args.size}"
    )
    templ = "{:<34} {:>6} {:>12} {:>7}"
    print(templ.format("figure", "rows", "differences", "rate"))
    for label, rows, called in results:
        print(templ.format(label, rows, called, f"{called / rows:.1%}" if rows else "-"))
    rows = sum(r for _, r, _ in results)
    called = sum(c for _, _, c in results)
    rate = called / rows if rows else 0.0
    disjoint = (launches // args.size) * len([r for _, r, _ in results if r])
    ci = stats.binomtest(round(rate * disjoint), disjoint).proportion_ci() if disjoint else None
    print(templ.format("all headline rows", rows, called, f"{rate:.1%}"))
    if ci:
        print(
            f"95% CI of the rate, as from {disjoint} independent rows"
            f" ({launches // args.size} disjoint comparisons per row): {ci.low:.1%}-{ci.high:.1%}"
        )
    print(f"target: at most {TARGET:.0%}: {'met' if rate <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
