"""Shared fixtures: the two app modules, and both apps served by ./up.sh."""

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serve.config import Config  # noqa: E402
from serve.database_config import postgres_bindir  # noqa: E402
from serve.launch import Launch, LaunchError, launch  # noqa: E402
from serve.ports import free_ports  # noqa: E402
from serve.postgres import Postgres  # noqa: E402
from serve.settings import APP_USER  # noqa: E402
from serve.supervise import as_user  # noqa: E402

# Run as root, up.sh runs the apps as nobody, who cannot run a virtualenv of a Python in
# /root (this machine's .venv) nor read a project copied under pytest's own temporary
# folder: the suite asks for root by name, and the tests of privileges (test_serve.py,
# test_unit.py, test_up_start.py) the default.
if os.getuid() == 0:
    os.environ.setdefault(APP_USER.name, "root")

# Each test chooses its database: none inherited from the shell that runs the suite.
for _variable in ("DATABASE", "DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_LOCK_FILE"):
    os.environ.pop(_variable, None)

needs_postgres = pytest.mark.skipif(
    postgres_bindir() is None,
    reason="PostgreSQL's server (initdb, postgres) is not installed here: apt-get install"
    " postgresql-15 (.ci/run installs it)",
)


@contextlib.contextmanager
def postgres_cluster(**env: str) -> Iterator[tuple[Postgres, str]]:
    """A real PostgreSQL of the test's own, made as up.sh makes one, and its DATABASE_URL;
    stopped and removed after."""
    cluster = Postgres(Config.from_env({"SERVER": "granian", "DATABASE": "postgres", **env}))
    try:
        yield cluster, cluster.start()["DATABASE_URL"]
    finally:
        cluster.stop()
        cluster.close()


def load_app(module_name: str):
    """Import flask-wsgi or fastapi-asgi (dashed names, as the servers import them)."""
    return importlib.import_module(module_name)


@pytest.fixture(scope="session")
def flask_module():
    return load_app("flask-wsgi")


@pytest.fixture(scope="session")
def fastapi_module():
    return load_app("fastapi-asgi")


def running(processes: list[psutil.Process], attrs: list[str]) -> list[psutil.Process]:
    """Those of `processes` still running, each with `.info` holding `attrs` as
    psutil.process_iter gives it: a process listed a moment ago may have exited since."""
    alive = []
    for process in processes:
        try:
            process.info = process.as_dict(attrs)
        except psutil.NoSuchProcess:
            continue
        alive.append(process)
    return alive


def processes_serving(ports: list[int]) -> list[psutil.Process]:
    """Every process whose command line serves one of `ports` (granian's --port)."""
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if any(f"--port {port}" in " ".join(process.info["cmdline"] or []) for port in ports)
    ]


def port_settings() -> dict[str, str]:
    """FLASK_PORT and FASTAPI_PORT: two different free ports."""
    flask, fastapi = free_ports(2)
    return {"FLASK_PORT": str(flask), "FASTAPI_PORT": str(fastapi)}


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


def venv_usable_by(user: str) -> Path | None:
    """The suite's VENV (or .venv) if `user` can run it with the apps' packages, in the
    project's folder, else None."""
    venv = Path(os.environ.get("VENV") or ROOT / ".venv")
    imports = f"import flask, fastapi, granian, psutil; open({str(ROOT / 'flask-wsgi.py')!r})"
    probe = [str(venv / "bin" / "python"), "-c", imports]
    try:
        ran = subprocess.run(probe, cwd=ROOT, capture_output=True, timeout=60, **as_user(user))
    except OSError:
        return None
    return venv if ran.returncode == 0 else None


def serve(
    log: Path, root: Path = ROOT, frameworks: dict[str, str] | None = None, **env: str | None
) -> Launch:
    """`root`/up.sh under granian (unless `env` says otherwise), both apps answering (each
    port its own app, or the framework `frameworks` names for it); without a database
    unless `env` asks for one (tests/test_database.py does)."""
    if "DATABASE" not in env and "DATABASE_URL" not in env:
        env["DATABASE"] = "none"
    try:
        return launch(log, {"SERVER": "granian", **env}, root=root, frameworks=frameworks)
    except LaunchError as error:
        pytest.fail(str(error))


@pytest.fixture
def served_factory(tmp_path):
    """serve(root, **env), stopped and cleaned up after the test."""
    started: list[Launch] = []

    def start(
        root: Path = ROOT, frameworks: dict[str, str] | None = None, **env: str | None
    ) -> Launch:
        served = serve(tmp_path / f"up-{len(started)}.log", root, frameworks, **env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
