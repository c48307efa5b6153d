"""The database behind /db /queries /fortunes /updates, ready with TechEmpower's data before
the apps start: a PostgreSQL started here, or the one DATABASE_URL names.

Started here (DATABASE=postgres, the default where its server is installed), it is a
cluster of its own, made by initdb in a temporary directory that is removed on exit,
listening on a unix socket only (listen_addresses ''), run by an unprivileged user:
POSTGRES_USER (postgres) when up.sh runs as root, else whoever runs up.sh. The socket's
directory lets in only the group of the apps' user (APP_USER), and
the apps connect to it as TechEmpower's benchmarkdbuser, to hello_world. It stops after the
apps have drained: a fast shutdown, then an immediate one. Its socket's lock file, whose
first line is the postmaster's pid, tells the apps' /status which processes to count.

Against DATABASE_URL nothing is started: the tables are made there where missing, and
checked. Either way the apps get DATABASE_URL and DATABASE_POOL_SIZE.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from serve.config import Config
from serve.exits import Refused
from serve.settings import DATABASE_LOCK_FILE, DATABASE_POOL_SIZE, DATABASE_URL
from serve.supervise import POLL_S, ServerLog, as_user, signal_group, spawn

# TechEmpower's names for the database and the role the apps connect as.
DATABASE_NAME = "hello_world"
ROLE = "benchmarkdbuser"
SUPERUSER = "postgres"
PORT = 5432  # names the socket's file only: nothing listens on TCP
READY_WITHIN_S = 60.0  # initdb and the first start, on a busy machine
# A fast shutdown ends the sessions and writes a checkpoint; an immediate one does not.
FAST_STOP_WITHIN_S = 5.0
IMMEDIATE_STOP_WITHIN_S = 2.0
SPARE_CONNECTIONS = 10  # beyond the apps' pools: serve's own, and a person's psql


def server_settings(sockets: Path, max_connections: int) -> dict[str, str]:
    """The settings the cluster runs with, beside initdb's defaults: a unix socket only, which
    the socket directory's group may use, and commits that do not wait for the disk (as
    TechEmpower runs PostgreSQL): /updates measures the apps, not this machine's disk."""
    return {
        "listen_addresses": "",
        "unix_socket_directories": str(sockets),
        "unix_socket_permissions": "0770",
        "port": str(PORT),
        "max_connections": str(max_connections),
        "synchronous_commit": "off",
    }


def conninfo(sockets: Path, user: str, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo  # in VENV, which runs this

    return make_conninfo(host=str(sockets), port=PORT, dbname=dbname, user=user)


def lock_file(sockets: Path) -> Path:
    """The socket's lock file: its first line is the postmaster's pid."""
    return sockets / f".s.PGSQL.{PORT}.lock"


def searchable(directory: Path, uid: int, gid: int) -> bool:
    """Whether a user (uid, with gid as its group) may pass through directory and every
    directory above it; root may pass anywhere."""
    if uid == 0:
        return True
    for step in [directory, *directory.parents]:
        found = step.stat()
        bit = 0o100 if found.st_uid == uid else 0o010 if found.st_gid == gid else 0o001
        if not found.st_mode & bit:
            return False
    return True


def check_data(url: str, where: str) -> None:
    """Make the tables and rows where missing, refusing in one line what is not as it must be."""
    import psycopg  # in VENV, which runs this

    import database

    try:
        problem = database.data_problem(url)
    except psycopg.Error as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise Refused(f"{where}: {said}") from None
    if problem:
        raise Refused(f"{where}: {problem}")


class Postgres:
    """A cluster of its own, for the Supervisor: started before the apps, stopped after."""

    name = "PostgreSQL"

    def __init__(self, config: Config):
        assert config.postgres_bindir is not None
        self.config = config
        self.described = (
            f"PostgreSQL started here as {config.postgres_user},"
            f" {config.pool_size} connection(s) per worker"
        )
        self.bindir = config.postgres_bindir
        self.processes: list[subprocess.Popen] = []
        self.log: ServerLog | None = None
        self.state: Path | None = None

    @property
    def sockets(self) -> Path:
        assert self.state is not None
        return self.state / "socket"

    @property
    def data(self) -> Path:
        assert self.state is not None
        return self.state / "data"

    def run_as(self) -> dict:
        """Popen's arguments that run a program as the user PostgreSQL runs as."""
        return as_user(self.config.postgres_user)

    def apps_gid(self) -> int:
        """The group of the user the apps run as (APP_USER)."""
        return pwd.getpwnam(self.config.app_user).pw_gid

    def make_directories(self) -> None:
        """The state directory, and in it the socket's, which only the apps' group may
        enter; its set-group-ID bit gives the socket and its lock file that group. It is
        made in the temporary folder (TMPDIR), or in /tmp where PostgreSQL's user or the
        apps' could not reach that one."""
        run_as = self.run_as()
        parent = Path(tempfile.gettempdir())
        apps = pwd.getpwnam(self.config.app_user)
        users = [(os.getuid(), os.getgid())]
        if run_as:
            users.append((run_as["user"], run_as["group"]))
        users.append((apps.pw_uid, apps.pw_gid))
        if not all(searchable(parent, uid, gid) for uid, gid in users):
            parent = Path("/tmp")
        self.state = Path(tempfile.mkdtemp(prefix="flask-vs-fastapi-postgres.", dir=parent))
        self.sockets.mkdir()
        if run_as:
            os.chown(self.state, run_as["user"], run_as["group"])
            os.chown(self.sockets, run_as["user"], self.apps_gid())
        os.chmod(self.state, 0o711)
        os.chmod(self.sockets, 0o2750)

    def start(self) -> dict[str, str]:
        """initdb, the server, the role, the database and the data: what the apps need to
        know of it, once it answers."""
        self.make_directories()
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                *("-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"),
                *("--no-locale", "--no-sync", "--no-instructions", "--allow-group-access"),
            ],
            cwd=self.state,
            capture_output=True,
            text=True,
            **self.run_as(),
        )
        if initdb.returncode != 0:
            said = (initdb.stderr.strip().splitlines() or ["no word"])[-1]
            raise Refused(f"PostgreSQL's initdb failed: {said}")
        self.run()
        import psycopg  # in VENV, which runs this

        with psycopg.connect(conninfo(self.sockets, SUPERUSER, "postgres"), autocommit=True) as su:
            su.execute(f"CREATE ROLE {ROLE} LOGIN")
            su.execute(f"CREATE DATABASE {DATABASE_NAME} OWNER {ROLE}")
        url = conninfo(self.sockets, ROLE, DATABASE_NAME)
        check_data(url, "the PostgreSQL started here")
        return {
            DATABASE_URL.name: url,
            DATABASE_POOL_SIZE.name: str(self.config.pool_size),
            DATABASE_LOCK_FILE: str(lock_file(self.sockets)),
        }

    def run(self) -> None:
        """The server on the cluster made by start(), once it accepts connections: again
        after stop(), with the same data and socket."""
        apps_connections = len(self.config.ports) * self.config.workers * self.config.pool_size
        settings = server_settings(self.sockets, apps_connections + SPARE_CONNECTIONS)
        process, self.log = spawn(
            [
                str(self.bindir / "postgres"),
                *("-D", str(self.data)),
                *(part for name, value in settings.items() for part in ("-c", f"{name}={value}")),
            ],
            cwd=self.state,
            user=self.config.postgres_user,
            stop_signal=signal.SIGINT,  # PostgreSQL's fast stop: it closes the apps' sessions
        )
        self.processes = [process]
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        import psycopg  # in VENV, which runs this

        process, admin = self.processes[0], conninfo(self.sockets, SUPERUSER, "postgres")
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            if process.poll() is not None:
                raise self.exited_early(0)
            try:
                psycopg.connect(admin, connect_timeout=2).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise Refused(
                        f"PostgreSQL did not accept connections within {READY_WITHIN_S:g} s:"
                        f" {str(error).strip().splitlines()[-1]}"
                    ) from None
            time.sleep(POLL_S)

    def exited_early(self, index: int) -> Refused:
        time.sleep(0.2)  # its last words may come a moment after its exit
        last = (self.log.text().splitlines() if self.log else []) or ["no word"]
        return Refused(f"PostgreSQL exited before it served: {last[-1]}")

    def stop(self) -> str:
        """A fast shutdown, then an immediate one: what it could not do cleanly, if anything."""
        left = ""
        for process in self.processes:
            for number, within_s in (
                (signal.SIGINT, FAST_STOP_WITHIN_S),
                (signal.SIGQUIT, IMMEDIATE_STOP_WITHIN_S),
            ):
                if process.poll() is not None:
                    break
                process.send_signal(number)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(within_s)
            if process.poll() is None:
                left = "PostgreSQL did not stop: killed"
            signal_group(process, signal.SIGKILL)  # its children, should any be left
            process.wait()
        if self.log:
            self.log.close()
        return left

    def close(self) -> None:
        if self.state is not None:
            shutil.rmtree(self.state, ignore_errors=True)


class External:
    """The PostgreSQL that DATABASE_URL names: nothing to start or stop, its cost not counted."""

    name = "DATABASE_URL's PostgreSQL"

    def __init__(self, config: Config):
        assert config.database_url is not None
        self.config = config
        self.described = (
            f"DATABASE_URL's PostgreSQL (its cost not counted),"
            f" {config.pool_size} connection(s) per worker"
        )
        self.processes: list[subprocess.Popen] = []
        self.url = config.database_url

    def start(self) -> dict[str, str]:
        check_data(self.url, "DATABASE_URL")
        return {
            DATABASE_URL.name: self.url,
            DATABASE_POOL_SIZE.name: str(self.config.pool_size),
        }

    def exited_early(self, index: int) -> Refused:
        raise AssertionError("DATABASE_URL's server is not ours to watch")

    def stop(self) -> str:
        return ""

    def close(self) -> None:
        pass


def for_config(config: Config) -> Postgres | External | None:
    """The database the settings ask for; None for none."""
    if config.database == "postgres":
        return Postgres(config)
    if config.database == "url":
        return External(config)
    return None
