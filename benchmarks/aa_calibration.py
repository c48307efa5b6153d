"""How often compare's estimates call a difference that does not exist: A/A comparisons of one
app against itself, counted over the headline rows. The target is at most 5%.

    .venv/bin/python benchmarks/aa_calibration.py [--apps flask,fastapi] [--launches 40]
        [--size 5] [--draws 2000] [--seed 1] [--out results/aa] [-- COMPARE_FLAG ...]
    .venv/bin/python benchmarks/aa_calibration.py --from results/aa/flask/report.json ...

For each of --apps it runs ./compare.sh --launch --same-app APP once, with --repeats
LAUNCHES and compare's defaults otherwise (or the flags after --): LAUNCHES launches of
two instances of one app. From those it forms --draws comparisons of --size launches
each (compare's default --repeats), drawn at random without replacement within each,
and estimates every headline row as compare does (compare.statistics.estimate, paired
by launch). A row calls a difference when its words name one: the interval excludes 1
and does not lie within ±5%. The idle cost, one idle run per launch, is in every
scenario's row: it counts once. With --from it reads report.json files of such runs
instead, and pools them. compare swaps the apps' places in up.sh (ports, and which server
starts first) every second launch; the script also prints, for each figure over all the
launches, FASTAPI_PORT's place against FLASK_PORT's: the difference the swap keeps out.

What it assumes: the launches are exchangeable, so that any --size of them make a
comparison as a run with --repeats SIZE would (each launch independent of the others,
no drift across the run; the rates were set once, in the first launch, as in any
run). The draws share launches, so they are not independent: the rate's confidence
interval (Clopper-Pearson) counts only as many comparisons as there are disjoint sets
of --size launches, LAUNCHES // SIZE per row, which makes it wide but honest: 40
launches of each app give 144 rows, and at a rate near 2% an interval up to about 6%.
Time: a launch of compare's default plan takes about 100 s on a 2-core machine, so 40
launches of each app take about 2 hours and 15 minutes.

On this project's shared 2-core machine, busy with other work (load average 5-9 on 2
cores), from 12 launches of Flask against itself (shared-machine figures: the README
quotes those of a quiet machine):

    $ .venv/bin/python benchmarks/aa_calibration.py --from results/aa-flask-12/report.json
    A/A: Flask B against Flask A: 12 launches; 2000 draws of 5
    figure                               rows  differences    rate
    CPU per request at equal rates       4000           70    1.8%
    idle cost                            2000           57    2.9%
    capacity (closed loop)               4000          107    2.7%
    p99 at 50% of capacity               4000           43    1.1%
    PSS                                  4000            0    0.0%
    all headline rows                   18000          277    1.5%
    95% CI of the rate, as from 18 independent rows (disjoint comparisons of 5 launches): 0.0%-18.5%
    target: at most 5%: met
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

from compare.cli import DEFAULT_REPEATS  # noqa: E402
from compare.flag_values import Parser, positive_int, seed, whole_number  # noqa: E402
from compare.plan import APP_NAMES  # noqa: E402
from compare.statistics import Estimate, estimate  # noqa: E402

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
    """Each headline row's per-launch values of both instances: (scenario, workers, figure).
    A row that repeats another's values (the idle cost: one idle run per launch, in every
    scenario's row) counts once."""
    values: dict[tuple[str, int, str], dict[str, list]] = {}
    for row in report["headline"]:
        for name, figure in row["figures"].items():
            seen = [v for (_, _, other), v in values.items() if other == name]
            if figure["per_repeat"] not in seen:
                values[row["scenario"], row["workers"], name] = figure["per_repeat"]
    return values


def calibrate(report: dict, size: int, draws: int, seed: int) -> tuple[Counter, Counter]:
    """Per headline figure: the rows estimated over all draws, and those calling a difference."""
    names = report["environment"]["names"]
    values = headline_values(report)
    launches = report["environment"]["repeats"]["count"]
    draw = random.Random(seed)
    rows: Counter[str] = Counter()
    called: Counter[str] = Counter()
    for _ in range(draws):
        picked = sorted(draw.sample(range(launches), size))
        for (_, _, name), per_launch in values.items():
            subset = {app: [per_launch[app][i] for i in picked] for app in per_launch}
            found = estimate(subset, names)
            if found.decision in ("no data", "no interval"):
                continue
            rows[name] += 1
            called[name] += found.decision in DIFFERENCES
    return rows, called


def places(report: dict) -> list[tuple[str, Estimate]]:
    """Each headline figure of all launches, as FASTAPI_PORT's place against FLASK_PORT's
    (compare swaps the apps' places every second launch): what the swap keeps out of the
    estimates. Reports without the swap (before it) give nothing."""
    first = report["environment"]["repeats"].get("first_place")
    if not first or len(set(first)) < 2:
        return []
    found = []
    for (scenario, _, name), per_launch in headline_values(report).items():
        by_place = {"flask": [], "fastapi": []}
        for i, app in enumerate(first):
            other = "fastapi" if app == "flask" else "flask"
            by_place["flask"].append(per_launch[app][i])
            by_place["fastapi"].append(per_launch[other][i])
        names = {"flask": "FLASK_PORT's", "fastapi": "FASTAPI_PORT's"}
        found.append((f"{scenario} {name}", estimate(by_place, names)))
    return found


def read(path: Path, size: int) -> dict:
    """--from's report.json of an A/A comparison of at least `size` launches; else ValueError."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--from {path}: {error}") from None
    if not report.get("environment", {}).get("same_app"):
        raise ValueError(f"--from {path} is no A/A comparison (compare --same-app)")
    if report["environment"]["repeats"]["count"] < size:
        raise ValueError(f"--from {path} has fewer launches than --size {size}")
    return report


def app_list(text: str) -> list[str]:
    names = text.split(",")
    if not set(names) <= set(APP_NAMES):
        raise argparse.ArgumentTypeError(f"{text!r} is not of {','.join(APP_NAMES)}")
    return names


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--apps",
        type=app_list,
        default="flask,fastapi",
        help="the apps to compare with themselves (both)",
    )
    add(
        "--launches",
        type=positive_int,
        default=40,
        help="launches of each app (40; --size or more)",
    )
    add(
        "--size",
        type=whole_number(2),  # an interval needs two launches
        default=DEFAULT_REPEATS,
        help=f"launches per comparison ({DEFAULT_REPEATS}; 2 or more)",
    )
    add("--draws", type=positive_int, default=2000, help="comparisons drawn from each run (2000)")
    add("--seed", type=seed, default=1, help="of the draws (1)")
    add(
        "--out",
        type=Path,
        default=ROOT / "results" / "aa",
        help="where compare writes (results/aa)",
    )
    add("--from", dest="sources", type=Path, nargs="+", help="report.json files to read instead")
    add("compare_flags", nargs="*", help="after --: more flags for compare")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked, with --from's reports read (reports: none without it)."""
    parser = flags()
    args = parser.parse_args(argv)
    if args.launches < args.size:
        parser.error(f"--launches ({args.launches}) must be at least --size ({args.size})")
    try:
        args.reports = [read(source, args.size) for source in args.sources or []]
    except ValueError as error:
        parser.error(str(error))
    return args


def main() -> int:
    args = parse()
    reports = args.reports or [
        read(run_compare(app, args.launches, args.out / app, args.compare_flags), args.size)
        for app in args.apps
    ]
    rows: Counter[str] = Counter()
    called: Counter[str] = Counter()
    labels, independent = {}, 0
    for report in reports:
        environment = report["environment"]
        launches = environment["repeats"]["count"]
        print(
            f"A/A: {environment['names']['fastapi']} against {environment['names']['flask']}:"
            f" {launches} launches; {args.draws} draws of {args.size}"
        )
        found_rows, found_called = calibrate(report, args.size, args.draws, args.seed)
        rows.update(found_rows)
        called.update(found_called)
        independent += (launches // args.size) * len(headline_values(report))
        for row, found in places(report):
            ratio = found.ratio
            interval = f" [{ratio.low:.3g}-{ratio.high:.3g}]" if ratio and ratio.low else ""
            value = f"{ratio.value:.3g}{interval}" if ratio else "-"
            print(f"  places, over all {launches} launches: {row}: second/first {value}")
        labels |= {n: f["label"] for row in report["headline"] for n, f in row["figures"].items()}
    templ = "{:<34} {:>6} {:>12} {:>7}"
    print(templ.format("figure", "rows", "differences", "rate"))
    for name, count in rows.items():
        print(templ.format(labels[name], count, called[name], f"{called[name] / count:.1%}"))
    total, false = sum(rows.values()), sum(called.values())
    rate = false / total if total else 0.0
    print(templ.format("all headline rows", total, false, f"{rate:.1%}"))
    if independent:
        ci = stats.binomtest(round(rate * independent), independent).proportion_ci()
        print(
            f"95% CI of the rate, as from {independent} independent rows (disjoint comparisons"
            f" of {args.size} launches): {ci.low:.1%}-{ci.high:.1%}"
        )
    print(f"target: at most {TARGET:.0%}: {'met' if rate <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
