"""compare.statistics: medians, spreads and verdicts on constructed runs."""

import pytest

from compare.loadtools import LoadResult
from compare.run import Level, Run, per_1k, reached
from compare.statistics import Spread, error_rate, spread, summarize_runs, verdict

LEVEL = Level(scenario="json", workers=1, connections=32, rate=None)
RATE_LEVEL = Level(scenario="json", workers=1, connections=32, rate=1000.0)


def make_run(app: str, requests_per_s: float, cpu_s: float = 1.0, repeat: int = 1, **fields) -> Run:
    """A run with plain figures; `fields` overrides any of them (errors and non_2xx: the load's)."""
    requests = int(requests_per_s * 10)
    load = LoadResult(
        requests=requests,
        duration_s=10.0,
        errors=fields.pop("errors", 0),
        non_2xx=fields.pop("non_2xx", 0),
        latency_p50_ms=1.0,
        latency_p90_ms=2.0,
        latency_p99_ms=fields.pop("latency_p99_ms", 3.0),
    )
    server_cpu_s = fields.pop("server_cpu_s", 0.5)
    values = {
        "level": LEVEL,
        "app": app,
        "repeat": repeat,
        "command": ["wrk"],
        "load": load,
        "cpu_s": cpu_s,
        "server_cpu_s": server_cpu_s,
        "cpu_percent_avg": cpu_s * 10,
        "total_cpu_percent_avg": (cpu_s + server_cpu_s) * 10,
        "cpu_percent_peak": None,
        "rss_mb_before": 40.0,
        "rss_mb_after": 41.0,
        "rss_mb_avg": 40.5,
        "rss_mb_peak": 41.0,
        "uss_mb_avg": 29.0,
        "uss_mb_peak": 30.0,
        "pss_mb_avg": 33.0,
        "pss_mb_peak": 34.0,
        "system_cpu_percent_avg": 50.0,
        "system_memory_used_mb_avg": 500.0,
        "workers": 1,
        "workers_changed": False,
        "cores_usable": 1.0,
        "load_tool_cpu_s": 0.5,
        "load_tool_cores": 1,
        "load_tool_busy": 0.05,
        "rate_reached": None,
        "runner_cpu_s": 0.01,
        "polls": [],
        "poll_failures": 0,
        "stats_summary": None,
    }
    return Run(**{**values, **fields})


def three_each(flask_rps, fastapi_rps, **fields) -> list[Run]:
    return [
        run
        for repeat, (flask, fastapi) in enumerate(zip(flask_rps, fastapi_rps, strict=True), 1)
        for run in (
            make_run("flask", flask, cpu_s=2.0, repeat=repeat, **fields),
            make_run("fastapi", fastapi, cpu_s=2.0, repeat=repeat, **fields),
        )
    ]


def test_cpu_seconds_per_thousand_requests():
    assert per_1k(2.5, 5000) == 0.5
    assert per_1k(1.0, 0) is None
    assert per_1k(None, 5000) is None


def test_spread_is_median_with_min_and_max_of_known_values():
    assert spread([3.0, None, 1.0, 2.0, 10.0]) == Spread(median=2.5, min=1.0, max=10.0, n=4)
    assert spread([None]) is None


def test_verdict_only_where_runs_do_not_overlap_and_medians_differ_enough():
    flask = Spread(median=100, min=95, max=105, n=3)
    assert verdict(flask, Spread(median=130, min=120, max=140, n=3)) == "FastAPI 30% higher"
    assert verdict(flask, Spread(median=80, min=70, max=90, n=3)) == "FastAPI 20% lower"
    assert verdict(flask, Spread(median=104, min=100, max=140, n=3)) == "no clear difference"
    # Apart, but by under 5%: a second run of the same comparison could flip it.
    tight = Spread(median=100, min=99.9, max=100.1, n=3)
    assert verdict(tight, Spread(median=103, min=102, max=104, n=3)).startswith(
        "no clear difference"
    )
    assert verdict(flask, Spread(median=200, min=200, max=200, n=1)).endswith("no verdict")
    assert verdict(None, flask) == "no data"


def test_summary_gives_medians_ratio_and_verdict_per_figure():
    runs = three_each([1000, 1100, 900], [1500, 1400, 1600])
    rows = {row["figure"]: row for row in summarize_runs(runs)}
    rps = rows["requests_per_s"]
    assert rps["flask"] == {"median": 1000, "min": 900, "max": 1100, "n": 3}
    assert rps["fastapi"]["median"] == 1500
    assert rps["ratio_fastapi_flask"] == 1.5
    assert rps["verdict"] == "FastAPI 50% higher"
    assert (rps["scenario"], rps["workers"], rps["connections"], rps["rate"]) == (
        "json",
        1,
        32,
        None,
    )
    per_1k_row = rows["cpu_s_per_1k"]  # the same CPU for more requests: cheaper per request
    assert per_1k_row["flask"]["median"] == pytest.approx(0.2)
    assert per_1k_row["fastapi"]["median"] == pytest.approx(2.0 / 15, abs=1e-4)
    assert per_1k_row["verdict"].endswith("lower")
    total = rows["total_cpu_s_per_1k"]  # app 2.0 + server 0.5 CPU-s
    assert total["flask"]["median"] == pytest.approx(0.25)
    assert rows["server_cpu_s_per_1k"]["flask"]["median"] == pytest.approx(0.05)
    assert rows["pss_mb_peak"]["verdict"] == "no clear difference"


def test_a_tool_bound_level_names_no_winner_on_req_s_or_latency():
    runs = three_each([1000, 1100, 900], [1500, 1400, 1600], load_tool_busy=0.95)
    rows = {row["figure"]: row for row in summarize_runs(runs)}
    for name in ("requests_per_s", "latency_p50_ms", "latency_p99_ms"):
        assert rows[name]["verdict"] == "tool-bound: no verdict"
    assert rows["cpu_s_per_1k"]["verdict"].startswith("FastAPI")  # CPU is the app's own


@pytest.mark.parametrize(
    ("level", "mark"),
    [
        (LEVEL, {"workers_changed": True}),
        (RATE_LEVEL, {"rate_reached": 900.0}),  # 10% short of the asked 1000/s
    ],
    ids=["workers_changed", "rate_missed"],
)
def test_runs_whose_workers_changed_or_rate_missed_are_left_out(level, mark):
    reached = level.rate  # every run held its rate, if it had one
    runs = three_each([1000, 1100, 900], [1500, 1400, 1600], level=level, rate_reached=reached)
    runs[0] = runs[0].model_copy(update=mark)  # a Flask run
    rows = {row["figure"]: row for row in summarize_runs(runs)}
    assert rows["requests_per_s"]["flask"]["n"] == 2
    assert rows["requests_per_s"]["runs_left_out"] == 1
    runs[2] = runs[2].model_copy(update=mark)
    rows = {row["figure"]: row for row in summarize_runs(runs)}
    assert rows["requests_per_s"]["verdict"] == "2 run(s) left out: no verdict"


def test_error_rate_counts_errors_and_non_2xx_of_all_attempts():
    assert error_rate(make_run("flask", 100, errors=10, non_2xx=40)) == 50 / 1010
    assert error_rate(make_run("flask", 0)) == 1.0  # no answer at all


def test_a_fixed_rate_level_says_which_app_missed_the_rate_and_leaves_it_out():
    level = Level(scenario="io", workers=1, connections=32, rate=500.0)
    runs = [
        make_run(app, reached, repeat=repeat, level=level, rate_reached=reached)
        for repeat in (1, 2)
        for app, reached in (("flask", 380.0), ("fastapi", 499.0))
    ]
    rows = summarize_runs(runs)
    assert rows[0]["figure"] == "rate_reached"
    assert rows[0]["flask"]["median"] == 380.0 and rows[0]["fastapi"]["median"] == 499.0
    assert rows[0]["verdict"] == "Flask missed 500/s: left out"
    by_figure = {row["figure"]: row for row in rows}
    assert by_figure["cpu_s_per_1k"]["flask"] is None
    assert by_figure["cpu_s_per_1k"]["verdict"] == "2 run(s) left out: no verdict"


def test_rate_reached_is_the_answers_over_the_span_the_app_needed_beyond_its_fastest():
    def load(requests: int, duration_s: float, fastest_ms: float) -> LoadResult:
        return LoadResult(
            requests=requests,
            duration_s=duration_s,
            errors=0,
            non_2xx=0,
            latency_p50_ms=None,
            latency_p90_ms=None,
            latency_p99_ms=None,
            latency_min_ms=fastest_ms,
        )

    # Kept up: the last answer came one 100 ms service time after the 10 s schedule.
    assert reached(load(600, 10.1, 100.0), 10) == 60.0
    # Queued: 600 answers took until 15 s.
    assert reached(load(600, 15.0, 100.0), 10) == pytest.approx(600 / 14.9, abs=0.1)


DB_LEVEL = Level(scenario="db", workers=1, connections=32, rate=None, pool_size=4)


def test_the_database_cpu_is_in_the_total_and_its_rows_only_where_counted():
    runs = [
        make_run(app, 100, level=DB_LEVEL, repeat=r, database_cpu_s=0.25, database_pss_mb_peak=30)
        for r in (1, 2)
        for app in ("flask", "fastapi")
    ]
    run = runs[0]
    assert run.total_cpu_s == pytest.approx(1.0 + 0.5 + 0.25)
    assert run.database_cpu_s_per_1k == per_1k(0.25, 1000) == 0.25
    figures = {row["figure"]: row for row in summarize_runs(runs)}
    assert figures["database_cpu_s_per_1k"]["flask"]["median"] == 0.25
    assert figures["database_pss_mb_peak"]["fastapi"]["median"] == 30
    assert "database_rss_mb_peak" not in figures  # no run had it
    assert figures["total_cpu_s_per_1k"]["flask"]["median"] == 1.75
    plain = summarize_runs([make_run("flask", 100), make_run("fastapi", 100)])
    assert not {row["figure"] for row in plain} & {"database_cpu_s_per_1k", "database_pss_mb_peak"}


def test_levels_of_a_pool_size_sweep_are_kept_apart_and_in_order():
    levels = [DB_LEVEL.model_copy(update={"pool_size": size}) for size in (8, 2, 4)]
    runs = [make_run(app, 100, level=level) for level in levels for app in ("flask", "fastapi")]
    sizes = [row["pool_size"] for row in summarize_runs(runs) if row["figure"] == "requests_per_s"]
    assert sizes == [2, 4, 8]
