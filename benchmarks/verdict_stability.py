"""Do two runs of the same comparison agree? Their verdicts, side by side.

    ./compare.sh --launch --out results/a && ./compare.sh --launch --out results/b
    .venv/bin/python benchmarks/verdict_stability.py results/a/report.json results/b/report.json

Prints every row whose verdict differs between the two reports, then counts:
rows compared, verdicts that flip direction ("higher" in one, "lower" in the
other: this must never happen), and rows that are "no clear difference" in one
report and a difference in the other. Exit code 1 if any verdict flips.
"""

import argparse
import json
import sys
from pathlib import Path

KEY = ("scenario", "workers", "connections", "rate", "figure")


def direction(verdict: str) -> str:
    """'higher', 'lower' or 'none'."""
    if verdict.startswith("FastAPI") and verdict.endswith("higher"):
        return "higher"
    if verdict.startswith("FastAPI") and verdict.endswith("lower"):
        return "lower"
    return "none"


def rows(path: Path) -> dict[tuple, str]:
    summary = json.loads(path.read_text())["summary"]
    return {tuple(row[key] for key in KEY): row["verdict"] for row in summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="report.json of the first run")
    parser.add_argument("second", type=Path, help="report.json of the second run")
    args = parser.parse_args()
    try:
        first, second = rows(args.first), rows(args.second)
    except (OSError, ValueError, KeyError) as error:
        parser.error(f"not a report.json of ./compare.sh: {error}")
    common = sorted(set(first) & set(second), key=str)
    flips = changes = 0
    for key in common:
        a, b = direction(first[key]), direction(second[key])
        if a == b:
            continue
        if "none" in (a, b):
            changes += 1
        else:
            flips += 1
        print(f"{' '.join(map(str, key))}: {first[key]!r} then {second[key]!r}")
    print(
        f"{len(common)} rows compared; {flips} verdicts flipped direction; {changes} changed"
        " between 'no clear difference' and a difference"
    )
    return 1 if flips else 0


if __name__ == "__main__":
    sys.exit(main())
