"""./compare.sh end to end: real runs of a real load tool against both apps, and its exits."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, needs_postgres, postgres_cluster, processes_serving, running

from compare.targets import APPS, NAMES
from serve.launch import launch
from serve.ports import free_port

# --- real runs -----------------------------------------------------------------------

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed: apt-get install wrk"
)


def run_compare(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compare", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


# One short counted run per app and level, no warm-up.
QUICK = ("--duration=1", "--warmup=0", "--repeats=1")
TWO_CORES = len(os.sched_getaffinity(0)) >= 2
# The kernel counts CPU time in 10 ms ticks: either end of a gap may be a tick off.
TICK_S = 0.01


def assert_polls_within_the_cores(run: dict) -> None:
    """Every CPU % a poll implies, recomputed from its raw counters and the app's clock."""
    polls = run["polls"]
    for previous, poll in itertools.pairwise(polls):
        gap_s = poll["timestamp"] - previous["timestamp"]
        assert gap_s > 0
        raw = 100 * (poll["cpu_time_s"] - previous["cpu_time_s"]) / gap_s
        bound = 100 * run["cores_usable"] + 100 * 2 * TICK_S / gap_s
        assert raw <= bound, (raw, bound, run["app"])
        assert poll["cpu_percent"] <= 100 * run["cores_usable"]


@needs_wrk
def test_launch_writes_a_full_report_and_leaves_nothing_running(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=hello,json",
        "--duration=2",
        "--warmup=0",
        "--repeats=1",
        "--poll=0.3",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Flask vs FastAPI" in result.stdout
    names = {path.name for path in out.iterdir()}
    assert {"report.json", "report.md", "timeline.png", "requests_per_s.png"} <= names
    assert {"cpu_s_per_1k.png", "pss_mb_peak.png", "up.log"} <= names
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert [(r["level"]["scenario"], r["app"]) for r in runs] == [
        ("hello", "flask"),
        ("hello", "fastapi"),
        ("json", "flask"),
        ("json", "fastapi"),
    ]
    env = report["environment"]
    for run in runs:
        assert run["load"]["requests"] > 0
        assert run["cpu_s"] > 0
        assert run["server_cpu_s"] is not None and run["server_cpu_s"] >= 0
        assert run["total_cpu_s"] == pytest.approx(run["cpu_s"] + run["server_cpu_s"], abs=2e-3)
        assert run["total_cpu_s_per_1k"] >= run["cpu_s_per_1k"] > 0
        assert 10 < run["pss_mb_peak"] <= run["rss_mb_peak"]
        assert run["polls"], "no /status poll during a 2 s run"
        assert run["load_tool_cpu_s"] > 0 and 0 < run["load_tool_busy"] <= 1.05
        assert not run["workers_changed"]
        assert_polls_within_the_cores(run)
        tool = run["command"][run["command"].index("wrk") :]
        assert tool[0] == "wrk"
        if TWO_CORES:  # by default the load tool and the apps get cores of their own
            assert run["command"][:3] == ["taskset", "-c", "1"]
            assert run["cores_usable"] == 1
    if TWO_CORES:
        assert env["pinning"] == "load tool on cores [1], apps on cores [0]"
        assert env["apps"]["flask"]["cpu_affinity"] == [0]
    # up.sh's choice: Unit where unitd is on PATH (or UNITD names one), else granian.
    unit = shutil.which(os.environ.get("UNITD", "unitd"))
    assert env["apps"]["flask"]["server"].startswith("Unit/" if unit else "granian")
    assert env["apps"]["flask"]["server_processes"]
    assert env["load_tool"].startswith("wrk")
    assert env["machine"]["cpu_count"] == psutil.cpu_count()
    figures = {row["figure"] for row in report["summary"]}
    assert {"requests_per_s", "cpu_s_per_1k", "server_cpu_s_per_1k", "pss_mb_peak"} <= figures
    assert "total_cpu_s_per_1k" in figures
    markdown = (out / "report.md").read_text()
    assert "| hello | 1 | c=32 | req/s |" in markdown and "![timeline](timeline.png)" in markdown
    ports = [int(env["apps"][app]["url"].rsplit(":", 1)[1]) for app in ("flask", "fastapi")]
    assert processes_serving(ports) == []


@needs_wrk
def test_sweeps_relaunch_per_worker_level_and_draw_their_charts(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--workers=1,2",
        "--connections=4,8",
        "--scenarios=hello",
        *QUICK,
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {path.name for path in out.iterdir()}
    assert {"sweep_connections.png", "sweep_workers.png", "up-w1.log", "up-w2.log"} <= names
    runs = json.loads((out / "report.json").read_text())["runs"]
    levels = [(r["level"]["workers"], r["level"]["connections"]) for r in runs]
    assert sorted(set(levels)) == [(1, 4), (1, 8), (2, 4), (2, 8)]
    assert all(r["workers"] == r["level"]["workers"] for r in runs)


@needs_wrk
@needs_postgres
def test_database_scenarios_count_the_database_and_a_pool_sweep_relaunches(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=db,updates",
        "--pool-size=4,8",  # under Unit, FastAPI splits them over 4 event loops
        *QUICK,
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"up-w1-pool4.log", "up-w1-pool8.log", "sweep_pool_size.png"} <= {
        path.name for path in out.iterdir()
    }
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert sorted({(r["level"]["scenario"], r["level"]["pool_size"]) for r in runs}) == [
        ("db", 4),
        ("db", 8),
        ("updates", 4),
        ("updates", 8),
    ]
    for run in runs:
        assert run["load"]["requests"] > 0 and run["load"]["non_2xx"] == 0
        assert run["database_cpu_s"] > 0  # every answer came from its queries
        assert run["total_cpu_s"] == pytest.approx(
            run["cpu_s"] + run["server_cpu_s"] + run["database_cpu_s"], abs=2e-3
        )
        assert run["database_rss_mb_peak"] > 0
    databases = {app: report["environment"]["apps"][app]["database"] for app in APPS}
    assert databases["flask"]["counted"] and databases["fastapi"]["counted"]
    figures = {row["figure"] for row in report["summary"]}
    assert {"database_cpu_s_per_1k", "database_rss_mb_peak"} <= figures
    markdown = (out / "report.md").read_text()
    assert "| db | 1 | c=32 pool=4 | CPU-s per 1k req: database |" in markdown
    assert "database: PostgreSQL started beside the apps and shared by both" in markdown
    assert "Flask each level's pool= per worker" in markdown


@needs_wrk
@needs_postgres
def test_against_databases_url_the_report_says_its_cost_is_not_counted(served_factory, tmp_path):
    with postgres_cluster() as (_, url):
        served = served_factory(DATABASE_URL=url)
        result = run_compare(
            "--flask=" + served.urls["flask"],
            "--fastapi=" + served.urls["fastapi"],
            "--scenarios=fortunes",
            *QUICK,
            f"--out={tmp_path}",
        )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert all(run["database_cpu_s"] is None for run in report["runs"])
    assert not {row["figure"] for row in report["summary"]} & {"database_cpu_s_per_1k"}
    said = " ".join(result.stdout.split())
    assert "database: DATABASE_URL's PostgreSQL, whose cost is not counted" in said
    assert "connections: Flask 4 per worker, FastAPI 4 per worker" in said


@needs_wrk
def test_the_database_scenarios_without_a_database_exit_3_saying_how_to_get_one(
    served_factory, tmp_path
):
    result = run_compare(
        "--launch", "--scenarios=db", f"--out={tmp_path}", env={"DATABASE": "none"}
    )
    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stdout.split())  # wrapped to the console
    assert "the database scenarios (db) need a database, and there is none here" in said
    assert "apt-get install postgresql-15" in said
    served = served_factory(DATABASE="none")
    result = run_compare(
        "--flask=" + served.urls["flask"],
        "--fastapi=" + served.urls["fastapi"],
        "--scenarios=hello,queries",
        f"--out={tmp_path}",
    )
    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    assert f"{served.urls['flask']}/db answered 503 (no database:" in said


def test_a_fixed_rate_run_is_open_loop_and_says_which_app_missed_it(tmp_path):
    # Flask's 4 threads of 100 ms hold 40 requests per second; FastAPI's event loop, 60.
    # Flask misses 60/s whatever the machine. FastAPI holds it, but within the 2% that
    # counts as held only while nothing delays its last answers by 40 ms: on a busy
    # machine it may miss too, and the report must then say so.
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--rate=60",
        "--scenarios=io",
        "--io-ms=100",
        "--duration=2",
        "--warmup=0",
        "--repeats=1",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    runs = {run["app"]: run for run in report["runs"]}
    assert runs["fastapi"]["rate_reached"] > 50  # far above what Flask can hold
    assert runs["flask"]["rate_missed"] and runs["flask"]["rate_reached"] < 50
    assert "compare/openloop.py" in " ".join(runs["flask"]["command"])
    assert "--rate=60" in runs["flask"]["command"]
    assert runs["fastapi"]["load"]["latency_p50_ms"] >= 100
    rows = {row["figure"]: row for row in report["summary"]}
    missed = " and ".join(NAMES[app] for app in APPS if runs[app]["rate_missed"])
    assert missed in ("Flask", "Flask and FastAPI")
    assert rows["rate_reached"]["verdict"] == f"{missed} missed 60/s: left out"
    assert report["environment"]["load_tool"].startswith("openloop")
    assert "missed the asked rate" in result.stdout


@needs_wrk
def test_no_pin_shares_the_cores_and_says_so(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--no-pin",
        "--scenarios=hello",
        *QUICK,
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["environment"]["pinning"].startswith("shared (--no-pin)")
    cores = sorted(os.sched_getaffinity(0))
    assert report["environment"]["apps"]["fastapi"]["cpu_affinity"] == cores
    assert "the load tool and the apps shared cores" in result.stdout


@needs_wrk
@pytest.mark.skipif(not TWO_CORES, reason="needs 2 cores to keep the load tool apart")
def test_running_apps_on_their_own_cores_keep_the_load_tool_off_them(tmp_path):
    # As ./start.sh --cpuset 0 does to the container: the apps may use core 0 only.
    apps = launch(tmp_path / "up.log", {"SERVER": "granian"}, ["taskset", "-c", "0"])
    try:
        out = tmp_path / "report"
        result = run_compare(
            "--flask=" + apps.urls["flask"],
            "--fastapi=" + apps.urls["fastapi"],
            "--scenarios=hello",
            *QUICK,
            f"--out={out}",
        )
    finally:
        apps.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["environment"]["pinning"] == "load tool on cores [1], apps on their own cores [0]"
    assert all(run["command"][:3] == ["taskset", "-c", "1"] for run in report["runs"])


@needs_wrk
def test_pin_against_apps_on_every_core_exits_3_with_advice(served_factory, tmp_path):
    served = served_factory()
    result = run_compare(
        "--flask=" + served.urls["flask"],
        "--fastapi=" + served.urls["fastapi"],
        "--pin",
        f"--out={tmp_path}",
    )
    assert result.returncode == 3, result.stdout
    assert "every core this process may use" in result.stdout
    assert "./start.sh --cpuset" in result.stdout


@needs_wrk
def test_no_answers_at_all_exit_5_and_still_write_the_report(tmp_path):
    # Each request waits 2 s, longer than the 1 s run: no response is counted.
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=io",
        "--io-ms=2000",
        *QUICK,
        "--connections=2",
        f"--out={out}",
    )
    assert result.returncode == 5, result.stdout + result.stderr
    assert "over --max-error-rate" in result.stdout
    assert (out / "report.json").exists()


@needs_wrk
def test_unreachable_target_exits_3(tmp_path):
    port = free_port()
    result = run_compare(
        f"--flask=http://127.0.0.1:{port}",
        f"--fastapi=http://127.0.0.1:{free_port()}",
        f"--out={tmp_path}",
    )
    assert result.returncode == 3
    assert f"the flask target http://127.0.0.1:{port} is unreachable" in result.stdout


@pytest.fixture
def foreign_server():
    """Some other HTTP server on loopback, not one of these apps."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"hello": "world"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@needs_wrk
def test_target_that_is_not_these_apps_exits_3(foreign_server, served_factory, tmp_path):
    served = served_factory()
    result = run_compare(
        f"--flask={foreign_server}", "--fastapi=" + served.urls["fastapi"], f"--out={tmp_path}"
    )
    assert result.returncode == 3
    assert f"{foreign_server} is not an app of flask-vs-fastapi" in result.stdout


@needs_wrk
def test_both_urls_at_one_app_exit_3(served_factory, tmp_path):
    served = served_factory()
    same_app = served.urls["flask"].replace("127.0.0.1", "localhost")
    result = run_compare(
        "--flask=" + served.urls["flask"], f"--fastapi={same_app}", f"--out={tmp_path}"
    )
    assert result.returncode == 3
    assert "both URLs point at the same app" in result.stdout


def test_missing_load_tool_exits_4_saying_how_to_install_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = run_compare("--tool=hey", f"--out={tmp_path}", env={"PATH": str(bin_dir)})
    assert result.returncode == 4
    assert "hey is not installed: apt-get install hey" in result.stdout


def test_pin_needs_two_cores(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine has one core")
    result = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "compare",
            "--launch",
            "--pin",
            f"--out={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "--pin needs at least 2 cores" in result.stdout


@needs_wrk
def test_swapped_urls_exit_3_saying_so(served_factory, tmp_path):
    served = served_factory()
    result = run_compare(
        "--flask=" + served.urls["fastapi"],
        "--fastapi=" + served.urls["flask"],
        f"--out={tmp_path}",
    )
    assert result.returncode == 3
    assert "swap --flask and --fastapi" in result.stdout


def up_log(out: Path) -> str:
    log = out / "up.log"
    return log.read_text()[-3000:] if log.exists() else "(none)"


@needs_wrk
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stopping_compare_stops_the_apps_it_launched(sig, tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "compare",
            "--launch",
            "--duration=30",
            "--warmup=0",
            "--scenarios=hello",
            "--repeats=1",
            f"--out={tmp_path}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    # Wait until the load runs (its wrk, not the version probe before it), then stop
    # the comparison as a user or a CI job would.
    def load_runs() -> bool:
        below = running(psutil.Process(process.pid).children(recursive=True), ["name", "cmdline"])
        return any(
            p.info["name"] == "wrk" and "--duration=30s" in (p.info["cmdline"] or []) for p in below
        )

    deadline = time.monotonic() + 60
    while not load_runs():
        assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    tree = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sig)
    try:
        code = process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"compare still ran 60 s after {sig!r}; up.log:\n{up_log(tmp_path)}")
    assert code == 128 + sig, up_log(tmp_path)
    _, alive = psutil.wait_procs(tree, timeout=15)
    for left in alive:  # leave nothing behind, even when failing
        left.kill()
    assert alive == []
