"""compare.py: its statistics on constructed runs, its flags, and real runs against real apps."""

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
from conftest import ROOT, processes_serving

import compare
from compare import Run, Spread, spread, summarize_runs, verdict
from launch import free_port
from loadtools import LoadResult


def make_run(app: str, requests_per_s: float, cpu_s: float = 1.0, repeat: int = 1, **load) -> Run:
    requests = int(requests_per_s * 10)
    return Run(
        scenario="json",
        connections=32,
        app=app,
        repeat=repeat,
        command=["wrk"],
        load=LoadResult(
            requests=requests,
            duration_s=10.0,
            errors=load.get("errors", 0),
            non_2xx=load.get("non_2xx", 0),
            latency_p50_ms=1.0,
            latency_p90_ms=2.0,
            latency_p99_ms=3.0,
        ),
        cpu_s=cpu_s,
        cpu_s_per_1k=compare.cpu_s_per_1k(cpu_s, requests),
        cpu_percent_avg=cpu_s * 10,
        cpu_percent_peak=None,
        rss_mb_before=40.0,
        rss_mb_after=41.0,
        rss_growth_mb=1.0,
        rss_mb_avg=40.5,
        rss_mb_peak=41.0,
        uss_mb_avg=29.0,
        uss_mb_peak=30.0,
        system_cpu_percent_avg=50.0,
        system_memory_used_mb_avg=500.0,
        workers=1,
        workers_changed=False,
        load_tool_cpu_s=0.5,
        runner_cpu_s=0.01,
        polls=[],
        poll_failures=0,
        stats_summary=None,
    )


# --- statistics ----------------------------------------------------------------------


def test_cpu_seconds_per_thousand_requests():
    assert compare.cpu_s_per_1k(2.5, 5000) == 0.5
    assert compare.cpu_s_per_1k(1.0, 0) is None


def test_spread_is_median_with_min_and_max_of_known_values():
    assert spread([3.0, None, 1.0, 2.0, 10.0]) == Spread(median=2.5, min=1.0, max=10.0, n=4)
    assert spread([None]) is None


def test_verdict_only_where_runs_do_not_overlap():
    flask = Spread(median=100, min=95, max=105, n=3)
    assert verdict(flask, Spread(median=130, min=120, max=140, n=3)) == "FastAPI 30% higher"
    assert verdict(flask, Spread(median=80, min=70, max=90, n=3)) == "FastAPI 20% lower"
    assert verdict(flask, Spread(median=104, min=100, max=140, n=3)) == "no clear difference"
    assert verdict(flask, Spread(median=200, min=200, max=200, n=1)) == "one run each: no verdict"
    assert verdict(None, flask) == "no data"


def test_summary_gives_medians_ratio_and_verdict_per_figure():
    runs = [
        make_run("flask", 1000, cpu_s=2.0, repeat=1),
        make_run("fastapi", 1500, cpu_s=2.0, repeat=1),
        make_run("flask", 1100, cpu_s=2.0, repeat=2),
        make_run("fastapi", 1400, cpu_s=2.0, repeat=2),
        make_run("flask", 900, cpu_s=2.0, repeat=3),
        make_run("fastapi", 1600, cpu_s=2.0, repeat=3),
    ]
    rows = {row["figure"]: row for row in summarize_runs(runs)}
    rps = rows["requests_per_s"]
    assert rps["flask"] == {"median": 1000, "min": 900, "max": 1100, "n": 3}
    assert rps["fastapi"]["median"] == 1500
    assert rps["ratio_fastapi_flask"] == 1.5
    assert rps["verdict"] == "FastAPI 50% higher"
    per_1k = rows["cpu_s_per_1k"]  # the same CPU for more requests: cheaper per request
    assert per_1k["flask"]["median"] == pytest.approx(0.2)
    assert per_1k["fastapi"]["median"] == pytest.approx(2.0 / 15, abs=1e-4)
    assert per_1k["verdict"].startswith("FastAPI") and per_1k["verdict"].endswith("lower")
    assert rows["rss_mb_peak"]["verdict"] == "no clear difference"


def test_error_rate_counts_errors_and_non_2xx_of_all_attempts():
    assert compare.error_rate(make_run("flask", 100, errors=10, non_2xx=40)) == 50 / 1010
    assert compare.error_rate(make_run("flask", 0)) == 1.0  # no answer at all


# --- flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--connections", "0"], "--connections"),
        (["--connections", "8,x"], "--connections"),
        (["--connections", "8,8"], "--connections"),
        (["--scenarios", "hello,upload"], "--scenarios"),
        (["--duration", "0"], "--duration"),
        (["--repeats", "-1"], "--repeats"),
        (["--warmup", "-3"], "--warmup"),
        (["--poll", "0"], "--poll"),
        (["--io-ms", "20000"], "--io-ms"),
        (["--cpu-n", "1"], "--cpu-n"),
        (["--max-error-rate", "1.5"], "--max-error-rate"),
        (["--tool", "siege"], "--tool"),
        (["--flask", "http://127.0.0.1:9", "--fastapi", "http://127.0.0.1:9/"], "same URL"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


# --- real runs -----------------------------------------------------------------------

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed: apt-get install wrk"
)


def run_compare(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@needs_wrk
def test_launch_writes_a_full_report_and_leaves_nothing_running(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=hello,json",
        "--duration=2",
        "--warmup=0",
        "--repeats=1",
        "--poll=0.5",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Flask vs FastAPI" in result.stdout
    names = {path.name for path in out.iterdir()}
    assert {"report.json", "report.md", "timeline.png", "requests_per_s.png"} <= names
    assert {"cpu_s_per_1k.png", "rss_mb_peak.png", "up.log"} <= names
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert [(r["scenario"], r["app"]) for r in runs] == [
        ("hello", "flask"),
        ("hello", "fastapi"),
        ("json", "flask"),
        ("json", "fastapi"),
    ]
    for run in runs:
        assert run["load"]["requests"] > 0
        assert run["cpu_s"] > 0
        assert run["cpu_s_per_1k"] > 0
        assert run["rss_mb_peak"] > 10
        assert run["polls"], "no /status poll during a 2 s run"
        assert run["command"][0] == "wrk"
    env = report["environment"]
    # up.sh's choice: Unit where unitd is on PATH (or UNITD names one), else granian.
    unit = shutil.which(os.environ.get("UNITD", "unitd"))
    assert env["apps"]["flask"]["server"].startswith("Unit/" if unit else "granian")
    assert env["load_tool"].startswith("wrk")
    assert env["machine"]["cpu_count"] == psutil.cpu_count()
    figures = {row["figure"] for row in report["summary"]}
    assert {"requests_per_s", "cpu_s_per_1k", "rss_mb_peak"} <= figures
    markdown = (out / "report.md").read_text()
    assert "| hello | 32 | req/s |" in markdown and "![timeline](timeline.png)" in markdown
    ports = [int(env["apps"][app]["url"].rsplit(":", 1)[1]) for app in ("flask", "fastapi")]
    assert processes_serving(ports) == []


@needs_wrk
def test_no_answers_at_all_exit_5_and_still_write_the_report(tmp_path):
    # Each request waits 5 s, longer than the 1 s run: no response is counted.
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=io",
        "--io-ms=5000",
        "--duration=1",
        "--warmup=0",
        "--repeats=1",
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
            str(ROOT / "compare.py"),
            "--pin",
            f"--out={tmp_path}",
        ],
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
            str(ROOT / "compare.py"),
            "--launch",
            "--duration=30",
            "--warmup=0",
            "--scenarios=hello",
            "--repeats=1",
            f"--out={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Wait until the load runs, then stop compare.py as a user or a CI job would.
    deadline = time.monotonic() + 60
    while not any(p.name() == "wrk" for p in psutil.Process(process.pid).children(recursive=True)):
        assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    tree = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sig)
    try:
        code = process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"compare.py still ran 60 s after {sig!r}; up.log:\n{up_log(tmp_path)}")
    assert code == 128 + sig, up_log(tmp_path)
    _, alive = psutil.wait_procs(tree, timeout=15)
    for left in alive:  # leave nothing behind, even when failing
        left.kill()
    assert alive == []
