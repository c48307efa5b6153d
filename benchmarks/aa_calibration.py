"""How often compare's estimates name a difference that does not exist: A/A comparisons of one
app against itself, per headline figure. The target is at most 5% for each.

    .venv/bin/python benchmarks/aa_calibration.py [--apps flask,fastapi] [--launches 40]
        [--size 6] [--draws 2000] [--seed 1] [--out results/aa] [--json FILE]
        [-- COMPARE_FLAG ...]
    .venv/bin/python benchmarks/aa_calibration.py --from docs/aa-calibration.json
    .venv/bin/python benchmarks/aa_calibration.py --from results/aa/flask/report.json ...

For each of --apps it runs ./compare.sh --launch --same-app APP once, with --repeats
LAUNCHES and compare's defaults otherwise (or the flags after --): LAUNCHES launches of two
instances of one app. --json writes what the rates are computed from, each headline
figure's per-launch values of both instances, so that anyone can compute them again
(--from reads that file, or compare's report.json files of such runs).

Each comparison is --size launches (compare's default --repeats), estimated as compare
does (compare.statistics.estimate: paired by launch, each figure's own margin); it names a
false difference where the 95% interval excludes no difference. PSS is left out: two
instances of one app map the same files and hold the same objects, so their PSS cannot
differ by design, and its rows would only dilute the rate. The idle cost, one idle run per
launch, is in every scenario's row: it counts once.

The rate and its interval, on independent units. The launches are the independent units
(each a launch of both instances of its own); comparisons drawn from them share launches,
so the rows of the draws are not independent and a binomial interval over them would be
far too narrow. Two intervals, both honest:

- the rate over --draws comparisons drawn at random from each run (a U-statistic of the
  launches: the mean over subsets of --size), with a delete-one jackknife over the
  launches for its variance (consistent for U-statistics; each left-out launch's rate is
  that of the draws without it), runs pooled by their rows;
- as a check, the disjoint comparisons alone: the launches split in order into
  LAUNCHES // SIZE sets, each row of each set one independent unit, with Clopper-Pearson's
  exact interval.

compare swaps the apps' places in up.sh (ports, and which server starts first) every
second launch; the script also prints, for each figure over all launches, the second
place against the first: the difference the swap keeps out.

Time: a launch of compare's default plan takes about 100 s on a 2-core machine, so 40
launches of each app take about 2 hours and 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.cli import DEFAULT_REPEATS  # noqa: E402
from compare.figures import HEADLINE, MARGINS  # noqa: E402
from compare.flag_values import Parser, positive_int, seed, whole_number  # noqa: E402
from compare.plan import APP_NAMES  # noqa: E402
from compare.statistics import DIFFERENCES, estimate  # noqa: E402

TARGET = 0.05  # the most false differences a headline figure may show
BY_DESIGN = {"pss_mb": "two instances of one app cannot differ in PSS by design"}


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


def from_report(report: dict) -> dict:
    """What a rate needs of a compare report.json of an A/A run: each headline row's
    per-launch values of both instances (a row repeating another's, once), and the places."""
    environment = report["environment"]
    rows: dict[str, dict] = {}
    for row in report["headline"]:
        for name, figure in row["figures"].items():
            if any(
                r["figure"] == name and r["per_repeat"] == figure["per_repeat"]
                for r in rows.values()
            ):
                continue  # the idle cost, in every scenario's row
            rows[f"{row['scenario']} w={row['workers']} {name}"] = {
                "figure": name,
                "per_repeat": figure["per_repeat"],
            }
    return {
        "app": environment["same_app"],
        "names": environment["names"],
        "date": environment["date"],
        "server": environment["apps"]["flask"]["server"],
        "launches": environment["repeats"]["count"],
        "first_place": environment["repeats"].get("first_place"),
        "rows": rows,
    }


def rates(run: dict, size: int, draws: int, seed: int) -> dict[str, dict]:
    """Per figure of one run: the rows of all draws, those naming a difference, the
    jackknife's left-out rates (one per launch), and the disjoint sets' rows and namings."""
    launches = run["launches"]
    draw = random.Random(seed)
    picks = [sorted(draw.sample(range(launches), size)) for _ in range(draws)]
    disjoint = [list(range(i * size, (i + 1) * size)) for i in range(launches // size)]
    found: dict[str, dict] = defaultdict(
        lambda: {
            "rows": 0,
            "named": 0,
            "left_out": [[0, 0] for _ in range(launches)],
            "sets": [0, 0],
        }
    )

    def named(per_repeat: dict, figure: str, picked: list[int]) -> bool | None:
        subset = {app: [values[i] for i in picked] for app, values in per_repeat.items()}
        result = estimate(subset, run["names"], MARGINS[figure], HEADLINE[figure][1], sized=False)
        if result.decision in ("no data", "no interval"):
            return None
        return result.decision in DIFFERENCES

    for row in run["rows"].values():
        figure = row["figure"]
        if figure in BY_DESIGN:
            continue
        tally = found[figure]
        for picked in picks:
            said = named(row["per_repeat"], figure, picked)
            if said is None:
                continue
            tally["rows"] += 1
            tally["named"] += said
            for i in set(range(launches)) - set(picked):
                tally["left_out"][i][0] += 1
                tally["left_out"][i][1] += said
        for picked in disjoint:
            said = named(row["per_repeat"], figure, picked)
            if said is not None:
                tally["sets"][0] += 1
                tally["sets"][1] += said
    return found


def verdict(rate: float, low: float) -> str:
    """Whether a figure's rate meets the target: at most it, or within the noise of it (its
    interval reaches down to it: a test at 5% names a false difference 5% of the time, so
    a rate a little over is what a right test shows half the time), or above it."""
    if rate <= TARGET:
        return "met"
    return "within its noise" if low <= TARGET else "NOT met: over the target"


def jackknife_variance(left_out: list[list[int]]) -> float:
    """The delete-one jackknife's variance of a rate from each launch's left-out counts."""
    values = [named / rows for rows, named in left_out if rows]
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    return (n - 1) / n * sum((v - mean) ** 2 for v in values)


def places(run: dict) -> list[str]:
    """Each row over all launches, the second place against the first (compare swaps the
    instances' places every second launch): what the swap keeps out of the estimates."""
    first = run["first_place"]
    if not first or len(set(first)) < 2:
        return []
    lines = []
    for label, row in run["rows"].items():
        by_place: dict[str, list] = {"flask": [], "fastapi": []}
        for i, app in enumerate(first):
            other = "fastapi" if app == "flask" else "flask"
            by_place["flask"].append(row["per_repeat"][app][i])
            by_place["fastapi"].append(row["per_repeat"][other][i])
        names = {"flask": "the first place", "fastapi": "the second"}
        found = estimate(by_place, names, MARGINS[row["figure"]], HEADLINE[row["figure"]][1])
        lines.append(f"  places, over all {run['launches']} launches: {label}: {found.words}")
    return lines


def read(path: Path, size: int) -> list[dict]:
    """--from's runs: a --json file's, or one compare report.json's; else ValueError."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--from {path}: {error}") from None
    if "runs" in document and "environment" not in document:
        found = document["runs"]  # a --json file
    elif document.get("environment", {}).get("same_app"):
        found = [from_report(document)]
    else:
        raise ValueError(f"--from {path} is no A/A comparison (compare --same-app)")
    for run in found:
        if run["launches"] < size:
            raise ValueError(f"--from {path} has fewer launches than --size {size}")
    return found


def app_list(text: str) -> list[str]:
    names = text.split(",")
    if not set(names) <= set(APP_NAMES):
        raise argparse.ArgumentTypeError(f"{text!r} is not of {','.join(APP_NAMES)}")
    return names


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--apps", type=app_list, default="flask,fastapi", help="the apps to compare with themselves"
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
        help=f"launches per comparison ({DEFAULT_REPEATS}, compare's default; 2 or more)",
    )
    add("--draws", type=positive_int, default=2000, help="comparisons drawn from each run (2000)")
    add("--seed", type=seed, default=1, help="of the draws (1)")
    add("--out", type=Path, default=ROOT / "results" / "aa", help="where compare writes")
    add("--json", type=Path, help="write the runs' per-launch values here")
    add("--from", dest="sources", type=Path, nargs="+", help="--json files or report.json files")
    add("compare_flags", nargs="*", help="after --: more flags for compare")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked, with --from's runs read (none without it)."""
    parser = flags()
    args = parser.parse_args(argv)
    if args.launches < args.size:
        parser.error(f"--launches ({args.launches}) must be at least --size ({args.size})")
    try:
        args.runs = [run for source in args.sources or [] for run in read(source, args.size)]
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs = args.runs or [
        from_report(
            json.loads(
                run_compare(app, args.launches, args.out / app, args.compare_flags).read_text()
            )
        )
        for app in args.apps
    ]
    if args.json:
        args.json.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    pooled: dict[str, dict] = defaultdict(
        lambda: {"rows": 0, "named": 0, "variance": 0.0, "sets": [0, 0]}
    )
    for run in runs:
        names = run["names"]
        print(
            f"A/A: {names['fastapi']} against {names['flask']} under {run['server']}"
            f" ({run['date']}): {run['launches']} launches; {args.draws} draws of {args.size}"
        )
        print(*places(run), sep="\n")
        for figure, tally in rates(run, args.size, args.draws, args.seed).items():
            total = pooled[figure]
            total["rows"] += tally["rows"]
            total["named"] += tally["named"]
            # Runs are independent: their rates' variances add, weighted by their rows.
            total["variance"] += tally["rows"] ** 2 * jackknife_variance(tally["left_out"])
            total["sets"][0] += tally["sets"][0]
            total["sets"][1] += tally["sets"][1]
    template = "{:<32} {:>7} {:>7} {:>15}   {:>18}   {}"
    print(
        template.format(
            "figure", "rows", "rate", "95% CI (jack.)", "disjoint: named/n", f"at most {TARGET:.0%}"
        )
    )
    for figure, total in pooled.items():
        if not total["rows"]:  # every comparison without an interval (values at 0, or none)
            print(template.format(HEADLINE[figure][0][:32], 0, "-", "-", "-", "no estimate"))
            continue
        rate = total["named"] / total["rows"]
        half = 1.96 * math.sqrt(total["variance"]) / total["rows"]
        units, named = total["sets"]
        exact = stats.binomtest(named, units).proportion_ci() if units else None
        disjoint = f"{named}/{units} ({exact.low:.1%}-{exact.high:.1%})" if exact else "-"
        print(
            template.format(
                HEADLINE[figure][0][:32],
                total["rows"],
                f"{rate:.1%}",
                f"{max(0.0, rate - half):.1%}-{rate + half:.1%}",
                disjoint,
                verdict(rate, rate - half),
            )
        )
    for figure, why in BY_DESIGN.items():
        print(f"{HEADLINE[figure][0]}: left out: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
