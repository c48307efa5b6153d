"""The image, built and run for real by start.sh: both ports, /stats, health, docker stop,
and start.sh's failures, each one clear line with nothing left behind.

These need a Docker engine, and the tests that run a container need its base image
(UNIT_IMAGE, PYTHON_IMAGE: start.sh's defaults unless set) here or pullable.
Without them they skip and say why, unless REQUIRE_CONTAINER_TESTS asks for them
(1: every server; unit or granian: that one), when that is a failure. .ci/run,
which reaches no registry, builds a stand-in for python:3.12-slim and requires granian.
"""

import concurrent.futures
import functools
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx2
import pytest
from conftest import ROOT, port_settings

import workloads
from serve.ports import free_port, free_ports

pytestmark = pytest.mark.container

BASE_IMAGES = {
    "unit": ("UNIT_IMAGE", "unit:1.34.2-python3.12"),
    "granian": ("PYTHON_IMAGE", "python:3.12-slim"),
}
APPS = ("flask", "fastapi")
LABEL = "label=org.opencontainers.image.title=flask-vs-fastapi"


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def engine_problem() -> str | None:
    try:
        info = docker("info")
    except FileNotFoundError:
        return "Docker is not installed"
    return None if info.returncode == 0 else "no Docker engine is reachable"


@functools.cache
def base_image_problem(server: str) -> str | None:
    variable, default = BASE_IMAGES[server]
    image = os.environ.get(variable) or default
    if docker("image", "inspect", image).returncode == 0:
        return None
    if docker("pull", "--quiet", image, timeout=600).returncode == 0:
        return None
    return (
        f"the {server} base image {image} is not here and cannot be pulled:"
        f" docker load it, or set {variable}"
    )


def need(server: str | None = None) -> None:
    """Skip (or fail, where required) unless the engine, and server's base image, are here."""
    problem = engine_problem() or (server and base_image_problem(server))
    if problem:
        asked = os.environ.get("REQUIRE_CONTAINER_TESTS", "")
        if asked == "1" or (asked and server in (None, asked)):
            pytest.fail(f"REQUIRE_CONTAINER_TESTS={asked}, but {problem}")
        pytest.skip(problem)


def start_sh(*args: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "start.sh"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dangling_images() -> list[str]:
    """This project's untagged images: what a build left behind."""
    listed = docker("images", "--quiet", "--filter", "dangling=true", "--filter", LABEL)
    return listed.stdout.split()


def container_exists(name: str) -> bool:
    return docker("container", "inspect", name).returncode == 0


@pytest.fixture(scope="module", params=["granian", "unit"])
def container(request):
    """start.sh's container for each server, on free ports and core 0, removed afterwards."""
    server = request.param
    need(server)
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
    started = start_sh(
        *("--server", server, "--name", name, "--cpus", "1", "--cpuset", "0"),
        FLASK_PORT=str(ports["flask"]),
        FASTAPI_PORT=str(ports["fastapi"]),
        METRICS_INTERVAL="0.5",
        METRICS_SLOTS="10",
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"{server} serves both apps in container {name}" in started.stdout
        dockerfile = {"unit": "Dockerfile", "granian": "granian.dockerfile"}[server]
        assert f"building flask-vs-fastapi:{server} from {dockerfile}" in started.stdout
        # The classic builder's warning on every build: start.sh says which builder once.
        assert "DEPRECATED" not in started.stdout + started.stderr
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


def test_both_ports_answer_db_from_the_postgresql_in_the_container(container):
    name = container["name"]
    pages = []
    for port in container["ports"].values():
        row = httpx2.get(f"http://127.0.0.1:{port}/db", timeout=10)
        assert row.status_code == 200, row.text
        assert list(row.json()) == ["id", "randomNumber"] and 1 <= row.json()["id"] <= 10_000
        pages.append(httpx2.get(f"http://127.0.0.1:{port}/fortunes", timeout=10).content)
        block = httpx2.get(f"http://127.0.0.1:{port}/status", timeout=10).json()["database"]
        assert block["counted"] and block["cpu_time_s"] > 0
    assert pages[0] == pages[1] and pages[0].count(b"<tr>") == 14
    postmaster = block["pids"][0]  # as the apps see it: the container's own pids
    owner = docker("exec", name, "stat", "-c", "%U", f"/proc/{postmaster}").stdout.strip()
    if container["server"] == "unit":
        # up.sh runs as root, Unit's apps as unit, PostgreSQL as postgres: the kernel
        # shows the apps its RSS, not its PSS.
        assert owner == "postgres" and block["pss_mb"] is None
    else:
        # Everything runs as unit, PostgreSQL too: there is no root to switch users.
        assert owner == "unit" and block["pss_mb"] > 0
    listening = docker("exec", name, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    ports = {
        int(line.split()[1].rsplit(":", 1)[1], 16)
        for line in listening.splitlines()[1:]
        if " 0A " in line
    }
    assert 5432 not in ports  # a unix socket only


def test_the_container_gets_the_cpuset_asked_for(container):
    cpuset = docker("inspect", "-f", "{{.HostConfig.CpusetCpus}}", container["name"]).stdout
    assert cpuset.strip() == "0"
    allowed = docker("exec", container["name"], "grep", "Cpus_allowed_list", "/proc/1/status")
    assert allowed.stdout.split() == ["Cpus_allowed_list:", "0"]


def test_a_build_leaves_no_dangling_image(container):
    assert dangling_images() == []


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


def path_without_python3(tmp_path: Path) -> str:
    """A PATH with every command of this one but Python: a host with no python3."""
    commands = tmp_path / "bin"
    commands.mkdir()
    for directory in map(Path, os.environ["PATH"].split(os.pathsep)):
        for command in sorted(directory.glob("*")) if directory.is_dir() else []:
            link = commands / command.name
            if command.name.startswith("python") or link.exists() or not command.is_file():
                continue
            if os.access(command, os.X_OK):
                link.symlink_to(command)
    return str(commands)


def test_a_container_that_stops_at_once_is_reported_and_removed(container, tmp_path):
    # start.sh refuses a bad setting itself, with this machine's python3; without one,
    # the container's up.sh refuses it, and start.sh reports that.
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    result = start_sh(
        *("--server", container["server"], "--name", name),
        **port_settings(),
        METRICS_INTERVAL="0",
        PATH=path_without_python3(tmp_path),
        timeout=300,
    )
    assert result.returncode == 1
    assert "up.sh: invalid metrics setting: METRICS_INTERVAL='0'" in result.stderr  # from the log
    assert result.stderr.rstrip().splitlines()[-1] == (
        "start.sh: the container stopped; its last log lines are above"
    )
    assert not container_exists(name)


def test_without_python3_here_start_sh_waits_for_the_containers_healthcheck(container, tmp_path):
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
    try:
        result = start_sh(
            *("--server", container["server"], "--name", name),
            FLASK_PORT=str(ports["flask"]),
            FASTAPI_PORT=str(ports["fastapi"]),
            PATH=path_without_python3(tmp_path),
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"serves both apps in container {name}" in result.stdout
        health = docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
        assert health == "healthy"
        for app, port in ports.items():
            hello = httpx2.get(f"http://127.0.0.1:{port}/", timeout=10)
            assert hello.json()["framework"] == app
    finally:
        docker("rm", "-f", name)


def test_docker_stop_drains_the_longest_request_and_a_queue_then_exits_0(container):
    # /io's longest wait, and Flask's 4 threads a queue of 2 s requests twice as long,
    # 4 s in all: every request accepted before the stop is answered within start.sh's
    # grace (docker stop's default, 10 s, is less than up.sh's 15), then the container
    # exits 0.
    grace = docker("inspect", "-f", "{{.Config.StopTimeout}}", container["name"]).stdout
    assert int(grace) >= 15
    flask, fastapi = (f"http://127.0.0.1:{container['ports'][app]}" for app in APPS)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:  # the requests, and docker stop
        longest_ms = workloads.IO_MAX_MS
        longest = pool.submit(httpx2.get, fastapi + "/io", params={"ms": longest_ms}, timeout=30)
        queue = [
            pool.submit(httpx2.get, flask + "/io", params={"ms": 2_000}, timeout=30)
            for _ in range(8)
        ]
        time.sleep(0.5)  # every request is in flight or queued
        started = time.monotonic()
        stopping = pool.submit(docker, "stop", container["name"], timeout=60)
        time.sleep(1)
        with pytest.raises(httpx2.HTTPError):  # no new request is taken once it stops
            httpx2.get(fastapi + "/", timeout=5)
        stopped = stopping.result()
        elapsed = time.monotonic() - started
        assert [answer.result().status_code for answer in [longest, *queue]] == [200] * 9
    assert stopped.returncode == 0
    logs = docker("logs", container["name"])
    said = logs.stdout + logs.stderr
    # PostgreSQL stopped cleanly, after the apps (tests/test_database.py: after their drain).
    assert "received fast shutdown request" in said and "database system is shut down" in said
    # 137 would be Docker's SIGKILL: the grace ran out, or SIGTERM was not handled.
    assert docker("inspect", "-f", "{{.State.ExitCode}}", container["name"]).stdout.strip() == "0"
    assert elapsed < 15, f"docker stop took {elapsed:.1f} s"


def test_stop_says_what_it_did(container):
    # The last test of each container: it removes it.
    stopped = start_sh("--stop", "--name", container["name"], timeout=60)
    assert (stopped.returncode, stopped.stdout) == (
        0,
        f"start.sh: stopped and removed container {container['name']}\n",
    )
    again = start_sh("--stop", "--name", container["name"], timeout=60)
    assert (again.returncode, again.stdout) == (0, f"start.sh: no container {container['name']}\n")


# start.sh's failures before any container runs: these need the engine only.


def test_a_missing_base_image_is_named_with_how_to_provide_one():
    need()
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    missing = f"flask-vs-fastapi/no-such-base:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    result = start_sh(
        "--name",
        name,
        UNIT_IMAGE=missing,
        **port_settings(),
        timeout=300,
    )
    assert result.returncode == 1
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith(f"start.sh: cannot get the base image {missing}:")
    assert "docker load" in last and "UNIT_IMAGE=" in last and "--server granian" in last
    assert time.monotonic() - started < 60  # no build was tried
    assert not container_exists(name)


def test_a_failed_build_leaves_no_layers_behind(tmp_path):
    need()
    # A base image with no shell: the build's first RUN fails after earlier steps
    # made layers of their own.
    base = f"flask-vs-fastapi/empty-base:{uuid.uuid4().hex[:8]}"
    (tmp_path / "empty.tar").write_bytes(b"\0" * 1024)  # an empty tar archive
    assert docker("import", str(tmp_path / "empty.tar"), base).returncode == 0
    try:
        result = start_sh(
            *("--server", "granian", "--name", f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"),
            PYTHON_IMAGE=base,
            **port_settings(),
            timeout=300,
        )
    finally:
        docker("image", "rm", "--force", base)
    assert result.returncode == 1
    assert result.stderr.rstrip().splitlines()[-1] == (
        "start.sh: building flask-vs-fastapi:granian failed; the build's last lines are above"
    )
    assert dangling_images() == []


def test_stop_says_when_there_is_no_container():
    need()
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    result = start_sh("--stop", "--name", name, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"start.sh: no container {name}\n",
        "",
    )


@pytest.mark.parametrize("public", [False, True])
def test_a_port_in_use_stops_start_sh_before_it_builds(public):
    need()
    name = f"flask-vs-fastapi-test-{uuid.uuid4().hex[:8]}"
    with socket.socket() as taken:
        # --public publishes on every address: a port held on another one counts too.
        taken.bind(("127.0.0.2" if public else "127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start_sh(
            *(["--public"] if public else []),
            *("--name", name),
            FLASK_PORT=str(port),
            FASTAPI_PORT=str(free_port()),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"start.sh: port {port} is already in use on this host"
        " (FLASK_PORT and FASTAPI_PORT choose others)"
    ]
    assert not container_exists(name)
