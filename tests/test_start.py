"""start.sh where no Docker engine answers: it says so and serves the apps here instead."""

import os
import signal
import socket
import subprocess
import time

import httpx2
import psutil
import pytest
from conftest import ROOT

from serve.ports import free_port, free_ports


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
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
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


def start_sh_fails(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "start.sh"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--server", "nginx"], "--server must be unit or granian, not 'nginx'"),
        (["--server=nginx"], "--server must be unit or granian, not 'nginx'"),
        (["--cpus", "lots"], "--cpus takes a number of cores such as 1 or 1.5, not 'lots'"),
        (["--cpus", "0"], "--cpus must be more than 0"),
        (["--memory", "big"], "--memory takes a size such as 512m, not 'big'"),
        (["--cpuset", "one"], "--cpuset takes cores such as 1, 0-1 or 0,2, not 'one'"),
        (["--cpuset", "0-4096"], "--cpuset 0-4096: this machine has cores 0-"),
        (["--name", "a b"], "--name 'a b' is not a container name"),
        (["--public=yes"], "--public takes no value"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
        # A value flag given last, or followed by another flag, has no value.
        (["--server"], "--server needs a value"),
        (["--cpus"], "--cpus needs a value"),
        (["--memory"], "--memory needs a value"),
        (["--cpuset"], "--cpuset needs a value"),
        (["--name", "--public"], "--name needs a value"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_exit_2(args, says):
    result = start_sh_fails(*args)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"start.sh: {says}")
    assert line.endswith("(--help lists the options)")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FLASK_PORT": "http"}, "FLASK_PORT='http' is not a port number (1-65535)"),
        ({"FASTAPI_PORT": "70000"}, "FASTAPI_PORT='70000' is not a port number (1-65535)"),
        ({"FLASK_PORT": "9999", "FASTAPI_PORT": "9999"}, "FLASK_PORT and FASTAPI_PORT are both"),
    ],
)
def test_bad_ports_are_refused_before_anything_starts(env, says):
    result = start_sh_fails(**env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"start.sh: {says}")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"METRICS_INTERVAL": "0"},
            "invalid metrics setting: METRICS_INTERVAL='0': Input should be greater than or"
            " equal to 0.1",
        ),
        ({"METRICS_SLOTS": ""}, "invalid metrics setting: METRICS_SLOTS=''"),
        ({"WORKERS": "0"}, "WORKERS='0' is not a number of processes (1-64)"),
        ({"WORKERS": ""}, "WORKERS='' is not a number of processes (1-64)"),
        ({"THREADS": ""}, "THREADS='' is not a number of threads (1-256)"),
        ({"FASTAPI_PORT": ""}, "FASTAPI_PORT='' is not a port number (1-65535)"),
        ({"FLASK_PORT": ""}, "FLASK_PORT='' is not a port number (1-65535)"),
    ],
)
@pytest.mark.parametrize("args", [[], ["--local"]])
def test_a_bad_setting_is_one_line_and_exit_2_before_anything_is_built(env, says, args):
    # With or without a Docker engine: the settings are checked first, by serving's rules.
    result = start_sh_fails(*args, **env)
    assert (result.returncode, result.stdout) == (2, "")  # no word of a build, a pull, a venv
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"start.sh: {says}")


def test_local_is_asked_for_so_it_is_no_fallback():
    with socket.socket() as taken:  # up.sh then stops at once, after start.sh has spoken
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start_sh_fails(
            "--local", "--server", "granian", FLASK_PORT=str(port), FASTAPI_PORT=str(free_port())
        )
    assert result.stdout.splitlines()[0] == (
        "start.sh: running the apps here under granian (Ctrl-C stops them)"
    )
    assert result.stderr.splitlines()[-1] == (
        f"up.sh: port {port} (FLASK_PORT) is already in use on 127.0.0.1"
    )
    assert result.returncode == 1


def test_help_lists_every_option_on_stdout():
    result = start_sh_fails("--help")
    assert (result.returncode, result.stderr) == (0, "")
    for option in ("--server", "--cpus", "--memory", "--cpuset", "--public", "--name", "--local"):
        assert f"\n  {option} " in result.stdout
    assert "UNIT_IMAGE" in result.stdout and "PYTHON_IMAGE" in result.stdout


def test_limits_without_docker_are_refused():
    result = start_sh_fails("--local", "--cpuset", "0")
    assert (result.returncode, result.stderr) == (
        1,
        "start.sh: --cpus, --memory and --cpuset need Docker\n",
    )


def test_stop_without_a_docker_daemon_says_so():
    result = start_sh_fails("--stop", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert (result.returncode, result.stderr) == (
        1,
        "start.sh: the Docker daemon is not reachable\n",
    )
