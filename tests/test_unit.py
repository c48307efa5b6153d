"""Both apps under a real NGINX Unit, started by the real up.sh with the real conf.json.

These run wherever unitd is on PATH (or UNITD names it) and skip elsewhere:
Unit is in no package registry this project's CI can reach.
"""

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import httpx2
import psutil
import pytest
from conftest import ROOT, running
from full_buffer import served_full
from test_serve import (
    assert_a_killed_worker_is_replaced,
    assert_a_stop_drains,
    assert_a_stop_past_the_grace_period_says_so,
    assert_clients_giving_up_hold_flask_only_within_the_bound,
    assert_full_stats_keeps_each_worker_within_the_bound,
    assert_hostile_clients_starve_no_app,
    assert_the_apps_run_as_nobody,
    assert_two_instances_of_one_app,
    nobody_can_serve,
    run_by_root,
)

from serve.conf import load_conf

UNITD = os.environ.get("UNITD", "unitd")

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(
        shutil.which(UNITD) is None,
        reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
    ),
]


@pytest.fixture
def unit(served_factory):
    def start(frameworks: dict[str, str] | None = None, **env: str):
        return served_factory(frameworks=frameworks, SERVER="unit", UNITD=UNITD, **env)

    return start


def test_both_ports_serve_every_endpoint_under_unit(unit):
    served = unit(METRICS_INTERVAL="0.2", METRICS_SLOTS="5")
    for framework, url in served.urls.items():
        hello = httpx2.get(url + "/", timeout=10)
        assert hello.json()["framework"] == framework
        assert hello.headers["server"].startswith("Unit")
        status = httpx2.get(url + "/status", timeout=10).json()
        assert status["process"]["pids"] == [hello.json()["pid"]]
        assert httpx2.get(url + "/json", timeout=10).json()["count"] == 20
        assert httpx2.get(url + "/io", params={"ms": 5}, timeout=10).json() == {"ms": 5}
        assert httpx2.get(url + "/cpu", params={"n": 100}, timeout=10).json()["primes"] == 25
        assert httpx2.get(url + "/nope", timeout=10).status_code == 404
        assert httpx2.get(url + "/io", params={"ms": -1}, timeout=10).status_code == 422
        time.sleep(0.5)
        stats = httpx2.get(url + "/stats", timeout=10).json()
        assert stats["slots"] == 5 and stats["count"] >= 1  # METRICS_* reached the app


def test_two_processes_show_two_pids(unit):
    served = unit(WORKERS="2")
    for url in served.urls.values():
        # Unit starts the second process after the first answers; give it a moment.
        deadline = time.monotonic() + 15
        status = httpx2.get(url + "/status", timeout=10).json()
        while status["process"]["workers"] < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            status = httpx2.get(url + "/status", timeout=10).json()
        assert status["process"]["workers"] == 2
        workers = [psutil.Process(pid) for pid in status["process"]["pids"]]
        titles = {" ".join(w.cmdline()).strip() for w in workers}
        assert len(titles) == 1 and titles.pop().endswith('" application')


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_apps_serves_one_app_twice_as_two_unit_applications(unit, framework):
    module = load_conf(ROOT / "conf.json")["applications"][framework]["module"]
    served = unit(dict.fromkeys(("flask", "fastapi"), framework), APPS=f"{module},{module}")
    assert_two_instances_of_one_app(served, framework)
    titles = {
        " ".join(p.info["cmdline"] or []).strip() for p in running(served.tree(), ["cmdline"])
    }
    assert {'unit: "flask" prototype', 'unit: "fastapi" prototype'} <= titles


@pytest.mark.parametrize("style", ["plain", "typed"])
def test_the_observed_baselines_serve_under_unit_as_compare_style_asks(unit, style):
    # compare --style: Unit finds each baseline's app in its module's own names.
    served = unit(APPS=f"baselines.observed.flask_{style},baselines.observed.fastapi_{style}")
    for framework, url in served.urls.items():
        hello = httpx2.get(url + "/", timeout=10)
        assert hello.json()["framework"] == framework
        assert hello.headers["server"].startswith("Unit")
        assert httpx2.get(url + "/json", timeout=10).json()["count"] == 20
        status = httpx2.get(url + "/status", timeout=10).json()
        assert status["process"]["pids"] == [hello.json()["pid"]]
        # The server's own processes, counted as for the project's apps: the whole cost.
        assert f'unit: "{framework}" prototype' in status["server"]["names"]


def test_each_apps_memory_counts_its_prototype_and_the_shared_processes_apart(unit):
    served = unit()
    statuses = {
        app: httpx2.get(url + "/status", timeout=10).json() for app, url in served.urls.items()
    }
    for app, status in statuses.items():
        server = status["server"]
        names = dict(zip(server["pids"], server["names"], strict=True))
        own = [names[pid] for pid in server["pids"] if pid not in server["shared_pids"]]
        shared = sorted(names[pid].partition(" v")[0] for pid in server["shared_pids"])
        assert own == [f'unit: "{app}" prototype']
        assert shared == ["unit: controller", "unit: main", "unit: router"]
        # Here Unit runs as the tests' user, so the kernel gives every PSS.
        prototype = psutil.Process(server["pids"][0]).memory_full_info().pss / 2**20
        assert server["pss_mb"] == pytest.approx(prototype, rel=0.2)
        assert server["shared_pss_mb"] > 0
        assert status["app_pss_mb"] == round(status["process"]["pss_mb"] + server["pss_mb"], 2)
        # Unit's CPU clocks read to the microsecond, not in ticks of 10 ms.
        assert round(server["cpu_time_s"], 2) != server["cpu_time_s"] or server["cpu_time_s"] == 0
    assert (
        statuses["flask"]["server"]["shared_pids"] == statuses["fastapi"]["server"]["shared_pids"]
    )


def test_a_conf_unit_rejects_stops_up_sh_with_units_message(served_factory, tmp_path):
    broken = json.loads((ROOT / "conf.json").read_text())
    broken["applications"]["flask"]["limits"]["timeout"] = "soon"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    from test_serve import run_up  # the same runner as the granian settings tests

    result = run_up(SERVER="unit", UNITD=UNITD, UNIT_CONF=str(tmp_path / "broken.json"))
    assert result.returncode == 1
    assert "NGINX Unit rejected the configuration" in result.stderr
    assert "timeout" in result.stderr  # Unit's own words about what is wrong


def test_sigterm_stops_unit_and_every_app_process(unit):
    served = unit()
    tree = running(served.tree(), ["cmdline"])  # up.sh's last readiness probe may be ending
    assert any("prototype" in " ".join(p.info["cmdline"] or []) for p in tree)
    unitd = next(p for p in tree if "--statedir" in (p.info["cmdline"] or []))
    state = Path(unitd.info["cmdline"][unitd.info["cmdline"].index("--statedir") + 1])
    assert (state / "conf.json").exists()  # Unit saved what up.sh applied...
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(20) == 0
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []
    assert not state.exists()  # ...and up.sh removed it: no saved listeners at the next start


def test_idle_and_slow_connections_are_closed_and_starve_no_app_under_unit(unit):
    assert_hostile_clients_starve_no_app(unit())


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_a_killed_app_process_is_replaced_and_the_other_app_never_notices(unit, app):
    served = unit()
    assert_a_killed_worker_is_replaced(served, app, workers=1)
    assert served.stop() == 0


def test_sigterm_answers_the_longest_request_and_a_queue_under_unit(unit):
    # Unit's own SIGTERM would cut them all off: up.sh drains through the control API.
    assert_a_stop_drains(unit(THREADS="2"), threads=2)


def test_a_stop_that_outlasts_the_grace_period_says_so_under_unit(unit):
    log = assert_a_stop_past_the_grace_period_says_so(unit(THREADS="1"))
    assert re.search(r"Unit still had \d+ connection\(s\) with a request", log)


@run_by_root
def test_run_by_root_the_apps_and_units_router_run_as_nobody(unit):
    assert_the_apps_run_as_nobody(unit(**nobody_can_serve()), server_roots=["unit: main "])


def test_clients_giving_up_on_io_hold_flask_only_within_the_bound_under_unit(unit):
    assert_clients_giving_up_hold_flask_only_within_the_bound(unit())


def test_clients_of_the_full_stats_keep_each_worker_within_the_bound_under_unit(unit, tmp_path):
    assert_full_stats_keeps_each_worker_within_the_bound(unit(**served_full(tmp_path)))
