"""./compare.sh end to end: real runs of a real load tool against both apps, and its exits."""

import itertools
import json
import os
import re
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
from conftest import ROOT, needs_postgres, postgres_cluster, processes_serving

from compare.procedure import turn
from compare.targets import APPS
from serve.launch import launch
from serve.ports import free_ports

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


# One short repeat: a counted second per run, no warm-up, one fixed rate.
QUICK = ("--duration=1", "--warmup=0", "--repeats=1", "--fractions=0.5")
TWO_CORES = len(os.sched_getaffinity(0)) >= 2
# The kernel counts CPU time in 10 ms ticks: either end of a gap may be a tick off.
TICK_S = 0.01
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


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


def launched_ports(log: Path) -> set[str]:
    """The ports up.sh said it served on, in its log."""
    return set(re.findall(r"http://127\.0\.0\.1:(\d+)", log.read_text()))


@needs_wrk
@pytest.mark.timeout(400)
def test_launch_repeats_independent_launches_and_writes_estimates_with_intervals(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--scenarios=hello,json",
        "--repeats=2",
        "--duration=1",
        "--warmup=0",
        "--fractions=0.1,0.6",  # far apart: a line through two 1 s runs that rises
        "--poll=0.3",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FastAPI against Flask" in result.stdout
    assert "Each of the 2 repeats was a launch of both apps of its own" in result.stdout
    # In a pipe no bar is drawn: a line for each step, with how far along the load is.
    steps = re.findall(
        r"^compare: +(\d+)% (repeat .*) \(about \d+ min left\)$", result.stdout, flags=re.MULTILINE
    )
    assert ("0", "repeat 1/2: launching both apps") in steps
    assert any(step.startswith("repeat 2/2 w=1 json") for _, step in steps)
    assert [int(done) for done, _ in steps] == sorted(int(done) for done, _ in steps)
    names = {path.name for path in out.iterdir()}
    assert {"report.json", "report.md", "estimates.png", "timeline.png", "launches"} <= names
    assert {"latency_hello.png", "cpu_hello.png", "latency_json.png", "cpu_json.png"} <= names
    # Each repeat is a launch of its own: its own log, its own ports, its own processes.
    logs = sorted((out / "launches").iterdir())
    assert [log.name for log in logs] == ["up-1-w1.log", "up-2-w1.log"]
    first, second = (launched_ports(log) for log in logs)
    assert len(first) == len(second) == 2 and not first & second
    report = json.loads((out / "report.json").read_text())
    runs = sorted(report["runs"], key=lambda r: r["order"])
    # Per repeat: idle, then per scenario closed loop and two fixed rates, both apps each.
    assert len(runs) == 2 * 2 * (1 + 2 * 3)
    pairs = [runs[i : i + 2] for i in range(0, len(runs), 2)]
    for index, (a, b) in enumerate(pairs):
        assert a["level"] == b["level"] and a["repeat"] == b["repeat"] and a["app"] != b["app"]
        pair = index % (len(pairs) // 2)
        assert (a["app"], b["app"]) == turn(pair, a["repeat"])  # ABBA
        if a["level"]["kind"] == "open":  # the same random arrivals for both
            assert a["seed"] is not None and a["seed"] == b["seed"]
            assert f"--seed={a['seed']}" in a["command"]
            assert "--arrivals=poisson" in a["command"]
        ports = {url.rsplit(":", 1)[1].split("/")[0] for url in a["command"] if "127.0.0.1:" in url}
        assert not ports or ports <= (first if a["repeat"] == 1 else second)
    # Each launch sets its rates from its own capacities: the two fractions of the lower
    # app's closed-loop req/s in that launch, to three figures.
    opened = [r for r in runs if r["level"]["kind"] == "open"]
    assert {(r["level"]["scenario"], r["level"]["fraction"]) for r in opened} == {
        (scenario, fraction) for scenario in ("hello", "json") for fraction in (0.1, 0.6)
    }
    for run in opened:
        level = run["level"]
        capacity = min(
            r["load"]["requests_per_s"]
            for r in runs
            if r["repeat"] == run["repeat"]
            and r["level"]["kind"] == "closed"
            and r["level"]["scenario"] == level["scenario"]
        )
        assert level["rate"] == float(f"{level['fraction'] * capacity:.3g}"), run
    env = report["environment"]
    for run in runs:
        # An idle app read from outside may spend nothing in a window; a loaded one cannot.
        assert run["cpu_s"] > 0 or (run["level"]["kind"] == "idle" and run["cpu_s"] == 0)
        assert run["window_s"] > 0
        assert run["cpu_read"] == ("outside" if run["level"]["kind"] == "idle" else "status")
        assert 0 <= run["steal_share"] < 1
        assert run["server_cpu_s"] is not None and run["server_cpu_s"] >= 0
        assert run["total_cpu_s"] == pytest.approx(run["cpu_s"] + run["server_cpu_s"], abs=2e-6)
        assert 10 < run["pss_mb_peak"] <= run["rss_mb_peak"]
        assert not run["workers_changed"]
        assert_polls_within_the_cores(run)
        if run["level"]["kind"] == "idle":
            assert run["command"] == [] and run["load"]["requests"] == 0
        else:
            assert run["load"]["requests"] > 0
            tool = "openloop.py" if run["level"]["kind"] == "open" else "wrk"
            assert any(part.endswith(tool) for part in run["command"])
            if TWO_CORES:  # by default the load tool and the apps get cores of their own
                assert run["command"][:3] == ["taskset", "-c", "1"]
    if TWO_CORES:
        assert env["pinning"] == "load tool on cores [1], apps on cores [0]"
        assert env["apps"]["flask"]["cpu_affinity"] == [0]
    # up.sh's choice: Unit where unitd is on PATH (or UNITD names one), else granian.
    unit = shutil.which(os.environ.get("UNITD", "unitd"))
    assert env["apps"]["flask"]["server"].startswith("Unit/" if unit else "granian")
    assert env["repeats"] == {"count": 2, "launches": True, "first_place": ["flask", "fastapi"]}
    # The second launch swapped the apps' places: FastAPI on FLASK_PORT, its server first,
    # and each app's runs went to its own port.
    pattern = re.compile(r"serves (\w+) on \S+:(\d+) and (\w+) on \S+:(\d+)")
    served = [pattern.search(log.read_text()) for log in logs]
    assert [found.group(1, 3) for found in served] == [("Flask", "FastAPI"), ("FastAPI", "Flask")]
    for run in runs:
        if run["level"]["kind"] != "idle":
            found = served[run["repeat"] - 1]
            port = found[2] if found[1] == env["names"][run["app"]] else found[4]
            assert any(f"127.0.0.1:{port}" in part for part in run["command"]), run["command"]
    assert env["load_tool"].startswith("wrk") and env["open_loop_tool"].startswith("openloop")
    assert env["machine"]["cpu_count"] == psutil.cpu_count()
    headline = {row["scenario"]: row for row in report["headline"]}
    assert list(headline) == ["hello", "json"]
    for row in headline.values():
        cpu = row["figures"]["cpu_ms_per_request"]
        assert cpu["ratio"]["n"] == 2 and cpu["ratio"]["low"] < cpu["ratio"]["high"]
        assert all(v > 0 for app in APPS for v in cpu["per_repeat"][app])
        # The reading follows its intervals: a difference where the 95% one excludes 1,
        # equivalence where the 90% one lies within ±5%, else inconclusive.
        (low, high), tested = (cpu["ratio"]["low"], cpu["ratio"]["high"]), cpu["tested"]
        within = tested["low"] >= 0.95 and tested["high"] <= 1.05
        reading = "higher" if low > 1 else "lower" if high < 1 else None
        assert cpu["decision"] == reading or (
            reading is None and cpu["decision"] == ("equivalent" if within else "inconclusive")
        )
        assert cpu["within_margin"] == within
        assert all(row["figures"]["capacity_rps"]["per_repeat"][app] for app in APPS)
    for row in report["latency"]:
        assert row["floor"]["p50"] > 0  # openloop's own, against the trivial server
        assert row["apps"]["flask"]["p99.9"]["median"] >= row["apps"]["flask"]["p50"]["median"]
    markdown = (out / "report.md").read_text()
    lines = markdown.splitlines()
    # The whole request in instructions leads (or says how to count it); the wall clock follows.
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == [
        "## FastAPI against Flask: the whole request, in instructions",
        "## FastAPI against Flask, measured with a wall clock: the confirmation",
    ]
    wall = lines.index(headings[1])
    assert lines[wall + 2].startswith("| scenario | CPU per request at equal rates |")
    assert "![latency_hello](latency_hello.png)" in markdown
    for line in markdown.splitlines() + result.stdout.splitlines():
        assert not SCIENTIFIC.search(line), line
    ports = [int(p) for p in first | second]
    assert processes_serving(ports) == []


@needs_wrk
@pytest.mark.timeout(300)
def test_same_app_launches_one_app_on_both_ports_an_a_a_comparison(tmp_path):
    out = tmp_path / "report"
    result = run_compare(
        "--launch", "--same-app=flask", "--scenarios=hello", *QUICK, "--repeats=2", f"--out={out}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    env = report["environment"]
    assert env["names"] == {"flask": "Flask A", "fastapi": "Flask B"}
    assert [env["apps"][app]["framework"] for app in APPS] == ["flask", "flask"]
    assert env["repeats"]["first_place"] == ["flask", "fastapi"]
    assert "Flask B against Flask A" in result.stdout
    assert (out / "report.md").read_text().startswith("# Flask A vs Flask B")
    # The calibration reads it: every draw of 2 launches is the pair, each row counted.
    calibration = ROOT / "benchmarks" / "aa_calibration.py"
    argv = [sys.executable, str(calibration), "--from", str(out / "report.json"), "--size=2"]
    counted = subprocess.run([*argv, "--draws=3"], capture_output=True, text=True, timeout=60)
    assert counted.returncode == 0, counted.stderr
    lines = counted.stdout.splitlines()
    server = env["apps"]["flask"]["server"]
    assert lines[0] == (
        f"A/A: Flask B against Flask A under {server} ({env['date']}): 2 launches; 3 draws of 2"
    )
    rows = {line[:32].strip(): line[32:].split() for line in lines if line[:32].strip()}
    assert rows["CPU per request at equal rates"][0] == "3"  # one row, three draws
    assert "PSS: left out: two instances of one app cannot differ in PSS by design" in lines
    # Each figure, the second place against the first, over all launches.
    assert any(
        line.startswith("  places, over all 2 launches: hello w=1 pss_mb: ") for line in lines
    )
    refused = subprocess.run([*argv, "--size=3"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "fewer launches than --size 3" in refused.stderr.splitlines()[-1]


@needs_wrk
def test_workers_and_connections_sweep_relaunch_per_worker_level_and_draw_their_charts(tmp_path):
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
    assert {"sweep_connections.png", "sweep_workers.png", "cpu_hello_w2.png"} <= names
    assert {log.name for log in (out / "launches").iterdir()} == {"up-1-w1.log", "up-1-w2.log"}
    report = json.loads((out / "report.json").read_text())
    closed = {
        (r["level"]["workers"], r["level"]["connections"])
        for r in report["runs"]
        if r["level"]["kind"] == "closed"
    }
    assert sorted(closed) == [(1, 4), (1, 8), (2, 4), (2, 8)]
    assert all(r["workers"] == r["level"]["workers"] for r in report["runs"])
    assert [(row["scenario"], row["workers"]) for row in report["headline"]] == [
        ("hello", 1),
        ("hello", 2),
    ]


@needs_wrk
@pytest.mark.timeout(300)
def test_style_serves_the_baselines_and_measures_their_whole_cost(tmp_path):
    out = tmp_path / "report"
    result = run_compare("--launch", "--style=plain", "--scenarios=hello", *QUICK, f"--out={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    (log,) = (out / "launches").iterdir()
    said = log.read_text()
    assert "baselines.observed.flask_plain" in said and "baselines.observed.fastapi_plain" in said
    report = json.loads((out / "report.json").read_text())
    for app in APPS:
        served = report["environment"]["apps"][app]
        assert (served["framework"], served["style"]) == (app, "plain")
        assert served["file"] == f"baselines/{app}-plain.py"
    for run in report["runs"]:  # the server's CPU with the app's: the whole cost
        assert run["cpu_s"] > 0 or run["level"]["kind"] == "idle"
        assert run["server_cpu_s"] is not None
        assert run["load"]["non_2xx"] == 0
    markdown = " ".join((out / "report.md").read_text().split())
    assert "Response style: Flask plain (baselines/flask-plain.py), FastAPI plain" in markdown
    # The framework-only counts of this run's apps: the plain baselines'.
    (row,) = report["instructions"]["rows"]
    assert row["apps"] == {app: row[app]["plain"] for app in APPS}


@needs_wrk
@needs_postgres
@pytest.mark.timeout(400)
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
    assert "sweep_pool_size.png" in {path.name for path in out.iterdir()}
    logs = sorted(path.name for path in (out / "launches").iterdir())
    assert logs == ["up-1-w1-pool4.log", "up-1-w1-pool8.log"]  # a launch per size
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert {(r["level"]["scenario"], r["level"]["pool_size"]) for r in runs} == {
        ("db", 4),
        ("db", 8),
        ("updates", 4),
        ("updates", 8),
        (None, 4),  # each launch's idle run
        (None, 8),
    }
    for run in runs:
        # The database runs beside the apps in every run, idle ones too: its CPU is counted.
        assert run["database_cpu_s"] is not None and run["database_cpu_s"] >= 0
        assert run["total_cpu_s"] == pytest.approx(
            run["cpu_s"] + run["server_cpu_s"] + run["database_cpu_s"], abs=2e-6
        )
        assert run["net_cpu_s"] == pytest.approx(
            run["total_cpu_s"] - (run["observer_cpu_s"] or 0), abs=2e-6
        )
        if run["level"]["kind"] != "idle":
            assert run["load"]["requests"] > 0 and run["load"]["non_2xx"] == 0
            assert run["database_cpu_s"] > 0  # every answer came from its queries
            assert run["database_rss_mb_peak"] > 0
    databases = {app: report["environment"]["apps"][app]["database"] for app in APPS}
    assert databases["flask"]["counted"] and databases["fastapi"]["counted"]
    assert report["environment"]["settings"]["pool_sizes"] == [4, 8]
    # A headline row per scenario and pool size, its CPU the workers', server's and database's.
    rows = {(row["scenario"], row["pool_size"]) for row in report["headline"]}
    assert rows == {("db", 4), ("db", 8), ("updates", 4), ("updates", 8)}
    markdown = (out / "report.md").read_text()
    assert "| db pool=4 |" in markdown and "| updates pool=8 |" in markdown
    said = " ".join(markdown.split())
    assert "Database: PostgreSQL started beside the apps and shared by both" in said
    assert "counted in each app's total, in the cost line and the headline" in said
    assert "Flask each row's pool= per worker" in said
    assert not SCIENTIFIC.search(markdown)


@needs_wrk
@needs_postgres
def test_against_database_url_the_report_says_its_cost_is_not_counted(served_factory, tmp_path):
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
    assert all(run["load"]["non_2xx"] == 0 for run in report["runs"])
    said = " ".join(result.stdout.split())
    assert "database: DATABASE_URL's PostgreSQL, whose cost is not counted" in said
    assert "connections: Flask 4 per worker, FastAPI 4 per worker" in said
    markdown = " ".join((tmp_path / "report.md").read_text().split())
    assert "Database: DATABASE_URL's PostgreSQL, whose cost is not counted" in markdown


@needs_wrk
def test_the_database_scenarios_without_a_database_exit_3_saying_how_to_get_one(
    served_factory, tmp_path
):
    result = run_compare(
        "--launch", "--scenarios=db", f"--out={tmp_path}", env={"DATABASE": "none"}
    )
    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stderr.split())  # wrapped to the console
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
    said = " ".join(result.stderr.split())
    assert f"{served.urls['flask']}/db answered 503 (no database:" in said


def test_a_missed_rate_is_reported_as_missed_with_its_figures(tmp_path):
    # Flask's 4 threads of 100 ms hold 40 requests per second; FastAPI's event loop, far
    # more. Flask misses 60/s whatever the machine: its run is flagged, and counted.
    out = tmp_path / "report"
    result = run_compare(
        "--launch",
        "--rate=60",
        "--scenarios=io",
        "--io-ms=100",
        "--duration=2",
        "--warmup=0",
        "--repeats=1",
        "--connections=8",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    runs = {r["app"]: r for r in report["runs"] if r["level"]["kind"] == "open"}
    assert runs["flask"]["rate_missed"] and runs["flask"]["rate_reached"] < 50
    assert "compare/openloop.py" in " ".join(runs["flask"]["command"])
    assert "--rate=60" in runs["flask"]["command"]
    (row,) = report["latency"]
    assert row["rate"] == 60 and row["apps"]["flask"]["missed"] == 1
    assert row["apps"]["flask"]["p99"]["median"] > row["apps"]["fastapi"]["p50"]["median"] >= 100
    assert "answered under 98% of their scheduled rate: flagged, and counted" in result.stdout


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
            "--repeats=2",
            f"--out={out}",
        )
    finally:
        apps.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["environment"]["pinning"] == "load tool on cores [1], apps on their own cores [0]"
    loaded = [run for run in report["runs"] if run["level"]["kind"] != "idle"]
    assert all(run["command"][:3] == ["taskset", "-c", "1"] for run in loaded)
    # Two rounds against the one launch: the report says what its intervals then cover.
    assert report["environment"]["repeats"] == {"count": 2, "launches": False}
    assert "Launches were not repeated" in " ".join(result.stdout.split())
    assert "Launches were not repeated" in (out / "report.md").read_text()


@needs_wrk
def test_same_app_against_running_apps_compares_two_instances_of_it(served_factory, tmp_path):
    served = served_factory(
        frameworks={"flask": "flask", "fastapi": "flask"}, APPS="flask-wsgi,flask-wsgi"
    )
    urls = ("--flask=" + served.urls["flask"], "--fastapi=" + served.urls["fastapi"])
    refused = run_compare(*urls, f"--out={tmp_path}")
    assert refused.returncode == 3
    assert "both serve flask (--same-app flask compares two instances" in refused.stderr
    other = run_compare(*urls, "--same-app=fastapi", f"--out={tmp_path}")
    assert other.returncode == 3
    assert f"--same-app fastapi: {served.urls['flask']} serves flask and" in other.stderr
    one = run_compare(
        "--flask=" + served.urls["flask"],
        "--fastapi=" + served.urls["flask"].replace("127.0.0.1", "localhost"),
        "--same-app=flask",
        f"--out={tmp_path}",
    )
    assert one.returncode == 3
    assert "--same-app flask needs two instances" in one.stderr
    out = tmp_path / "report"
    result = run_compare(*urls, "--same-app=flask", "--scenarios=hello", *QUICK, f"--out={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Flask B against Flask A" in result.stdout


@needs_wrk
def test_pin_against_apps_on_every_core_exits_3_with_advice(served_factory, tmp_path):
    served = served_factory()
    result = run_compare(
        "--flask=" + served.urls["flask"],
        "--fastapi=" + served.urls["fastapi"],
        "--pin",
        f"--out={tmp_path}",
    )
    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "every core this process may use" in said
    assert "./start.sh --cpuset" in said


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
    flask_port, fastapi_port = free_ports(2)
    result = run_compare(
        f"--flask=http://127.0.0.1:{flask_port}",
        f"--fastapi=http://127.0.0.1:{fastapi_port}",
        f"--out={tmp_path}",
    )
    assert result.returncode == 3
    assert f"the flask target http://127.0.0.1:{flask_port} is unreachable" in result.stderr


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
    assert f"{foreign_server} is not an app of flask-vs-fastapi" in result.stderr


@needs_wrk
def test_both_urls_at_one_app_exit_3(served_factory, tmp_path):
    served = served_factory()
    same_app = served.urls["flask"].replace("127.0.0.1", "localhost")
    result = run_compare(
        "--flask=" + served.urls["flask"], f"--fastapi={same_app}", f"--out={tmp_path}"
    )
    assert result.returncode == 3
    assert "both URLs point at the same app" in result.stderr


def test_missing_load_tool_exits_4_saying_how_to_install_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = run_compare("--tool=hey", f"--out={tmp_path}", env={"PATH": str(bin_dir)})
    assert result.returncode == 4
    assert "hey is not installed: apt-get install hey" in result.stderr
    assert "compare:" not in result.stdout  # a failure goes to stderr only


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
    assert "--pin needs at least 2 cores" in result.stderr


@needs_wrk
def test_swapped_urls_exit_3_saying_so(served_factory, tmp_path):
    served = served_factory()
    result = run_compare(
        "--flask=" + served.urls["fastapi"],
        "--fastapi=" + served.urls["flask"],
        f"--out={tmp_path}",
    )
    assert result.returncode == 3
    assert "swap --flask and --fastapi" in result.stderr


def up_log(out: Path) -> str:
    log = out / "launches" / "up-1-w1.log"
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

    # Wait until the apps serve and the first counted run (30 s idle) has begun, then
    # stop the comparison as a user or a CI job would.
    def counting() -> bool:
        log = tmp_path / "launches" / "up-1-w1.log"
        return log.exists() and " serves " in log.read_text()

    deadline = time.monotonic() + 60
    while not counting():
        if time.monotonic() > deadline or process.poll() is not None:
            process.send_signal(signal.SIGTERM)  # its apps with it, whatever failed
            process.wait(60)
            pytest.fail(f"the apps never served; compare said:\n{process.stdout.read()}")
        time.sleep(0.2)
    tree = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sig)
    try:
        code = process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"compare still ran 60 s after {sig!r}; up.log:\n{up_log(tmp_path)}")
    assert code == 128 + sig, up_log(tmp_path)
    _, alive = psutil.wait_procs(tree, timeout=15)
    for left in alive:  # leave nothing behind, even when failing
        left.kill()
    assert alive == []
