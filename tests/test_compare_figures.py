"""compare.figures: each repeat's cost line, capacity, latency at half and PSS, from runs made
to measure."""

from itertools import cycle

import pytest
from made_runs import WINDOW_S, comparison, level, make_run

from compare.figures import (
    Setting,
    capacity_rows,
    cost_line,
    half_point,
    idle_percent,
    latency_rows,
    per_repeat,
    setting_label,
)
from compare.run import per_1k

HELLO = Setting("hello", 1)


def test_the_cost_line_of_open_loop_runs_on_a_line_is_that_line_and_idle_is_apart():
    # 0.2 ms of CPU per request above 6% of a core, and 0.1% with no request at all: as
    # measured, the line through the loaded runs meets zero load far above idle.
    runs = [make_run("flask", level("idle"), 0, 0.001)] + [
        make_run("flask", level("open", rate=rate), rate, 0.06 + 0.0002 * rate)
        for rate in (250.0, 500.0, 1000.0)
    ]
    line = cost_line(runs)
    assert line.cpu_s_per_request == pytest.approx(0.0002)
    assert line.intercept_cores == pytest.approx(0.06)
    assert line.r_squared == pytest.approx(1.0)
    assert line.points == 3
    assert idle_percent(runs) == pytest.approx(0.1)


def test_with_one_fixed_rate_the_line_runs_from_the_idle_run_to_it():
    runs = [
        make_run("flask", level("idle"), 0, 0.001),
        make_run("flask", level("open", rate=500.0), 500.0, 0.101),
    ]
    line = cost_line(runs)
    assert line.cpu_s_per_request == pytest.approx(0.0002)
    assert line.points == 2


def test_closed_loop_runs_stay_out_of_the_cost_line_and_give_capacity():
    runs = comparison(
        slopes_ms={"flask": [0.2], "fastapi": [0.15]},
        idle_percent={"flask": 1.0, "fastapi": 2.0},
        capacities={"flask": [5000.0], "fastapi": [6500.0]},
    )
    figures = per_repeat(runs, ["hello"])[HELLO]
    # The saturation runs (1.0 core at 5,000 and 6,500 req/s) are off both lines.
    assert figures["cpu_ms_per_request"]["flask"] == [pytest.approx(0.2)]
    assert figures["cpu_ms_per_request"]["fastapi"] == [pytest.approx(0.15)]
    assert figures["idle_cpu_percent"]["flask"] == [pytest.approx(1.0)]
    assert figures["idle_cpu_percent"]["fastapi"] == [pytest.approx(2.0)]
    assert figures["capacity_rps"] == {"flask": [5000.0], "fastapi": [6500.0]}
    assert figures["p99_ms_at_half"] == {"flask": [5.0], "fastapi": [5.0]}  # 0.5 x 10
    assert figures["pss_mb"] == {"flask": [34.0], "fastapi": [34.0]}


def test_per_repeat_keeps_each_repeat_apart_for_the_pairing():
    runs = comparison(
        slopes_ms={"flask": [0.2, 0.3, 0.25], "fastapi": [0.18, 0.27, 0.22]},
        idle_percent={"flask": 1.0, "fastapi": 1.0},
        capacities={"flask": [5000.0, 4000.0, 4500.0], "fastapi": [6000.0, 5000.0, 5500.0]},
    )
    slopes = per_repeat(runs, ["hello"])[HELLO]["cpu_ms_per_request"]
    assert slopes["flask"] == pytest.approx([0.2, 0.3, 0.25])
    assert slopes["fastapi"] == pytest.approx([0.18, 0.27, 0.22])


def test_latency_at_half_is_read_at_the_fraction_set_at_half_or_else_the_nearest():
    runs = comparison(
        slopes_ms={"flask": [0.2], "fastapi": [0.2]},
        idle_percent={"flask": 1.0, "fastapi": 1.0},
        capacities={"flask": [1000.0], "fastapi": [2000.0]},
        fractions=(0.2, 0.45, 0.8),
    )
    # No rate was set at 0.5 of the capacity: 0.45 is the nearest, 450 req/s of 1,000.
    assert half_point(runs, HELLO) == 0.45
    figures = per_repeat(runs, ["hello"])[HELLO]
    assert figures["p99_ms_at_half"] == {"flask": [4.5], "fastapi": [4.5]}  # 0.45 x 10 ms


def test_whole_app_pss_is_taken_where_every_run_gives_it():
    runs = comparison(
        slopes_ms={"flask": [0.2], "fastapi": [0.2]},
        idle_percent={"flask": 1.0, "fastapi": 1.0},
        capacities={"flask": [1000.0], "fastapi": [1000.0]},
    )
    # Each app's loaded runs in turn at these MiB, its idle run at 99 (no scenario's): the
    # figure is the highest of the scenario's runs.
    given = {"flask": cycle([50.0, 61.5, 58.0]), "fastapi": cycle([64.0, 60.0, 63.0])}
    whole = [
        run.model_copy(
            update={"app_pss_mb_peak": 99.0 if run.level.kind == "idle" else next(given[run.app])}
        )
        for run in runs
    ]
    assert sum(r.app == "flask" and r.level.kind != "idle" for r in whole) >= 3
    pss = per_repeat(whole, ["hello"])[HELLO]["pss_mb"]
    assert pss == {"flask": [61.5], "fastapi": [64.0]}


def test_a_missed_rate_is_flagged_and_its_latency_stays_in_the_figures():
    at = level("open", rate=1000.0, fraction=0.5)
    runs = [
        make_run("flask", at, 700.0, 0.5, latency_p99_ms=900.0),  # 30% short
        make_run("fastapi", at, 1000.0, 0.4, latency_p99_ms=4.0),
    ]
    assert runs[0].rate_missed and not runs[1].rate_missed
    (row,) = latency_rows(runs, ["hello"], {})
    assert row["apps"]["flask"]["missed"] == 1
    assert row["apps"]["flask"]["p99"]["median"] == 900.0
    assert row["apps"]["fastapi"]["missed"] == 0
    assert row["floor"] is None


def test_at_saturation_cpu_per_request_follows_from_the_throughput():
    runs = [make_run("flask", level("closed"), 4000.0, 0.8)]
    (row,) = capacity_rows(runs, ["hello"])
    figures = row["apps"]["flask"]
    # 0.8 of a core for 10 s is 8 CPU-s over 40,000 requests: 0.2 ms each, as 80% busy at
    # 4,000 req/s gives too; 32 connections at 4,000 req/s: p50 about 32/4000 s = 8 ms.
    assert figures["cpu_ms_per_request"]["median"] == pytest.approx(0.2)
    assert figures["cpu_ms_per_request_from_throughput"]["median"] == pytest.approx(0.2)
    assert figures["busy_percent"]["median"] == pytest.approx(80.0)
    assert figures["requests_per_s"]["median"] == pytest.approx(4000.0)
    assert figures["p50_ms_from_throughput"]["median"] == pytest.approx(8.0)


def test_cpu_seconds_per_thousand_requests():
    assert per_1k(2.5, 5000) == 0.5
    assert per_1k(1.0, 0) is None
    assert per_1k(None, 5000) is None


def test_the_observer_is_subtracted_from_the_apps_cpu_and_shown_as_its_share():
    run = make_run("flask", level("open", rate=100.0), 100.0, 0.1, observer_cpu_s=0.05)
    assert run.total_cpu_s == pytest.approx(1.0)
    assert run.net_cpu_s == pytest.approx(0.95)
    assert run.net_cores == pytest.approx(0.095)
    assert run.observer_share == pytest.approx(0.05)


def test_error_rate_counts_errors_and_non_2xx_of_all_attempts():
    at = level("open", rate=100.0)
    assert make_run("flask", at, 101.0, 0.1, errors=10, non_2xx=40).error_rate == 50 / 1020
    assert make_run("flask", level("closed"), 0.0, 0.1).error_rate == 1.0  # no answer at all
    assert make_run("flask", level("idle"), 0.0, 0.01).error_rate == 0.0  # nothing asked


def test_the_database_cpu_is_in_the_total_and_so_in_the_cost_line():
    # The app and its server keep 0.2 ms per request busy, the database beside them 0.1 ms
    # more: the cost of a request is both, as is the idle run's.
    def run(at, rate: float, database_s_per_request: float):
        database_cpu_s = 0.001 * WINDOW_S + database_s_per_request * rate * WINDOW_S
        return make_run("flask", at, rate, 0.001 + 0.0002 * rate, database_cpu_s=database_cpu_s)

    idle = run(level("idle", pool_size=4), 0.0, 0.0)
    loaded = [run(level("open", "db", rate=rate, pool_size=4), rate, 0.0001) for rate in (100, 200)]
    first = loaded[0]
    assert first.total_cpu_s == pytest.approx(
        first.cpu_s + first.server_cpu_s + first.database_cpu_s
    )
    assert first.database_cpu_s_per_1k == pytest.approx(per_1k(first.database_cpu_s, 1000))
    line = cost_line([idle, *loaded])
    assert line.cpu_s_per_request == pytest.approx(0.0003)
    assert idle_percent([idle]) == pytest.approx(0.2)  # the app's 0.1% and the database's
    # Where the database is not counted (DATABASE_URL's), the total is the app's and server's.
    alone = make_run("flask", level("open", "db", rate=100.0), 100.0, 0.03)
    assert alone.database_cpu_s is None and alone.total_cpu_s == pytest.approx(0.3)


def test_each_pool_size_is_a_setting_of_its_own_with_its_own_idle_run():
    runs = []
    for pool_size, slope_ms in ((8, 0.3), (2, 0.2)):
        for app in ("flask", "fastapi"):
            runs.append(make_run(app, level("idle", pool_size=pool_size), 0.0, 0.01))
            for rate in (100.0, 200.0):
                at = level("open", "db", rate=rate, pool_size=pool_size)
                runs.append(make_run(app, at, rate, 0.01 + slope_ms / 1000 * rate))
    found = per_repeat(runs, ["db"])
    assert list(found) == [Setting("db", 1, 2), Setting("db", 1, 8)]  # in order of size
    assert found[Setting("db", 1, 2)]["cpu_ms_per_request"]["flask"] == [pytest.approx(0.2)]
    assert found[Setting("db", 1, 8)]["cpu_ms_per_request"]["fastapi"] == [pytest.approx(0.3)]
    assert found[Setting("db", 1, 8)]["idle_cpu_percent"]["flask"] == [pytest.approx(1.0)]
    assert setting_label(Setting("db", 1, 8)._asdict(), workers_swept=False) == "db pool=8"
    assert setting_label(Setting("db", 2, None)._asdict(), workers_swept=True) == "db w=2"


def test_each_repeat_sets_its_own_rates_and_the_rows_follow_the_fraction():
    # Capacity doubles from the first launch to the second: the lower is 1,000 then 2,000
    # req/s, so the rates at 25%, 50% and 75% are 250, 500, 750 and then 500, 1,000, 1,500.
    runs = comparison(
        slopes_ms={"flask": [0.2, 0.2], "fastapi": [0.15, 0.15]},
        idle_percent={"flask": 1.0, "fastapi": 1.0},
        capacities={"flask": [1000.0, 2000.0], "fastapi": [1200.0, 2400.0]},
    )
    rows = latency_rows(runs, ["hello"], {})
    assert [(r["fraction"], r["rates"], r["rate"]) for r in rows] == [
        (0.25, [250.0, 500.0], 375.0),
        (0.5, [500.0, 1000.0], 750.0),
        (0.75, [750.0, 1500.0], 1125.0),
    ]
    assert all(row["apps"]["flask"]["p99"]["n"] == 2 for row in rows)
    figures = per_repeat(runs, ["hello"])[HELLO]
    # Each launch's p99 at its own half: 0.5 x 10 ms in both.
    assert figures["p99_ms_at_half"] == {"flask": [5.0, 5.0], "fastapi": [5.0, 5.0]}
    assert figures["cpu_ms_per_request"]["fastapi"] == [pytest.approx(0.15)] * 2
