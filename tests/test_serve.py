"""End to end: both apps served for real by ./up.sh (granian) on loopback ports."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from statistics import fmean

import httpx2
import psutil
import pytest
from conftest import ROOT, processes_serving, serve

from launch import free_port

INTERVAL_S = 0.2
SLOTS = 5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = serve(
        tmp_path_factory.mktemp("serve") / "up.log",
        METRICS_INTERVAL=str(INTERVAL_S),
        METRICS_SLOTS=str(SLOTS),
    )
    yield served
    served.stop()


def get(url: str, **params) -> dict:
    response = httpx2.get(url, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def assert_summary_matches(stats: dict) -> None:
    """Every summarised figure is the min/max/avg of the samples in the same answer."""
    samples = stats["samples"]
    for block, figure in [
        ("process", "cpu_percent"),
        ("process", "cpu_time_s"),
        ("process", "rss_mb"),
        ("process", "uss_mb"),
        ("system", "cpu_percent"),
        ("system", "memory_used_mb"),
    ]:
        values = [s[block][figure] for s in samples]
        assert stats["summary"][block][figure] == {
            "min": min(values),
            "max": max(values),
            "avg": round(fmean(values), 3),
        }, (block, figure)
    windows = [s["cpu_window_s"] for s in samples]
    assert stats["summary"]["cpu_window_s"]["max"] == max(windows)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_every_endpoint_answers_over_http(served, framework):
    url = served.urls[framework]
    hello = get(url + "/")
    assert hello["framework"] == framework
    status = get(url + "/status")
    assert status["process"]["pid"] == hello["pid"]
    assert status["process"]["pids"] == [hello["pid"]]
    assert status["process"]["rss_mb"] > 10
    assert status["process"]["cpu_time_s"] > 0
    assert get(url + "/cpu", n=100) == {"n": 100, "primes": 25}
    assert get(url + "/io", ms=20) == {"ms": 20}
    assert get(url + "/json")["count"] == 20
    assert get(url + "/stats")["slots"] == SLOTS


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_errors_over_http_are_json(served, framework):
    url = served.urls[framework]
    for path, status in [("/nope", 404), ("/io?ms=-5", 422), ("/stats?last=6", 422)]:
        response = httpx2.get(url + path, timeout=10)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert "detail" in response.json()
    assert httpx2.post(url + "/cpu", timeout=10).status_code == 405


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_io_waits_as_long_as_asked(served, framework):
    start = time.monotonic()
    get(served.urls[framework] + "/io", ms=300)
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_buffer_fills_wraps_and_stays_bounded(served, framework):
    url = served.urls[framework] + "/stats"
    deadline = time.monotonic() + 15
    stats = get(url)
    while stats["count"] < SLOTS and time.monotonic() < deadline:
        assert stats["count"] == len(stats["samples"]) <= SLOTS
        time.sleep(INTERVAL_S / 2)
        stats = get(url)
    assert stats["count"] == SLOTS
    oldest = stats["samples"][0]["timestamp"]
    time.sleep(INTERVAL_S * 3)
    later = get(url)
    assert later["count"] == SLOTS  # full, and no bigger
    assert later["samples"][0]["timestamp"] > oldest  # the oldest were dropped
    stamps = [s["timestamp"] for s in later["samples"]]
    assert stamps == sorted(stamps)
    assert (later["interval_s"], later["slots"]) == (INTERVAL_S, SLOTS)
    assert later["window_s"] == pytest.approx(INTERVAL_S * SLOTS)
    assert_summary_matches(later)
    last_two = get(url, last=2)
    assert last_two["count"] == 2
    assert last_two["window_s"] == pytest.approx(INTERVAL_S * 2)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_stats_stays_correct_under_200_concurrent_requests(served, framework):
    url = served.urls[framework] + "/stats"

    async def hammer():
        limits = httpx2.Limits(max_connections=200)
        async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(client.get(url) for _ in range(200)))

    responses = asyncio.run(hammer())
    assert [r.status_code for r in responses] == [200] * 200
    for response in responses:
        stats = response.json()
        assert stats["count"] == len(stats["samples"]) <= SLOTS
        if stats["samples"]:
            assert_summary_matches(stats)


def test_two_workers_are_counted_together(served_factory):
    served = served_factory(WORKERS="2", METRICS_INTERVAL="0.2")
    for url in served.urls.values():
        # Ask until both workers have answered at least once.
        seen, deadline = set(), time.monotonic() + 15
        while len(seen) < 2 and time.monotonic() < deadline:
            with httpx2.Client() as client:  # a new connection may land on the other worker
                seen.add(client.get(url + "/").json()["pid"])
        status = get(url + "/status")
        pids = status["process"]["pids"]
        assert status["process"]["workers"] == 2
        assert len(pids) == 2 and seen <= set(pids)
        workers = [psutil.Process(pid) for pid in pids]
        assert workers[0].ppid() == workers[1].ppid()  # siblings under one granian master
        rss_mb = sum(w.memory_info().rss for w in workers) / 2**20
        cpu_s = sum(w.cpu_times().user + w.cpu_times().system for w in workers)
        assert status["process"]["rss_mb"] == pytest.approx(rss_mb, rel=0.1)
        assert status["process"]["cpu_time_s"] == pytest.approx(cpu_s, abs=0.2)
        assert status["process"]["num_threads"] >= 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_stops_every_process(served_factory, sig):
    # SIGHUP is a closed terminal: the servers lead sessions of their own and
    # would not get it, so up.sh must stop them.
    served = served_factory()
    tree = served.tree()
    assert len(tree) >= 5  # up.sh, two granian masters, a worker each
    started = time.monotonic()
    served.process.send_signal(sig)
    assert served.process.wait(15) == 0
    assert time.monotonic() - started < 10
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_a_server_dying_stops_up_sh_with_an_error(served_factory):
    served = served_factory()
    fastapi_master = next(
        p
        for p in psutil.Process(served.process.pid).children()
        if "fastapi-asgi" in " ".join(p.cmdline())
    )
    tree = served.tree()
    fastapi_master.kill()
    assert served.process.wait(15) != 0
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert "a server exited" in served.log.read_text()


def test_a_closed_stdout_stops_every_process():
    # As in ./up.sh | head -1: up.sh's first line after starting the servers
    # meets a closed pipe.
    env = up_env()
    reader, writer = os.pipe()
    os.close(reader)
    try:
        process = subprocess.Popen(
            [str(ROOT / "up.sh")], env=env, stdout=writer, stderr=subprocess.DEVNULL
        )
    finally:
        os.close(writer)
    # 141 is up.sh's own exit through stop(): its first write to stdout comes after
    # both servers started. Killed by SIGPIPE it would give -13 and leave them.
    code = process.wait(30)
    ports = [int(env["FLASK_PORT"]), int(env["FASTAPI_PORT"])]
    _, alive = psutil.wait_procs(processes_serving(ports), timeout=5)
    for left in alive:  # leave nothing behind, even when failing: the whole group,
        # with any worker forked since the listing (each server leads its own)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(left.pid), signal.SIGKILL)
    assert code == 141
    assert alive == []


def up_env(**env: str) -> dict[str, str]:
    """up.sh's environment: granian on two free ports, unless `env` says otherwise."""
    return {
        **os.environ,
        "SERVER": "granian",
        "FLASK_PORT": str(free_port()),
        "FASTAPI_PORT": str(free_port()),
        **env,
    }


def run_up(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "up.sh")], env=up_env(**env), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"METRICS_INTERVAL": "abc"}, "METRICS_INTERVAL='abc'"),
        ({"METRICS_SLOTS": "0"}, "METRICS_SLOTS='0'"),
        ({"FLASK_PORT": "http"}, "FLASK_PORT='http' is not a port number"),
        ({"FASTAPI_PORT": "70000"}, "FASTAPI_PORT='70000' is not a port number"),
        ({"FLASK_PORT": "9999", "FASTAPI_PORT": "9999"}, "are both 9999"),
        ({"WORKERS": "0"}, "WORKERS='0'"),
        ({"THREADS": "many"}, "THREADS='many'"),
        ({"SERVER": "gunicorn"}, "SERVER='gunicorn'"),
    ],
)
def test_bad_settings_stop_up_sh_before_anything_starts(env, says):
    result = run_up(**env)
    assert result.returncode == 2
    assert says in result.stderr
    assert "serves Flask" not in result.stdout
