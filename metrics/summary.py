"""The summary of /stats: min, max and avg of every numeric figure of the samples.

The runner summarises the samples of each run the same way (compare/measure.py), so
this module, like the schema, needs neither psutil nor the sampler.
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

# Keys of a sample that are identifiers or labels, not figures to summarise.
NOT_FIGURES = frozenset(
    {"timestamp", "time", "pid", "pids", "version", "cpu_affinity", "pool_size", "pools"}
)

FigurePath = tuple[str, ...]


def figures(row: dict[str, Any]) -> dict[FigurePath, float | int | None]:
    """The numeric figures of a dumped snapshot by their path, None where a figure or
    a whole block is null; identifiers and labels (NOT_FIGURES) left out."""
    found: dict[FigurePath, float | int | None] = {}

    def walk(block: dict[str, Any], path: FigurePath) -> None:
        for key, value in block.items():
            if key in NOT_FIGURES:
                continue
            if isinstance(value, dict):
                walk(value, (*path, key))
            elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
                found[(*path, key)] = value

    walk(row, ())
    return found


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """min, max and avg of every numeric figure of `rows` (dumped snapshots), nested alike."""
    columns: dict[FigurePath, list[float | int]] = {}
    for row in rows:
        for path, value in figures(row).items():
            columns.setdefault(path, []).extend([] if value is None else [value])
    return summarize_columns(columns)


def summarize_columns(
    columns: dict[FigurePath, list[float | int]], integers: frozenset[FigurePath] = frozenset()
) -> dict[str, Any]:
    """min, max and avg of each column of figures, nested by path; a column with no
    values (its figure, or its block, null in every row) is null. The `integers` get
    integer min and max."""
    summary: dict[str, Any] = {}
    for path, values in columns.items():
        *parents, key = path
        block = summary
        for parent in parents:
            if block.get(parent) is None:  # a block null so far, or not met yet
                block[parent] = {}
            block = block[parent]
        if not values:
            block.setdefault(key, None)
            continue
        low, high = min(values), max(values)
        if path in integers:
            low, high = int(low), int(high)
        block[key] = {"min": low, "max": high, "avg": round(fmean(values), 3)}
    return summary
