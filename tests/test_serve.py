"""End to end: both apps served for real by ./up.sh (granian) on loopback ports."""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from statistics import fmean

import httpx2
import psutil
import pytest
from conftest import ROOT, processes_serving, project_copy, running, serve
from hostile import Hostile, raise_open_files

from serve.config import load_conf
from serve.launch import Launch
from serve.ports import free_port

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


def assert_two_instances_of_one_app(served: Launch, framework: str) -> None:
    """Each port serves its own instance of `framework`'s app: right answers, its own
    processes, and /status counting those alone."""
    pids = {}
    for url in served.urls.values():
        hello = get(url + "/")
        assert hello["framework"] == framework
        assert get(url + "/json")["count"] == 20
        assert get(url + "/cpu", n=100)["primes"] == 25
        pids[url] = get(url + "/status")["process"]["pids"]
        assert hello["pid"] in pids[url]
    first, second = pids.values()
    assert not set(first) & set(second)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_apps_serves_one_app_on_both_ports_for_an_a_a_comparison(served_factory, framework):
    module = load_conf(ROOT / "conf.json")["applications"][framework]["module"]
    served = served_factory(
        frameworks=dict.fromkeys(("flask", "fastapi"), framework), APPS=f"{module},{module}"
    )
    assert_two_instances_of_one_app(served, framework)
    name = {"flask": "Flask", "fastapi": "FastAPI"}[framework]
    assert f"serves {name} on http://127.0.0.1:" in served.log.read_text()
    assert f" and {name} on http://127.0.0.1:" in served.log.read_text()


def test_apps_serves_any_app_module_of_the_project_finding_its_interface(tmp_path):
    copy = project_copy(tmp_path)
    (copy / "extra").mkdir()
    (copy / "extra" / "other.py").write_text((ROOT / "fastapi-asgi.py").read_text())
    env = up_env(APPS="flask-wsgi,extra.other:app", VENV=str(ROOT / ".venv"))
    process = subprocess.Popen(
        [str(copy / "up.sh")], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        said = process.stdout.readline()
        assert " serves Flask on " in said and " and extra.other:app (FastAPI) on " in said
        masters = running(psutil.Process(process.pid).children(), ["cmdline"])
        fastapi = next(p for p in masters if env["FASTAPI_PORT"] in p.info["cmdline"])
        argv = fastapi.info["cmdline"]
        assert argv[argv.index("--interface") + 1] == "asgi"
        assert argv[-1] == "extra.other:app"
        url = f"http://127.0.0.1:{env['FASTAPI_PORT']}"
        assert get(url + "/")["framework"] == "fastapi"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@pytest.mark.parametrize(
    ("apps", "says"),
    [
        ("flask-wsgi", "APPS='flask-wsgi' names 1 app(s): one for FLASK_PORT, then one for"),
        ("flask-wsgi,fastapi-asgi,flask-wsgi", "names 3 app(s)"),
        ("flask-wsgi,../fastapi-asgi", "'../fastapi-asgi' is not module[:callable]"),
        ("flask-wsgi,fastapi-asgi.py", "'fastapi-asgi.py' is a file: name its module"),
        ("flask-wsgi,django-wsgi", "django-wsgi.py is no file of this project"),
        ("flask-wsgi,fastapi-asgi:nope", "fastapi-asgi:nope cannot be served: AttributeError"),
        ("flask-wsgi,workloads:items", "workloads:items cannot be served: it takes no"),
        ("", "APPS='': '' is not module[:callable]"),
    ],
)
def test_apps_that_cannot_be_served_stop_up_sh_before_anything_starts(apps, says):
    result = run_up(APPS=apps)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert says in line
    assert result.stdout == ""


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
        for p in running(psutil.Process(served.process.pid).children(), ["cmdline"])
        if "fastapi-asgi" in " ".join(p.info["cmdline"] or [])
    )
    tree = served.tree()
    fastapi_master.kill()
    assert served.process.wait(15) != 0
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert "a server exited" in served.log.read_text()


# More idle connections than granian's default backpressure (1,024 per worker), which
# let them stop both apps, and a few slow-header ones.
IDLE, SLOW = 1100, 5


def assert_hostile_clients_starve_no_app(served: Launch) -> None:
    """With IDLE + SLOW hostile connections open at each port, both apps answer; and
    the server closes every one of them within conf.json's header read timeout."""
    timeout_s = load_conf(ROOT / "conf.json")["settings"]["http"]["header_read_timeout"]
    needed = 2 * (IDLE + SLOW) + 256
    if raise_open_files(needed) < needed:
        pytest.skip(f"this test needs {needed} open files; the hard limit is lower")
    ports = [int(url.rsplit(":", 1)[1]) for url in served.urls.values()]
    with contextlib.ExitStack() as stack:
        hostiles = [stack.enter_context(Hostile(port, IDLE, SLOW)) for port in ports]
        time.sleep(0.5)  # connected, and the slow ones have sent their first lines
        assert [h.open for h in hostiles] == [IDLE + SLOW] * 2
        for url in served.urls.values():
            for path in ("/", "/status", "/io?ms=1"):
                # A new connection each: it has to be accepted past the hostile ones.
                assert httpx2.get(url + path, timeout=3).status_code == 200
        # Closed by the server, the slow ones too although they keep sending.
        assert [h.wait_closed(timeout_s + 5) for h in hostiles] == [True, True], [
            h.open for h in hostiles
        ]
        assert [(h.closed, h.refused) for h in hostiles] == [(IDLE + SLOW, 0)] * 2


def test_idle_and_slow_connections_are_closed_and_starve_no_app(served_factory):
    assert_hostile_clients_starve_no_app(served_factory())


class Watcher:
    """GET `url`/ every 50 ms in a thread, counting the answers that were not 200."""

    def __init__(self, url: str):
        self.url, self.answers, self.failures = url, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        with httpx2.Client(timeout=5) as client:
            while not self._stop.wait(0.05):
                try:
                    status = client.get(self.url + "/").status_code
                except httpx2.HTTPError as error:
                    status = repr(error)
                self.answers += 1
                if status != 200:
                    self.failures.append(status)


def assert_a_killed_worker_is_replaced(served: Launch, app: str, workers: int) -> None:
    """kill -9 of a worker of `app`: a new one takes its place in /status, the other app
    answers every request meanwhile, and up.sh keeps serving."""
    other = next(name for name in served.urls if name != app)
    victim = get(served.urls[app] + "/status")["process"]["pid"]
    with Watcher(served.urls[other]) as watcher:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        deadline, pids = time.monotonic() + 10, [victim]
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.HTTPError):
                pids = httpx2.get(served.urls[app] + "/status", timeout=2).json()["process"]["pids"]
                if victim not in pids and len(pids) == workers:
                    break
            time.sleep(0.05)
        time.sleep(0.3)
    assert len(pids) == workers and victim not in pids, pids
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    assert watcher.answers > 5 and watcher.failures == []
    assert served.process.poll() is None  # up.sh serves on
    assert get(served.urls[app] + "/")["pid"] in pids


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_a_killed_worker_is_replaced_and_the_other_app_never_notices(served_factory, app):
    # Two workers: granian 2.8 without --respawn-failed-workers exited when one died.
    served = served_factory(WORKERS="2")
    assert_a_killed_worker_is_replaced(served, app, workers=2)
    assert served.stop() == 0


# Put before an app's code: its import lasts until the file RELEASE exists. LOADING is
# made once it waits, and TERMED if a SIGTERM comes meanwhile, which it takes no action
# on, as a granian worker still loading the app does (it runs the copy of its master's
# handler that it was forked with, which only takes note).
LOADS_UNTIL_RELEASED = """import os as _os, signal as _signal, time as _time
_before = _signal.signal(
    _signal.SIGTERM, lambda *_: open(_os.environ["TERMED"], "w").close()
)
open(_os.environ["LOADING"], "w").close()
while not _os.path.exists(_os.environ["RELEASE"]):
    _time.sleep(0.05)
_signal.signal(_signal.SIGTERM, _before)
"""


def test_a_stop_while_a_worker_loads_the_app_waits_for_it_and_drains(tmp_path):
    # A SIGTERM to such a worker is lost, and granian's master then waits for it with
    # no limit: up.sh must not send it before the worker has loaded the app.
    copy = project_copy(tmp_path)
    app = copy / "fastapi-asgi.py"
    app.write_text(LOADS_UNTIL_RELEASED + app.read_text())
    files = {name: tmp_path / name.lower() for name in ("LOADING", "RELEASE", "TERMED")}
    env = up_env(
        VENV=os.environ.get("VENV") or str(ROOT / ".venv"),
        **{name: str(path) for name, path in files.items()},
    )
    process = subprocess.Popen(
        [str(copy / "up.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not files["LOADING"].exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        tree = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        time.sleep(1)  # a SIGTERM passed on at once would reach the worker meanwhile
        files["RELEASE"].touch()
        code = process.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
    assert not files["TERMED"].exists(), output
    assert code == 0, output
    assert "had not answered" not in output
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


CUT_OFF = ("RemoteProtocolError", "ReadError")  # how httpx2 says a request got no answer


def io_requests(url: str, waits_ms: list[int]) -> list:
    """GET url/io?ms=… for each wait at once, each on its own connection, in threads."""
    pool = ThreadPoolExecutor(len(waits_ms))

    def one(ms: int):
        try:
            return httpx2.get(f"{url}/io", params={"ms": ms}, timeout=40).json()
        except httpx2.HTTPError as error:
            return repr(error)

    futures = [pool.submit(one, ms) for ms in waits_ms]
    pool.shutdown(wait=False)
    return futures


def assert_a_stop_drains(served: Launch, threads: int) -> None:
    """SIGTERM while each app has its longest request (10 s) running and a queue longer
    than its threads: new connections are refused, every request accepted before gets
    its answer, and up.sh exits 0 once all are answered."""
    waits_ms = [10_000] + [2_000] * (2 * threads)  # the queue: 2 s each, 4 s in all
    futures = {url: io_requests(url, waits_ms) for url in served.urls.values()}
    time.sleep(1)  # every request accepted and started or queued
    tree = served.tree()
    stopped_at = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    for url in served.urls.values():
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(url + "/", timeout=3)
    for url, answers in futures.items():
        assert [f.result() for f in answers] == [{"ms": ms} for ms in waits_ms], url
    assert served.process.wait(20) == 0
    assert time.monotonic() - stopped_at < 15  # the grace period
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_sigterm_answers_the_longest_request_and_a_queue_then_stops(served_factory):
    assert_a_stop_drains(served_factory(THREADS="2"), threads=2)


def assert_a_stop_past_the_grace_period_says_so(served: Launch) -> str:
    """Flask with one thread and two 10 s requests: the second would end 20 s after they
    started, past up.sh's 15 s. SIGTERM: one is answered, the other cut off, and up.sh
    says so and exits 1, leaving nothing behind. up.sh's log."""
    answers = io_requests(served.urls["flask"], [10_000, 10_000])
    time.sleep(1)
    tree = served.tree()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(25) == 1
    results = [f.result() for f in answers]
    assert {"ms": 10_000} in results
    cut = [r for r in results if r != {"ms": 10_000}]
    assert len(cut) == 1 and cut[0].startswith(CUT_OFF), cut  # no answer: closed or reset
    log = served.log.read_text()
    assert "had not answered every request within 15 s" in log
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []
    return log


def test_a_stop_that_outlasts_the_grace_period_says_so_and_exits_1(served_factory):
    assert_a_stop_past_the_grace_period_says_so(served_factory(THREADS="1"))


def test_a_second_signal_cuts_the_drain_short_and_says_so(served_factory):
    served = served_factory()
    [answer] = io_requests(served.urls["flask"], [10_000])
    time.sleep(1)
    tree = served.tree()
    served.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    served.process.send_signal(signal.SIGINT)  # Ctrl-C, to hurry
    assert served.process.wait(5) == 1
    assert answer.result().startswith(CUT_OFF)
    assert "every request before a second signal" in served.log.read_text()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


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


def up_env(**env: str | None) -> dict[str, str]:
    """up.sh's environment: granian on two free ports and no database, unless `env` says
    otherwise (None: unset)."""
    merged = {
        **os.environ,
        "SERVER": "granian",
        "FLASK_PORT": str(free_port()),
        "FASTAPI_PORT": str(free_port()),
        **({} if {"DATABASE", "DATABASE_URL"} & set(env) else {"DATABASE": "none"}),
        **env,
    }
    return {name: value for name, value in merged.items() if value is not None}


def run_up(**env: str | None) -> subprocess.CompletedProcess:
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
        ({"DATABASE": "sqlite"}, "DATABASE='sqlite' is neither postgres nor none"),
        ({"DATABASE": "none", "DATABASE_URL": "x"}, "DATABASE='none' and DATABASE_URL are"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE='0' is not a number of connections"),
        # Empty is no default: the same rule for every setting.
        ({"WORKERS": ""}, "WORKERS='' is not a number of processes"),
        ({"THREADS": ""}, "THREADS='' is not a number of threads"),
        ({"FLASK_PORT": ""}, "FLASK_PORT='' is not a port number"),
        ({"METRICS_SLOTS": ""}, "METRICS_SLOTS=''"),
    ],
)
def test_bad_settings_stop_up_sh_before_anything_starts(env, says):
    result = run_up(**env)
    assert result.returncode == 2
    assert says in result.stderr
    assert "serves Flask" not in result.stdout
