"""The README's Quick start, followed on a fresh copy of the project: ./start.sh, then
every command of it as written, in order, so that the Quick start cannot drift from
what works.

It changes only what a test must, all in `as_run`, and docs/testing.md
says so: the apps get free ports (in the commands' URLs too); Docker is hidden, so
./start.sh serves the apps here (test_container.py covers the image), and the
suite's own VENV and UNITD are not passed on (its APP_USER=root is, where root runs it:
the copy is in pytest's temporary folder, which nobody cannot read); loads last
1 s, not 30; ./compare.sh runs one short repeat of one scenario at one rate; a load
tool that is not installed is left out; ./start.sh --stop becomes the Ctrl-C that the Quick start
names for a run here; and ./test.sh is left out, as it is what runs this test.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, processes_serving, project_copy

from serve.ports import free_ports


def quick_start_commands() -> list[list[str]]:
    """Each command of the README's Quick start, as argv, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    lines = "\n".join(blocks).splitlines()
    return [argv for argv in (shlex.split(line, comments=True) for line in lines) if argv]


def as_run(argv: list[str], ports: dict[str, int], out: Path) -> list[str] | None:
    """argv as this test runs it (see the docstring), or None to leave it out."""
    argv = [
        arg.replace(":8080", f":{ports['flask']}").replace(":8081", f":{ports['fastapi']}")
        for arg in argv
    ]
    if argv[0] == "./test.sh":
        return None
    if not argv[0].startswith("./") and shutil.which(argv[0]) is None:
        return None
    if argv[0] == "wrk":
        argv = ["-d1s" if arg.startswith("-d") else arg for arg in argv]
    if argv[0] == "ab":
        argv = ["-t1" if arg.startswith("-t") else arg for arg in argv]
    if argv[0] == "./compare.sh":
        argv += [
            *("--flask", f"http://127.0.0.1:{ports['flask']}"),
            *("--fastapi", f"http://127.0.0.1:{ports['fastapi']}"),
            *("--scenarios", "hello", "--repeats", "1", "--duration", "1", "--warmup", "0"),
            *("--fractions", "0.5"),  # one fixed rate, not four
            *("--out", str(out)),
        ]
    return argv


# A fresh .venv: pip's downloads, where nothing is cached, may take minutes.
@pytest.mark.timeout(600)
def test_the_quick_start_works_as_written(tmp_path):
    commands = quick_start_commands()
    assert commands[0] == ["./start.sh"]
    assert ["./start.sh", "--stop"] in commands
    project = project_copy(tmp_path)
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
    env = {
        **os.environ,
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # a real client, no daemon
        "FLASK_PORT": str(ports["flask"]),
        "FASTAPI_PORT": str(ports["fastapi"]),
    }
    # The suite's own knobs for the Unit tests are no newcomer's: with UNITD, up.sh would
    # serve under Unit, and refuse (rightly, in one line) the .venv that start.sh makes
    # with python3 unless that is the Python Unit's module links.
    for variable in ("VENV", "UNITD"):
        env.pop(variable, None)
    started = subprocess.Popen(
        ["./start.sh"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    try:
        # It makes .venv and installs the requirements, then serves: the time this
        # takes is bounded by the test's timeout.
        for line in started.stdout:
            output.append(line)
            if " serves Flask on " in line:
                break
        assert started.poll() is None, "".join(output)
        ran = []
        for argv in commands[1:]:
            if argv == ["./start.sh", "--stop"]:
                os.killpg(started.pid, signal.SIGINT)  # Ctrl-C, to the foreground group
                assert started.wait(30) == 0
                ran.append(argv)
                continue
            adapted = as_run(argv, ports, tmp_path / "results")
            if adapted is None:
                continue
            result = subprocess.run(
                adapted, cwd=project, env=env, capture_output=True, text=True, timeout=90
            )
            assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
            if argv[0] == "curl":
                assert "samples" in json.loads(result.stdout)  # /stats itself answered
            ran.append(argv)
    finally:
        if started.poll() is None:
            os.killpg(started.pid, signal.SIGINT)
            started.wait(30)
        _, left = psutil.wait_procs(processes_serving(list(ports.values())), timeout=10)
        for process in left:
            process.kill()
    assert left == []
    assert [argv[0] for argv in ran].count("curl") == 3
    assert ["./compare.sh"] in ran
    assert (tmp_path / "results" / "report.json").exists()
