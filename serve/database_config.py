"""The database's settings: which one (a PostgreSQL started here, DATABASE_URL's, or none),
where PostgreSQL's server programs are, the user it runs as, and the pool size rules; and
`DatabaseConfig`, what an app reads of them."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serve.conf import load_conf
from serve.settings import (
    ASGI_EVENT_LOOPS,
    DATABASE,
    DATABASE_LOCK_FILE,
    DATABASE_POOL_SIZE,
    DATABASE_URL,
    POSTGRES_USER,
    UNIT_CONF,
    ConfigError,
)

# Where Debian's packages (postgresql-15 and the like) put PostgreSQL's server programs.
DEBIAN_POSTGRES_BINDIRS = "/usr/lib/postgresql/*/bin"
POSTGRES_PROGRAMS = ("initdb", "postgres")
HOW_TO_GET_POSTGRES = (
    "install PostgreSQL's server (Debian: apt-get install postgresql-15) or set DATABASE_URL"
)
NO_DATABASE = f"none, so /db, /queries, /fortunes and /updates answer 503 ({HOW_TO_GET_POSTGRES})"


@dataclass(frozen=True)
class DatabaseConfig:
    """What an app needs of the database, from the environment serve gives it: checked once,
    at import, like MetricsConfig."""

    url: str | None  # None: no database
    pool_size: int  # connections per worker
    event_loops: int = 1  # pools per worker: an async pool belongs to one event loop
    lock_file: Path | None = None  # set where the database runs beside the apps

    @property
    def pool_size_per_loop(self) -> int:
        return self.pool_size // self.event_loops

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DatabaseConfig:
        environ = os.environ if environ is None else environ
        url = read_url(environ)
        given = environ.get(DATABASE_POOL_SIZE.name)
        if given is None:
            conf = load_conf(Path(UNIT_CONF.text(environ) or ""))
            given = default_pool_size(conf)
        pool_size = int(DATABASE_POOL_SIZE.read(given))
        loops = int(ASGI_EVENT_LOOPS.read(ASGI_EVENT_LOOPS.text(environ) or ""))
        problem = split_problem(pool_size, loops)
        if problem:
            raise ConfigError(problem)
        lock_file = environ.get(DATABASE_LOCK_FILE)
        return cls(url, pool_size, loops, Path(lock_file) if lock_file else None)


def default_pool_size(conf: dict, threads: int | None = None) -> str:
    """conf.json's DATABASE_POOL_SIZE (in the apps' environment), else the threads (by
    default conf.json's): a connection for each thread that may wait on one."""
    app = next(iter(conf["applications"].values()))
    threads = app.get("threads", 1) if threads is None else threads
    return str(app.get("environment", {}).get(DATABASE_POOL_SIZE.name, threads))


def split_problem(pool_size: int, loops: int) -> str | None:
    """Why `pool_size` connections per worker cannot be split evenly over `loops` event loops."""
    if pool_size % loops == 0:
        return None
    return (
        f"DATABASE_POOL_SIZE={pool_size} cannot be split evenly over the {loops} event loops"
        f" that each FastAPI worker runs under Unit (one per thread): give a multiple of {loops}"
    )


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are: beside an initdb on PATH, pg_config's bindir,
    or Debian's /usr/lib/postgresql/N/bin (the newest); None if nowhere."""
    candidates = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError):
            asked = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
            if asked.returncode == 0 and asked.stdout.strip():
                candidates.append(Path(asked.stdout.strip()))
    debian = Path("/").glob(DEBIAN_POSTGRES_BINDIRS.lstrip("/"))
    candidates += sorted(
        debian, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0
    )[::-1]
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in POSTGRES_PROGRAMS):
            return directory
    return None


def read_url(environ: dict[str, str]) -> str | None:
    url = DATABASE_URL.text(environ)
    if url == "":
        raise ConfigError("DATABASE_URL is empty")
    return url


def database_choice(environ: dict[str, str]) -> tuple[str | None, str | None]:
    """DATABASE and DATABASE_URL as given, checked against each other."""
    chosen, url = DATABASE.text(environ), read_url(environ)
    if url is not None and chosen is not None:
        raise ConfigError(
            f"DATABASE={chosen!r} and DATABASE_URL are both set: DATABASE_URL names the"
            " database to use, so leave DATABASE unset"
        )
    if chosen not in (None, "postgres", "none"):
        raise ConfigError(f"DATABASE={chosen!r} is neither postgres nor none")
    return chosen, url


def read_database(environ: dict[str, str]) -> tuple[str, str | None, Path | None, str]:
    """Which database (postgres, url or none), DATABASE_URL, and for postgres where its
    server programs are and the user it runs as."""
    chosen, url = database_choice(environ)
    if url is not None:
        return "url", url, None, ""
    if chosen == "none":
        return "none", None, None, ""
    bindir = postgres_bindir()
    if bindir is None:
        if chosen == "postgres":
            raise ConfigError(
                "DATABASE=postgres, but PostgreSQL's server (initdb, postgres) is neither on"
                f" PATH, nor pg_config's, nor in {DEBIAN_POSTGRES_BINDIRS}: {HOW_TO_GET_POSTGRES}"
            )
        return "none", None, None, ""
    return "postgres", None, bindir, read_postgres_user(environ)


def read_postgres_user(environ: dict[str, str]) -> str:
    me = pwd.getpwuid(os.getuid()).pw_name
    user = environ.get(POSTGRES_USER.name)
    if os.getuid() != 0:
        if user not in (None, me):
            raise ConfigError(
                f"POSTGRES_USER={user!r}: only root can run PostgreSQL as another user; up.sh"
                f" runs as {me}, and PostgreSQL with it"
            )
        return me
    user = "postgres" if user is None else user
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"POSTGRES_USER={user!r} is no user here: PostgreSQL refuses to run as root, so"
            " name an unprivileged user for it"
        ) from None
    if entry.pw_uid == 0:
        raise ConfigError(f"POSTGRES_USER={user!r} is root, which PostgreSQL refuses")
    return user
