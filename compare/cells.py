"""The cells of the report's tables, written for people: an estimate with its 95%
interval, a median with its spread; and report.md's table form."""

from __future__ import annotations

from typing import Any

from compare.numbers import interval, number


def app_cell(figure: dict[str, Any], app: str) -> str:
    found = figure["apps"][app]
    return "-" if found is None else interval(found["value"], found["low"], found["high"])


def ratio_cell(figure: dict[str, Any]) -> str:
    ratio = figure["ratio"]
    return "-" if ratio is None else interval(ratio["value"], ratio["low"], ratio["high"])


def difference_cell(figure: dict[str, Any]) -> str:
    """The second app less the first, with its 95% interval: -0.021 [-0.03 to -0.012]."""
    found = figure.get("difference")
    if found is None:
        return "-"
    if found["low"] is None:
        return number(found["value"])
    return f"{number(found['value'])} [{number(found['low'])} to {number(found['high'])}]"


def spread_cell(spread: dict[str, Any] | None) -> str:
    """The median across repeats [min-max]."""
    if spread is None:
        return "-"
    if spread["n"] == 1:
        return number(spread["median"])
    return interval(spread["median"], spread["min"], spread["max"])


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
