"""What the open-loop generator prints (compare/openloop.py), one JSON object per run,
and the nearest-rank percentiles its latencies are given in. compare/loadtools.py reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    url: str
    arrivals: str
    seed: int | None
    rate_asked: float
    rate_scheduled: float
    rate_sent: float
    rate_achieved: float
    generator_missed: bool
    duration_s: float
    scheduled: int
    sent: int
    requests: int
    errors: int
    non_2xx: int
    latency_min_ms: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    latency_p999_ms: float | None
    latency_max_ms: float | None
    send_lag_p50_ms: float | None
    send_lag_p99_ms: float | None
    send_lag_max_ms: float | None
    waited_for_connection: int  # requests that found all --connections busy
    connections: int
    connections_opened: int
    timeout_s: float
    generator_cpu_s: float
    errors_by_kind: dict[str, int]


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least `percent`% of `ordered` at or below it.

    The rank is counted in whole thousandths of a percent: in floating point 99.9% of
    1,000 is 999.0000000000001, whose ceiling would be the maximum.
    """
    rank = -(-round(percent * 1000) * len(ordered) // 100_000)
    return ordered[max(rank, 1) - 1]


def ms(ordered: list[float], percent: float) -> float | None:
    return round(percentile(ordered, percent) * 1000, 3) if ordered else None
