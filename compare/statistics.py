"""The comparison's statistics: medians with their spread, ratios, and cautious verdicts."""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import BaseModel

from compare.cli import SCENARIOS
from compare.run import Level, Run
from compare.targets import APPS, NAMES

# Medians closer than this are "no clear difference" even where the runs do not
# overlap: two runs of the same comparison must not name opposite winners.
SMALLEST_DIFFERENCE = 0.05


class Spread(BaseModel):
    median: float
    min: float
    max: float
    n: int


# The figures the table and the verdicts are about: (name in Run or LoadResult, label).
FIGURES = [
    ("requests_per_s", "req/s"),
    ("latency_p50_ms", "p50 latency ms"),
    ("latency_p99_ms", "p99 latency ms"),
    ("cpu_s_per_1k", "CPU-s per 1k req: app"),
    ("server_cpu_s_per_1k", "CPU-s per 1k req: server"),
    ("database_cpu_s_per_1k", "CPU-s per 1k req: database"),
    ("total_cpu_s_per_1k", "CPU-s per 1k req: total"),
    ("cpu_percent_avg", "CPU % app (avg)"),
    ("total_cpu_percent_avg", "CPU % total (avg)"),
    ("pss_mb_peak", "PSS MiB (peak)"),
    ("rss_mb_peak", "RSS MiB (peak)"),
    ("uss_mb_peak", "USS MiB (peak)"),
    ("database_pss_mb_peak", "database PSS MiB (peak)"),
    ("database_rss_mb_peak", "database RSS MiB (peak, summed)"),
]
# Figures that only a database counted beside the apps has: no row where neither app has one.
DATABASE_FIGURES = {"database_cpu_s_per_1k", "database_pss_mb_peak", "database_rss_mb_peak"}
# What a load tool that was the bottleneck decides: no verdict on these.
TOOL_FIGURES = {"requests_per_s", "latency_p50_ms", "latency_p99_ms"}


def figure(run: Run, name: str) -> float | None:
    return getattr(run.load, name) if hasattr(run.load, name) else getattr(run, name)


def spread(values: list[float | None]) -> Spread | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Spread(median=statistics.median(known), min=min(known), max=max(known), n=len(known))


def verdict(flask: Spread | None, fastapi: Spread | None) -> str:
    """FastAPI against Flask, only where the runs do not overlap and the medians differ enough."""
    if flask is None or fastapi is None:
        return "no data"
    if min(flask.n, fastapi.n) < 2:
        return "under 2 runs each: no verdict"
    if fastapi.min > flask.max:
        direction = "higher"
    elif fastapi.max < flask.min:
        direction = "lower"
    else:
        return "no clear difference"
    if not flask.median:
        return f"FastAPI {direction}"
    change = abs(fastapi.median / flask.median - 1)
    if change < SMALLEST_DIFFERENCE:
        return f"no clear difference (under {SMALLEST_DIFFERENCE:.0%})"
    return f"FastAPI {change * 100:.0f}% {direction}"


def ratio(flask: Spread | None, fastapi: Spread | None) -> float | None:
    if flask is None or fastapi is None or not flask.median:
        return None
    return round(fastapi.median / flask.median, 3)


def level_key(level: Level) -> tuple:
    return (
        SCENARIOS.index(level.scenario),
        level.workers,
        level.pool_size or 0,
        level.rate or 0,
        level.connections,
    )


def summary_row(
    common: dict[str, Any], name: str, label: str, spreads: dict[str, Spread | None], said: str
) -> dict[str, Any]:
    return {
        **common,
        "figure": name,
        "label": label,
        "flask": spreads["flask"].model_dump() if spreads["flask"] else None,
        "fastapi": spreads["fastapi"].model_dump() if spreads["fastapi"] else None,
        "ratio_fastapi_flask": ratio(spreads["flask"], spreads["fastapi"]),
        "verdict": said,
    }


def rate_said(level: Level, group: list[Run]) -> str:
    """Which app, if any, missed the asked rate in some run."""
    missed = [NAMES[app] for app in APPS if any(r.rate_missed for r in group if r.app == app)]
    if not missed:
        return f"both held {level.rate:g}/s"
    return f"{' and '.join(missed)} missed {level.rate:g}/s: left out"


def summarize_runs(runs: list[Run]) -> list[dict[str, Any]]:
    """Per level, each figure's spread for both apps over the comparable runs, ratio, verdict.

    At a fixed rate, a first row gives the rate each app reached, over every run.
    """
    rows = []
    for level in sorted({r.level for r in runs}, key=level_key):
        group = [r for r in runs if r.level == level]
        counted = [r for r in group if r.comparable]
        left_out = len(group) - len(counted)
        tool_bound = any(r.tool_bound for r in counted)
        common = {**level.model_dump(), "runs_left_out": left_out, "tool_bound": tool_bound}

        if level.rate:
            reached = {app: spread([r.rate_reached for r in group if r.app == app]) for app in APPS}
            said = rate_said(level, group)
            rows.append(summary_row(common, "rate_reached", "req/s reached", reached, said))
        for name, label in FIGURES:
            spreads = {
                app: spread([figure(r, name) for r in counted if r.app == app]) for app in APPS
            }
            if name in DATABASE_FIGURES and not any(spreads.values()):
                continue
            said = verdict(spreads["flask"], spreads["fastapi"])
            if tool_bound and name in TOOL_FIGURES:
                said = "tool-bound: no verdict"
            elif left_out and (said.startswith("under 2") or said == "no data"):
                said = f"{left_out} run(s) left out: no verdict"
            rows.append(summary_row(common, name, label, spreads, said))
    return rows


def error_rate(run: Run) -> float:
    attempts = run.load.requests + run.load.errors
    return (run.load.errors + run.load.non_2xx) / attempts if attempts else 1.0
