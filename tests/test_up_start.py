"""up.sh's start-up: it says "serves" only once both apps answer, and every way it can
fail before that is one clear line, quickly, with no traceback and nothing left running.
The Unit checks need a real unitd (UNITD) and skip without one."""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import psutil
import pytest
from conftest import ROOT, processes_serving, project_copy, running
from test_serve import up_env

from serve.exits import MEANINGS, Exit
from serve.ports import bind_error, free_ports

UNITD = os.environ.get("UNITD", "unitd")
needs_unitd = pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)


def run_up(
    *args: str, up_sh: Path = ROOT / "up.sh", **env: str | None
) -> subprocess.CompletedProcess:
    """up.sh expected to fail before it serves; whatever it started is killed after."""
    env = up_env(**env)
    try:
        return subprocess.run(
            [str(up_sh), *args], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        ports = [int(env["FLASK_PORT"]), int(env["FASTAPI_PORT"])]
        for left in processes_serving(ports):
            left.kill()


def assert_one_line(result: subprocess.CompletedProcess, code: int, line: str) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (code, "", f"up.sh: {line}\n")


def test_help_lists_every_setting():
    result = subprocess.run([str(ROOT / "up.sh"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for setting in ("SERVER", "VENV", "UNITD", "APP_USER", "HOST", "FLASK_PORT", "WORKERS"):
        assert f"\n  {setting} " in result.stdout
    for code in Exit:  # each exit code with its meaning, from where up.sh takes it
        assert f"\n  {int(code):<5}{MEANINGS[code].split()[0]} " in result.stdout


@pytest.mark.parametrize("argv", [["--help", "extra"], ["-h", "-h"], ["extra", "--help"]])
def test_help_takes_no_other_argument(argv):
    result = subprocess.run([str(ROOT / "up.sh"), *argv], capture_output=True, text=True)
    unknown = argv[1] if argv[0] in ("-h", "--help") else argv[0]
    assert_one_line(
        result,
        Exit.BAD_SETTING,
        f"unknown argument '{unknown}': up.sh takes its settings from the environment"
        " (--help lists them)",
    )


def test_serves_is_said_once_both_apps_answer():
    env = up_env()
    process = subprocess.Popen(
        [str(ROOT / "up.sh")], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("up.sh: granian serves Flask on ")
        # At once, no retry: both answer by the time the line is written.
        for app, variable in (("flask", "FLASK_PORT"), ("fastapi", "FASTAPI_PORT")):
            url = f"http://127.0.0.1:{env[variable]}/"
            assert httpx2.get(url, timeout=5).json()["framework"] == app
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("variable", ["FLASK_PORT", "FASTAPI_PORT"])
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_port_in_use_is_one_line_naming_it_before_anything_starts(variable, host):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # for HOST=0.0.0.0: held on another address than asked
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_up(HOST=host, **{variable: str(port)})
        elapsed = time.monotonic() - started
    assert_one_line(result, 1, f"port {port} ({variable}) is already in use on {host}")
    # Refused before any server starts (in about 0.3 s quiet), not after READY_WITHIN_S's
    # wait: a bound with a loaded machine's headroom.
    assert elapsed < 10


def test_free_ports_are_different_and_each_free_to_listen_on():
    # One at a time, the kernel may hand back a port it just gave (two apps on one port
    # stopped a CI run: "FLASK_PORT and FASTAPI_PORT are both 45123").
    ports = free_ports(64)
    assert len(set(ports)) == 64
    assert [port for port in ports if bind_error("127.0.0.1", port)] == []


def test_a_missing_virtualenv_is_one_line_saying_how_to_make_one(tmp_path):
    copy = project_copy(tmp_path)
    assert_one_line(
        run_up(up_sh=copy / "up.sh", VENV=None),
        1,
        "there is no virtualenv in .venv: make one with 'python3 -m venv .venv &&"
        " .venv/bin/pip install -r requirements.txt' (./start.sh --local does that),"
        " or name another with VENV=path",
    )


def test_venv_names_the_virtualenv_and_a_wrong_one_is_refused(tmp_path):
    assert_one_line(
        run_up(VENV=str(tmp_path / "nothing")),
        2,
        f"VENV='{tmp_path / 'nothing'}' is no virtualenv (it has no bin/python)",
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    bare = tmp_path / "bare"
    assert_one_line(
        run_up(VENV=str(bare)),
        1,
        f"the virtualenv {bare} lacks flask, fastapi, psutil, pydantic, psycopg, psycopg_pool,"
        " granian:"
        f" {bare}/bin/pip install -r requirements.txt",
    )


def test_venv_chooses_the_virtualenv_the_apps_run_from(tmp_path):
    copy = project_copy(tmp_path)  # no .venv of its own
    env = up_env(VENV=str(ROOT / ".venv"))
    process = subprocess.Popen(
        [str(copy / "up.sh")], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert " serves Flask on " in process.stdout.readline()
        served = running(psutil.Process(process.pid).children(), ["cmdline"])
        assert served and all(
            p.info["cmdline"][0] == str(ROOT / ".venv" / "bin" / "python") for p in served
        )
    finally:
        process.terminate()
        process.wait(30)


def unit_python_version() -> str | None:
    """The Python version of unitd's Python module, as Unit itself logs it at start."""
    user = pwd.getpwuid(os.getuid())
    with tempfile.TemporaryDirectory(prefix="fvf-", dir="/tmp") as state:
        unitd = subprocess.Popen(
            [
                *(UNITD, "--no-daemon", "--control", f"unix:{state}/control.sock"),
                *("--statedir", state, "--pid", f"{state}/unit.pid", "--tmpdir", state),
                *("--log", "/dev/stderr", "--user", user.pw_name),
                *("--group", grp.getgrgid(user.pw_gid).gr_name),
            ],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            for line in unitd.stderr:  # discovery comes before the controller
                found = re.search(r'module: python (\S+) "', line)
                if found or "controller started" in line:
                    return found[1] if found else None
        finally:
            os.killpg(unitd.pid, signal.SIGKILL)
            unitd.wait()
    return None


def python_version(python: str | Path) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()


def python_of_another_build(than: str) -> str | None:
    """A Python interpreter here of another version than `than`, of its minor version if
    there is one (pyenv's 3.11.7 against Debian's 3.11.2: the same minor version is not
    the same standard library)."""
    candidates = [shutil.which("python3"), *map(shutil.which, ("python3.11", "python3.12"))]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python3")]
    others = [c for c in dict.fromkeys(filter(None, candidates)) if python_version(c) != than]
    minor = than.rsplit(".", 1)[0]
    same_minor = [c for c in others if python_version(c).startswith(minor + ".")]
    return (same_minor or others or [None])[0]


@pytest.mark.unit
@needs_unitd
def test_under_unit_a_virtualenv_of_another_python_build_is_refused_before_unit_starts(
    tmp_path,
):
    unit_version = unit_python_version()
    assert unit_version, f"{UNITD} logs no Python module"
    python = python_of_another_build(than=unit_version)
    if python is None:
        pytest.skip(f"no Python here but {unit_version}, Unit's: no other build to refuse")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True)
    state = tmp_path / "tmp"  # where up.sh would put Unit's state, had it started it
    state.mkdir()
    result = run_up(SERVER="unit", UNITD=UNITD, VENV=str(venv), TMPDIR=str(state))
    # One line, and no line of Unit's log: unitd never started.
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("up.sh: Unit's Python module ")
    assert f" runs Python {unit_version} (" in line
    assert f"but VENV {venv} was made by Python {python_version(venv / 'bin/python')} (" in line
    assert list(state.iterdir()) == []
    # It names the Python to make one with, and that Python is the one Unit runs.
    named = re.search(r"make one with that Python: (\S+) -m venv DIR && DIR/bin/pip install", line)
    assert named, line
    assert python_version(named[1]) == unit_version


@pytest.mark.unit
@needs_unitd
def test_under_unit_with_a_virtualenv_of_units_python_fastapis_status_answers(served_factory):
    venv = Path(os.environ.get("VENV") or ROOT / ".venv")
    unit_version = unit_python_version()
    if python_version(venv / "bin/python") != unit_version:
        pytest.skip(f"VENV ({venv}) is not made by Unit's Python {unit_version}: set VENV=")
    served = served_factory(SERVER="unit", UNITD=UNITD)
    for app, url in served.urls.items():
        answer = httpx2.get(url + "/status", timeout=10)
        assert answer.status_code == 200, (app, answer.text)
        assert answer.json()["process"]["pids"]


@pytest.mark.parametrize(
    "server", ["granian", pytest.param("unit", marks=[pytest.mark.unit, needs_unitd])]
)
def test_an_app_that_answers_but_fails_status_is_refused_with_its_own_error(tmp_path, server):
    copy = project_copy(tmp_path)
    app = copy / "fastapi-asgi.py"
    route = "def status() -> Response:\n"
    assert route in app.read_text()
    app.write_text(app.read_text().replace(route, route + "    import no_such_module_for_status\n"))
    env = up_env(SERVER=server, UNITD=UNITD, VENV=os.environ.get("VENV") or str(ROOT / ".venv"))
    process = subprocess.run(
        [str(copy / "up.sh")], env=env, capture_output=True, text=True, timeout=90
    )
    ours = [line for line in process.stderr.splitlines() if line.startswith("up.sh:")]
    assert (process.returncode, process.stdout) == (1, ""), process.stderr
    assert ours[-1] == (
        "up.sh: FastAPI answers / but /status answered 500:"
        " ModuleNotFoundError: No module named 'no_such_module_for_status'"
    ), process.stderr
    ports = [int(env["FLASK_PORT"]), int(env["FASTAPI_PORT"])]
    _, alive = psutil.wait_procs(processes_serving(ports), timeout=5)
    assert alive == []


@pytest.mark.unit
@needs_unitd
def test_under_unit_an_app_that_fails_to_import_is_reported_with_its_own_error(tmp_path):
    copy = project_copy(tmp_path)
    app = copy / "flask-wsgi.py"
    app.write_text("import no_such_module_here\n" + app.read_text())
    # Unit's state folder goes in TMPDIR, and its processes name it: a short one, for
    # the control socket's path (at most 107 bytes)
    state = Path(tempfile.mkdtemp(prefix="fvf-", dir="/tmp"))
    result = run_up(
        up_sh=copy / "up.sh",
        SERVER="unit",
        UNITD=UNITD,
        VENV=os.environ.get("VENV") or str(ROOT / ".venv"),  # one made by Unit's Python
        TMPDIR=str(state),
    )
    assert result.returncode == 1
    ours = [line for line in result.stderr.splitlines() if line.startswith("up.sh:")]
    assert ours[0] == (
        'up.sh: Python failed to import module "flask-wsgi":'
        " ModuleNotFoundError: No module named 'no_such_module_here'"
    )
    assert "serves" not in result.stdout
    time.sleep(0.5)
    left = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(state) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []
    assert list(state.iterdir()) == []  # and up.sh removed Unit's state
    state.rmdir()


@pytest.mark.skipif(os.getuid() != 0, reason="only root's up.sh runs the apps as another user")
def test_run_by_root_up_sh_refuses_a_project_nobody_can_read(tmp_path):
    # pytest's temporary folder is root's alone: nobody cannot read a project copied there.
    copy = project_copy(tmp_path)
    venv = os.environ.get("VENV") or str(ROOT / ".venv")
    result = run_up(up_sh=copy / "up.sh", SERVER="granian", VENV=venv, APP_USER=None)
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("up.sh: up.sh runs as root, so the apps run as nobody (APP_USER),")
    assert line.endswith("or APP_USER=root to run the apps as root")


def wrapper(folder: Path, before: str = "") -> tuple[Path, Path]:
    """A SERVER_PREFIX command that writes its arguments down, does `before`, and runs them."""
    record, script = folder / "wrapped", folder / "wrap"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n{before}\nexec "$@"\n')
    script.chmod(0o755)
    return script, record


@pytest.mark.parametrize(
    "server", ["granian", pytest.param("unit", marks=[pytest.mark.unit, needs_unitd])]
)
def test_a_server_prefix_runs_each_server_under_it(tmp_path, served_factory, server):
    script, record = wrapper(tmp_path)
    served = served_factory(SERVER=server, UNITD=UNITD, SERVER_PREFIX=str(script))
    lines = record.read_text().splitlines()
    if server == "granian":  # one granian per app, on its own port
        assert len(lines) == 2, lines
        for port in served.ports.values():
            assert sum(f"-m granian --host 127.0.0.1 --port {port} " in line for line in lines) == 1
    else:  # one unitd for both
        assert len(lines) == 1 and lines[0].startswith(shutil.which(UNITD)), lines
    for url in served.urls.values():
        assert httpx2.get(url + "/json", timeout=10).status_code == 200


def test_apps_slower_to_answer_than_ready_within_s_are_refused_and_stopped(tmp_path):
    script, _ = wrapper(tmp_path, before="sleep 4")
    started = time.monotonic()
    result = run_up(SERVER_PREFIX=str(script), READY_WITHIN_S="1")
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("up.sh:")]
    assert ours[-1].startswith("up.sh: the apps did not answer within 1 s ("), result.stderr
    assert not [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(script) in " ".join(p.info["cmdline"] or [])
    ]
