"""start.sh where no Docker engine answers: it says so and serves the apps here instead."""

import os
import signal
import subprocess
import time

import httpx2
import psutil
import pytest
from conftest import ROOT

from launch import free_port


def start_sh(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / "start.sh"), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_without_a_docker_daemon_it_falls_back_to_serving_here():
    ports = {"flask": free_port(), "fastapi": free_port()}
    process = start_sh(
        "--server",
        "granian",
        DOCKER_HOST="unix:///nonexistent/docker.sock",  # a real client, no daemon behind it
        FLASK_PORT=str(ports["flask"]),
        FASTAPI_PORT=str(ports["fastapi"]),
    )
    try:
        deadline = time.monotonic() + 90
        answered = set()
        while answered != set(ports) and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            for app, port in ports.items():
                try:
                    body = httpx2.get(f"http://127.0.0.1:{port}/", timeout=1).json()
                    if body["framework"] == app:
                        answered.add(app)
                except httpx2.HTTPError:
                    pass
            time.sleep(0.3)
        assert answered == set(ports)
        tree = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []
    assert "running the apps here under granian" in output
    assert "Docker" in output  # it says why: not installed, or the daemon is not reachable


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--server", "nginx"], "--server must be unit or granian"),
        (["--cpus", "lots"], "--cpus takes a number of cores"),
        (["--memory", "big"], "--memory takes a size"),
        (["--name", "a b"], "is not a container name"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
    ],
)
def test_bad_flags_are_refused_with_a_reason(args, says):
    result = subprocess.run(
        [str(ROOT / "start.sh"), *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert says in result.stderr


def test_limits_without_docker_are_refused():
    result = subprocess.run(
        [str(ROOT / "start.sh"), "--local", "--cpus", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "--cpus and --memory need Docker" in result.stderr
