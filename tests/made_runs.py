"""Runs made to measure, for the tests of what the runner computes from them."""

from compare.loadtools import LoadResult
from compare.run import Level, Run

WINDOW_S = 10.0


def level(kind: str, scenario: str | None = "hello", **fields) -> Level:
    connections = {"idle": None, "closed": 32, "open": 32}[kind]
    return Level(
        kind=kind,
        scenario=None if kind == "idle" else scenario,
        workers=fields.pop("workers", 1),
        connections=fields.pop("connections", connections),
        **fields,
    )


def make_run(
    app: str,
    at: Level,
    served_per_s: float,
    cores: float,
    repeat: int = 1,
    **fields,
) -> Run:
    """A run of `app` at level `at` that served served_per_s for WINDOW_S, keeping `cores`
    busy (workers and server together, a fifth of it the server's); `fields` overrides the
    rest (latency_p99_ms and latency_p999_ms, errors and non_2xx: the load's)."""
    requests = round(served_per_s * WINDOW_S)
    load = LoadResult(
        requests=requests,
        duration_s=WINDOW_S,
        errors=fields.pop("errors", 0),
        non_2xx=fields.pop("non_2xx", 0),
        latency_p50_ms=None if at.kind == "idle" else 1.0,
        latency_p90_ms=None if at.kind == "idle" else 2.0,
        latency_p99_ms=None if at.kind == "idle" else fields.pop("latency_p99_ms", 3.0),
        latency_p999_ms=None if at.kind == "idle" else fields.pop("latency_p999_ms", 5.0),
        rate_scheduled=at.rate,
    )
    total_cpu_s = cores * WINDOW_S
    values = {
        "level": at,
        "app": app,
        "repeat": repeat,
        "order": 1,
        "seed": None,
        "command": [] if at.kind == "idle" else ["wrk"],
        "load": load,
        "window_s": WINDOW_S,
        "cpu_s": total_cpu_s * 0.8,
        "server_cpu_s": total_cpu_s * 0.2,
        "observer_cpu_s": None,
        "cpu_percent_avg": cores * 80,
        "total_cpu_percent_avg": cores * 100,
        "cpu_percent_peak": None,
        "rss_mb_before": 40.0,
        "rss_mb_after": 41.0,
        "rss_mb_avg": 40.5,
        "rss_mb_peak": 41.0,
        "uss_mb_avg": 29.0,
        "uss_mb_peak": 30.0,
        "pss_mb_avg": 33.0,
        "pss_mb_peak": fields.pop("pss_mb_peak", 34.0),
        "app_pss_mb_peak": None,
        "system_cpu_percent_avg": 50.0,
        "system_memory_used_mb_avg": 500.0,
        "workers": 1,
        "workers_changed": False,
        "cores_usable": 1.0,
        "load_tool_cpu_s": 0.5,
        "load_tool_cores": 1,
        "load_tool_busy": 0.05,
        "rate_reached": served_per_s if at.kind == "open" else None,
        "runner_cpu_s": 0.01,
        "polls": [],
        "poll_failures": 0,
        "stats_summary": None,
    }
    return Run(**{**values, **fields})


def comparison(
    slopes_ms: dict[str, list[float]],
    idle_percent: dict[str, float],
    capacities: dict[str, list[float]],
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75),
    scenario: str = "hello",
    idle: bool = True,
) -> list[Run]:
    """Every run of a comparison whose apps lie exactly on their cost lines: in repeat i, app
    a costs slopes_ms[a][i] ms per request over idle_percent[a] % of a core, and saturates
    at capacities[a][i] req/s. The rates are the fractions of each repeat's lower capacity.
    Without `idle`, no idle runs: those of another scenario's comparison serve."""
    runs = []
    for index in range(len(next(iter(slopes_ms.values())))):
        repeat = index + 1
        lower = min(values[index] for values in capacities.values())
        rates = [share * lower for share in fractions]
        for app, slopes in slopes_ms.items():
            cores_idle = idle_percent[app] / 100
            if idle:
                runs.append(make_run(app, level("idle"), 0.0, cores_idle, repeat))
            top = capacities[app][index]
            runs.append(make_run(app, level("closed", scenario), top, 1.0, repeat))
            for share, rate in zip(fractions, rates, strict=True):
                at = level("open", scenario, rate=rate, fraction=share)
                cores = cores_idle + slopes[index] / 1000 * rate
                runs.append(make_run(app, at, rate, cores, repeat, latency_p99_ms=share * 10))
    return runs
