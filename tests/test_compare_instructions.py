"""Instructions per request under callgrind: the driver's rules, and counts that repeat."""

import concurrent.futures
import json
import shutil
import subprocess

import pytest
from conftest import ROOT

from compare import instructions


def drive(app_file: str, target: str, requests: int = 2) -> subprocess.CompletedProcess:
    """compare/app_driver.py run directly (no valgrind): its checks hold all the same."""
    return subprocess.run(
        instructions.driver_command(ROOT / app_file, [target], requests, warmup=1),
        cwd=ROOT,
        env=instructions.driver_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_driver_counts_a_project_app_with_its_sampler_stopped():
    # The run fails if any thread but the main one (the sampler's, restarted by each
    # fork) is alive after the counted requests.
    done = drive("flask-wsgi.py", "/json", requests=3)
    assert done.returncode == 0, done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [run["requests"] for run in runs] == [0, 3]
    assert len({run["pid"] for run in runs}) == 2
    for run in runs:
        assert (run["status"], run["content_type"]) == (200, "application/json")
        assert json.loads(run["body"])["count"] == 20


def test_the_driver_refuses_to_count_an_error():
    done = drive("flask-wsgi.py", "/nope")
    assert done.returncode == 1
    assert "GET /nope answered 404" in done.stderr


def test_the_driver_refuses_to_count_beside_another_thread():
    # FastAPI runs the plain `def` /status in a worker thread, which stays.
    done = drive("fastapi-asgi.py", "/status")
    assert done.returncode == 1
    assert "threads besides the main one ran during the count" in done.stderr


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not on PATH: apt-get install valgrind"
)
def test_instructions_per_request_repeat_within_1_percent():
    # Two counts at once, so that each runs beside the other's load.
    app_file = ROOT / "flask-wsgi.py"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        counts = list(
            pool.map(lambda _: instructions.per_request(app_file, ["/"], 20, 10)["/"], range(2))
        )
    first, second = (count.per_request for count in counts)
    assert abs(first / second - 1) < 0.01, (first, second)
    assert 100_000 < first < 2_000_000  # a request's cost, not an import's or nothing
    assert counts[0].status == 200
    assert json.loads(counts[0].body)["framework"] == "flask"
