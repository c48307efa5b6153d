"""up.sh's start-up: it says "serves" only once both apps answer, and every way it can
fail before that is one clear line, quickly, with no traceback and nothing left running.
The Unit checks need a real unitd (UNITD) and skip without one."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import psutil
import pytest
from conftest import ROOT, processes_serving, running
from test_serve import up_env

UNITD = os.environ.get("UNITD", "unitd")
needs_unitd = pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)


def run_up(*args: str, up_sh: Path = ROOT / "up.sh", **env: str) -> subprocess.CompletedProcess:
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


def project_copy(tmp_path: Path) -> Path:
    """The project's files as a fresh clone has them: no .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    copy = tmp_path / "project"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def test_help_lists_every_setting():
    result = subprocess.run([str(ROOT / "up.sh"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for setting in ("SERVER", "VENV", "UNITD", "UNIT_USER", "HOST", "FLASK_PORT", "WORKERS"):
        assert f"\n  {setting} " in result.stdout


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
def test_a_port_in_use_is_one_line_naming_it_within_2_s(variable, host):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # for HOST=0.0.0.0: held on another address than asked
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_up(HOST=host, **{variable: str(port)})
        elapsed = time.monotonic() - started
    assert_one_line(result, 1, f"port {port} ({variable}) is already in use on {host}")
    assert elapsed < 2


def test_a_missing_virtualenv_is_one_line_saying_how_to_make_one(tmp_path):
    copy = project_copy(tmp_path)
    assert_one_line(
        run_up(up_sh=copy / "up.sh", VENV=""),
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
        f"the virtualenv {bare} lacks flask, fastapi, psutil, pydantic, granian:"
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


def unit_python_version() -> str:
    """The Python version of unitd's Python module, as Unit itself reports it at start."""
    help_text = subprocess.run([UNITD, "--help"], capture_output=True, text=True).stdout
    modules = Path(help_text.split("--modulesdir")[1].split('default: "')[1].split('"')[0])
    (module,) = modules.glob("python*.unit.so")
    return next(
        f"3.{minor}"
        for minor in range(6, 20)
        if f"libpython3.{minor}".encode() in module.read_bytes()
    )


def other_python(than: str) -> str | None:
    """A Python interpreter on this machine of another version than `than`."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 16)]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python3")]
    for candidate in filter(None, candidates):
        version = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if version and version != than:
            return candidate
    return None


@pytest.mark.unit
@needs_unitd
def test_under_unit_a_virtualenv_of_another_python_is_refused_before_unit_starts(tmp_path):
    unit_version = unit_python_version()
    python = other_python(than=unit_version)
    if python is None:
        pytest.skip(f"no Python here but {unit_version}, Unit's: no mismatch to make")
    subprocess.run([python, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    venv = tmp_path / "venv"
    venv_version = subprocess.run(
        [venv / "bin/python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = run_up(SERVER="unit", UNITD=UNITD, VENV=str(venv))
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert f"embeds Python {unit_version}, but VENV {venv} has Python {venv_version}" in line
    assert f"make the virtualenv with Python {unit_version}" in line


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
        VENV=str(ROOT / ".venv"),
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
