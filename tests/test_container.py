"""The image, built and run for real by start.sh: both ports, /stats, health, docker stop.

These need a Docker engine. Without one they skip and say why, unless
REQUIRE_CONTAINER_TESTS=1 (as .ci/run sets), when that is a failure.
CONTAINER_BASE_IMAGE replaces python:3.12-slim as the granian target's base
(.ci/run builds a stand-in from Debian's packages: no registry is reachable).
The Unit target is built wherever its base image can be had.
"""

import concurrent.futures
import os
import subprocess
import time
import uuid

import httpx2
import pytest
from conftest import ROOT

from launch import free_port

UNIT_IMAGE = os.environ.get("UNIT_IMAGE", "unit:1.34.2-python3.12")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def engine_problem() -> str | None:
    try:
        info = docker("info")
    except FileNotFoundError:
        return "Docker is not installed"
    return None if info.returncode == 0 else "no Docker engine is reachable"


problem = engine_problem()
if problem and os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
    raise RuntimeError(f"REQUIRE_CONTAINER_TESTS=1, but {problem}")
pytestmark = [pytest.mark.container, pytest.mark.skipif(bool(problem), reason=problem or "")]


def unit_image_problem() -> str | None:
    if docker("image", "inspect", UNIT_IMAGE).returncode == 0:
        return None
    if docker("pull", UNIT_IMAGE, timeout=300).returncode == 0:
        return None
    return f"the Unit base image {UNIT_IMAGE} cannot be had here (no registry is reachable)"


@pytest.fixture(scope="module", params=["granian", "unit"])
def container(request):
    """start.sh's container for each server, on free ports, removed afterwards."""
    server = request.param
    if server == "unit" and (reason := unit_image_problem()):
        pytest.skip(reason)
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    ports = {"flask": free_port(), "fastapi": free_port()}
    env = {
        **os.environ,
        "FLASK_PORT": str(ports["flask"]),
        "FASTAPI_PORT": str(ports["fastapi"]),
        "METRICS_INTERVAL": "0.5",
        "METRICS_SLOTS": "10",
    }
    if base := os.environ.get("CONTAINER_BASE_IMAGE"):
        env["PYTHON_IMAGE"] = base
    started = subprocess.run(
        [str(ROOT / "start.sh"), "--server", server, "--name", name, "--cpus", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"{server} serves both apps in container {name}" in started.stdout
        yield {"name": name, "server": server, "ports": ports}
    finally:
        docker("rm", "-f", name)


def test_both_ports_serve_their_app(container):
    for app, port in container["ports"].items():
        hello = httpx2.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert hello.json()["framework"] == app
        assert hello.json()["python_version"].startswith("3.")
        assert httpx2.get(f"http://127.0.0.1:{port}/cpu?n=100", timeout=10).json()["primes"] == 25
        status = httpx2.get(f"http://127.0.0.1:{port}/status", timeout=10).json()
        # The container's own limit, which psutil's memory figures do not show.
        assert status["system"]["cgroup"]["cpu_quota_cores"] == 1.0


def test_stats_fill_at_the_interval_given(container):
    for port in container["ports"].values():
        deadline = time.monotonic() + 20
        stats = httpx2.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()
        while stats["count"] < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
            stats = httpx2.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()
        assert (stats["interval_s"], stats["slots"]) == (0.5, 10)
        assert stats["count"] >= 4


def test_the_container_becomes_healthy(container):
    deadline = time.monotonic() + 90
    health = ""
    while health != "healthy" and time.monotonic() < deadline:
        health = docker(
            "inspect", "-f", "{{.State.Health.Status}}", container["name"]
        ).stdout.strip()
        time.sleep(1)
    assert health == "healthy"


def test_only_the_two_app_ports_are_reachable_from_the_host(container):
    published = docker("port", container["name"]).stdout.split("\n")
    assert sorted(line.split(" ->")[0] for line in published if line) == ["8080/tcp", "8081/tcp"]
    assert docker("inspect", "-f", "{{len .Mounts}}", container["name"]).stdout.strip() == "0"
    if container["server"] == "unit":
        # The control socket exists, inside the container only.
        found = docker("exec", container["name"], "sh", "-c", "ls /tmp/*/control.sock")
        assert found.returncode == 0 and "control.sock" in found.stdout


def test_docker_stop_lets_the_longest_request_finish_then_exits_0(container):
    # /io's longest wait, 10 s, is as long as docker stop's default grace: start.sh
    # gives the container more, and the request finishes before the container exits.
    grace = docker("inspect", "-f", "{{.Config.StopTimeout}}", container["name"]).stdout
    assert int(grace) >= 15
    url = f"http://127.0.0.1:{container['ports']['fastapi']}/io"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        longest = pool.submit(httpx2.get, url, params={"ms": 10_000}, timeout=30)
        time.sleep(0.5)  # the request is in flight
        started = time.monotonic()
        stopped = docker("stop", container["name"], timeout=60)
        elapsed = time.monotonic() - started
        if container["server"] == "granian":  # Unit drops the connection, then waits
            assert longest.result().status_code == 200
    assert stopped.returncode == 0
    # 137 would be Docker's SIGKILL: the grace ran out, or SIGTERM was not handled.
    assert docker("inspect", "-f", "{{.State.ExitCode}}", container["name"]).stdout.strip() == "0"
    assert elapsed < 9.5 + 8, f"docker stop took {elapsed:.1f} s"
