"""Each repeat's figures per app, from its runs: the cost line, capacity, latency at load, PSS.

The cost line: the app's CPU (workers and server, less the observer's own) against the
requests it served, over its open-loop runs at fixed rates, both as rates over the same
window (cores against requests per second); scipy fits it (least squares). Its slope is
the CPU per request at equal rates: what one more request costs. Its intercept is not the
idle cost: measured, CPU is no straight line down to idle (at 10% of capacity each
request costs two to three times what it does at 75%: a wake-up each), so the line meets
zero load well above the idle run. The idle cost is the idle run itself: the app with no
request, its observer's own CPU subtracted (its sampler, event loop and server). With one
fixed rate only, the line runs from the idle run to it.

Capacity is the closed-loop saturation throughput: the most requests per second of the
--connections levels, labelled closed-loop wherever it appears.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import NamedTuple

from pydantic import BaseModel

from compare.loadtools import LoadResult
from compare.run import Level, Run, per_1k
from compare.statistics import Margin, spread
from compare.targets import APPS

# The headline's figures, in the order the report gives them: (label, unit).
HEADLINE = {
    "cpu_ms_per_request": ("CPU per request at equal rates", "ms"),
    "idle_cpu_percent": ("idle cost", "% of a core"),
    "capacity_rps": ("capacity (closed loop)", "req/s"),
    "p99_ms_at_half": ("p99 at 50% of capacity", "ms"),
    "pss_mb": ("PSS", "MiB"),
}
# How large a difference in each is worth naming: equivalence is shown inside it (TOST).
MARGINS = {
    "cpu_ms_per_request": Margin(
        scale="ratio",
        size=0.05,
        reason="one core in twenty: less than any sizing of a deployment turns on",
    ),
    "idle_cpu_percent": Margin(
        scale="difference",
        size=0.1,
        reason="0.1% of a core is under 1.5 minutes of CPU a day: a ratio would call a few"
        " hundredths of a point large",
    ),
    "capacity_rps": Margin(
        scale="ratio",
        size=0.05,
        reason="as CPU: one request in twenty",
    ),
    "p99_ms_at_half": Margin(
        scale="ratio",
        size=0.2,
        reason="a tail read from seconds of load moves by more than this between launches"
        " of one app, and a smaller change in it is none a user notices",
    ),
    "pss_mb": Margin(
        scale="ratio",
        size=0.02,
        reason="about 1.2 MiB of 60: PSS moves by well under 1% between launches, so this"
        " is clearly measured, and no deployment's memory turns on less",
    ),
}
HALF = 0.5  # the share of capacity the headline's latency is read at
# The latency percentiles reported at each fixed rate: (name, LoadResult field).
PERCENTILES = {"p50": "latency_p50_ms", "p99": "latency_p99_ms", "p99.9": "latency_p999_ms"}


class Setting(NamedTuple):
    """What one row of the headline is about."""

    scenario: str
    workers: int
    pool_size: int | None = None  # the database's connections per worker, where swept


class CostLine(BaseModel):
    """CPU against load for one app in one repeat."""

    cpu_s_per_request: float  # slope
    intercept_cores: float  # where the line meets zero load: no idle cost
    r_squared: float
    points: int


def workers_swept(data: dict) -> bool:
    """Whether the report's settings differ in workers: then each label names them."""
    return len({row["workers"] for row in data["headline"]}) > 1


def setting_label(row: dict, workers_swept: bool) -> str:
    """How a report names a setting: its scenario, its workers where they were swept, and
    its database pool size where --pool-size set one."""
    label = f"{row['scenario']} w={row['workers']}" if workers_swept else row["scenario"]
    return label + (f" pool={row['pool_size']}" if row.get("pool_size") else "")


def settings(runs: Iterable[Run], scenarios: list[str]) -> list[Setting]:
    """The scenarios and worker levels the runs cover, in the plan's order."""
    found = {
        Setting(r.level.scenario, r.level.workers, r.level.pool_size)
        for r in runs
        if r.level.scenario
    }
    return sorted(found, key=lambda s: (s.workers, s.pool_size or 0, scenarios.index(s.scenario)))


def in_setting(run: Run, setting: Setting) -> bool:
    level = run.level
    launched = (level.workers, level.pool_size) == (setting.workers, setting.pool_size)
    return launched and level.scenario in (setting.scenario, None)


def cost_line(runs: list[Run]) -> CostLine | None:
    """The line fitted to the open-loop runs of one app in one repeat (with one fixed rate
    only: from its idle run to that rate)."""
    rates = {r.level.rate for r in runs if r.level.kind == "open"}
    kinds = ("open",) if len(rates) > 1 else ("idle", "open")
    points = [(r.served_per_s, r.net_cores) for r in runs if r.level.kind in kinds]
    if len({x for x, _ in points}) < 2:
        return None
    from scipy import stats  # imported where used: `--help` need not wait for scipy

    fit = stats.linregress([x for x, _ in points], [y for _, y in points])
    return CostLine(
        cpu_s_per_request=float(fit.slope),
        intercept_cores=float(fit.intercept),
        r_squared=round(float(fit.rvalue) ** 2, 4) if len(points) > 2 else 1.0,
        points=len(points),
    )


def idle_percent(runs: list[Run]) -> float | None:
    """The idle run's CPU, as % of a core: the app with no request, its observer subtracted."""
    idle = [r.net_cores for r in runs if r.level.kind == "idle"]
    return 100 * statistics.fmean(idle) if idle else None


def capacity(runs: list[Run]) -> float | None:
    """The closed-loop saturation throughput: the highest of the closed-loop runs' req/s."""
    closed = [r.load.requests_per_s for r in runs if r.level.kind == "closed"]
    return max(closed) if closed else None


def point(level: Level) -> float:
    """Where a fixed-rate run stands among a setting's: its share of its repeat's capacity
    where the rates were set so (each repeat sets its own), else its rate (--rate)."""
    return level.fraction if level.fraction is not None else level.rate or 0.0


def open_points(runs: Iterable[Run], setting: Setting) -> list[float]:
    """The fixed-rate points of a setting, lowest first: fractions, or rates."""
    found = {point(r.level) for r in runs if r.level.kind == "open" and in_setting(r, setting)}
    return sorted(found)


def at_point(runs: Iterable[Run], setting: Setting, where: float | None) -> list[Run]:
    """The fixed-rate runs of a setting at one point, every repeat's."""
    return [
        r
        for r in runs
        if r.level.kind == "open" and in_setting(r, setting) and point(r.level) == where
    ]


def half_point(runs: list[Run], setting: Setting) -> float | None:
    """The point the headline reads latency at: HALF of each repeat's capacity, else the
    fraction nearest it where the rates were set by fractions, else (--rate) the rate
    nearest HALF of the lower capacity (the median over repeats)."""
    points = open_points(runs, setting)
    if not points:
        return None
    if any(r.level.fraction is not None for r in at_point(runs, setting, points[0])):
        return min(points, key=lambda fraction: abs(fraction - HALF))
    lowest = []
    for repeat in {r.repeat for r in runs}:
        capacities = [capacity(of(runs, setting, app, repeat)) for app in APPS]
        if None not in capacities:
            lowest.append(min(capacities))
    if not lowest:
        return None
    target = HALF * statistics.median(lowest)
    return min(points, key=lambda rate: abs(rate - target))


def of(runs: Iterable[Run], setting: Setting, app: str, repeat: int) -> list[Run]:
    """One app's runs of a setting in one repeat, its idle run included."""
    return [r for r in runs if r.app == app and r.repeat == repeat and in_setting(r, setting)]


def pss_mb(runs: list[Run]) -> float | None:
    """The highest PSS of the app during a setting's runs: the whole app's where /status
    gives it, else its workers'."""
    whole = [r.app_pss_mb_peak for r in runs if r.level.scenario]
    if whole and None not in whole:
        return max(whole)  # type: ignore[type-var]
    workers = [r.pss_mb_peak for r in runs if r.level.scenario and r.pss_mb_peak is not None]
    return max(workers) if workers else None


def repeat_figures(runs: list[Run], half: float | None) -> dict[str, float | None]:
    """The headline figures of one app in one repeat, from its runs of one setting."""
    line = cost_line(runs)
    at_half = [r for r in runs if r.level.kind == "open" and point(r.level) == half]
    return {
        "cpu_ms_per_request": line.cpu_s_per_request * 1000 if line else None,
        "idle_cpu_percent": idle_percent(runs),
        "capacity_rps": capacity(runs),
        "p99_ms_at_half": at_half[0].load.latency_p99_ms if at_half else None,
        "pss_mb": pss_mb(runs),
    }


def per_repeat(runs: list[Run], scenarios: list[str]) -> dict[Setting, dict[str, dict]]:
    """Per setting, per headline figure, each app's values by repeat (None where a repeat
    gave none): what the estimates are made of."""
    repeats = sorted({r.repeat for r in runs})
    figures: dict[Setting, dict[str, dict]] = {}
    for setting in settings(runs, scenarios):
        half = half_point(runs, setting)
        values = {
            app: [repeat_figures(of(runs, setting, app, repeat), half) for repeat in repeats]
            for app in APPS
        }
        figures[setting] = {
            name: {app: [one[name] for one in values[app]] for app in APPS} for name in HEADLINE
        }
    return figures


def cost_lines(runs: list[Run], scenarios: list[str]) -> list[dict]:
    """Every app's cost line in every repeat, per setting: the detail behind the slope."""
    lines = []
    for setting in settings(runs, scenarios):
        for repeat in sorted({r.repeat for r in runs}):
            for app in APPS:
                mine = of(runs, setting, app, repeat)
                line = cost_line(mine)
                lines.append(
                    {
                        **setting._asdict(),
                        "app": app,
                        "repeat": repeat,
                        "line": line.model_dump() if line else None,
                        "idle_percent": idle_percent(mine),
                    }
                )
    return lines


def summary(values: list[float | None]) -> dict | None:
    """The median of the repeats' values with their min and max, for report.json."""
    found = spread(values)
    return found.model_dump() if found else None


def at_rate(runs: list[Run]) -> dict:
    """One app's figures at one fixed rate, across the repeats: its latency percentiles,
    the rate it reached, its CPU, and the runs that missed the rate (counted, and flagged)."""
    return {
        **{
            name: summary([getattr(r.load, field) for r in runs])
            for name, field in PERCENTILES.items()
        },
        "reached": summary([r.rate_reached for r in runs]),
        "cpu_ms_per_request": summary([per_1k(r.net_cpu_s, r.load.requests) for r in runs]),
        "cpu_percent": summary([100 * r.net_cores for r in runs]),
        "missed": sum(r.rate_missed for r in runs),
        "errors": sum(r.load.errors for r in runs),
    }


def latency_rows(
    runs: list[Run], scenarios: list[str], floors: dict[Setting, dict[float, LoadResult]]
) -> list[dict]:
    """Per setting and fixed rate: each app's figures there (at_rate), and openloop's own
    floor at that rate."""
    rows = []
    for setting in settings(runs, scenarios):
        for where in open_points(runs, setting):
            at = at_point(runs, setting, where)
            measured = floors.get(setting, {})
            floor = next((measured[r.level.rate] for r in at if r.level.rate in measured), None)
            rows.append(
                {
                    **setting._asdict(),
                    # Each repeat's rate at this fraction: the median of them, and all.
                    "rate": statistics.median(r.level.rate or 0.0 for r in at),
                    "rates": sorted({r.level.rate for r in at}),
                    "fraction": at[0].level.fraction,
                    "apps": {app: at_rate([r for r in at if r.app == app]) for app in APPS},
                    "floor": None
                    if floor is None
                    else {name: getattr(floor, field) for name, field in PERCENTILES.items()},
                }
            )
    return rows


def at_saturation(runs: list[Run], connections: int) -> dict:
    """One app's closed-loop figures at one --connections level, across the repeats, beside
    what follows from its throughput alone: with its core saturated, the CPU per request
    is the cores kept busy over the req/s, and p50 about the connections over the req/s
    (Little's law)."""
    answered = [r for r in runs if r.load.requests_per_s]
    return {
        "requests_per_s": summary([r.load.requests_per_s for r in runs]),
        "busy_percent": summary([100 * r.total_cpu_s / r.window_s for r in runs]),
        "cpu_ms_per_request": summary([r.total_cpu_s_per_1k for r in runs]),
        "cpu_ms_per_request_from_throughput": summary(
            [1000 * r.total_cpu_s / r.window_s / r.load.requests_per_s for r in answered]
        ),
        "p50_ms": summary([r.load.latency_p50_ms for r in runs]),
        "p50_ms_from_throughput": summary(
            [1000 * connections / r.load.requests_per_s for r in answered]
        ),
        "p99_ms": summary([r.load.latency_p99_ms for r in runs]),
        "tool_bound": sum(r.tool_bound for r in runs),
    }


def capacity_rows(runs: list[Run], scenarios: list[str]) -> list[dict]:
    """Per setting and --connections level, each app's closed-loop figures (at_saturation)."""
    rows = []
    for setting in settings(runs, scenarios):
        levels = {r.level for r in runs if r.level.kind == "closed" and in_setting(r, setting)}
        for level in sorted(levels, key=lambda level: level.connections or 0):
            at = [r for r in runs if r.level == level]
            apps = {
                app: at_saturation([r for r in at if r.app == app], level.connections or 0)
                for app in APPS
            }
            rows.append({**setting._asdict(), "connections": level.connections, "apps": apps})
    return rows
