"""The one configuration of serving: conf.json and the environment, read and checked once.

`Config.from_env()` reads every setting, refuses a bad one in one line (exit code 2), and
every other part of serve/ receives the Config it returns. The apps take their METRICS_*
settings from serve.settings (`MetricsConfig`). Standard library only: start.sh checks the
settings it passes into the container with these same rules, before it builds anything,
with whatever python3 the host has:

    $ METRICS_INTERVAL=0 python3 -m serve.config --check METRICS_INTERVAL WORKERS
    invalid metrics setting: METRICS_INTERVAL='0': Input should be greater than or equal to 0.1
    $ echo $?
    2

An empty setting is refused like a bad one: it never means the default.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from serve.apps import AppModule, read_apps
from serve.conf import load_conf
from serve.database_config import database_choice, default_pool_size, read_database, split_problem
from serve.exits import Exit
from serve.settings import (
    DATABASE,
    DATABASE_POOL_SIZE,
    DATABASE_URL,
    METRICS_INTERVAL,
    METRICS_SLOTS,
    PORTS,
    READY_WITHIN_S,
    SERVER,
    SETTINGS,
    THREADS,
    UNIT_CONF,
    UNITD,
    WORKERS,
    ConfigError,
    MetricsConfig,
    Number,
    read_app_user,
    read_host,
    read_ports,
    read_server_prefix,
    read_venv,
)

SERVERS = ("unit", "granian")


@dataclass(frozen=True)
class Config:
    """Everything serving needs to know, checked: read it with Config.from_env()."""

    server: str  # one of SERVERS
    venv: Path
    unitd: str  # where the unitd to run is (SERVER=unit), else UNITD as given
    app_user: str
    host: str
    ports: dict[str, int]  # by port's app: flask, fastapi
    apps: dict[str, AppModule]  # by port's app: what serves there (APPS)
    workers: int
    threads: int
    metrics: MetricsConfig
    # The METRICS_* settings given, as given: Unit gives the apps no environment of its own.
    passed_on: dict[str, str]
    conf_path: Path
    conf: dict = dataclasses.field(repr=False)
    # postgres: started here, before the apps; url: DATABASE_URL's; none: no database.
    database: str = "none"
    database_url: str | None = None
    pool_size: int = 1  # database connections per worker, the same for both apps
    postgres_bindir: Path | None = None  # with database "postgres": its server programs
    postgres_user: str = ""  # with database "postgres": the user it runs as
    server_prefix: tuple[str, ...] = ()  # the command each server runs under, if any
    ready_within_s: int = int(READY_WITHIN_S.default or 0)

    @property
    def header_read_timeout_s(self) -> int:
        return self.conf["settings"]["http"]["header_read_timeout"]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        """The settings in environ (os.environ), or ConfigError naming the first bad one."""
        environ = dict(os.environ if environ is None else environ)
        conf_path = Path(UNIT_CONF.text(environ) or "")
        if conf_path == Path():
            raise ConfigError("UNIT_CONF is empty")
        conf = load_conf(conf_path)
        unitd = UNITD.text(environ) or ""
        if not unitd:
            raise ConfigError(f"{UNITD.name} is empty")
        server = SERVER.text(environ)
        if server is None:
            server = "unit" if unitd and shutil.which(unitd) else "granian"
        if server not in SERVERS:
            raise ConfigError(f"SERVER={server!r} is neither unit nor granian")
        if server == "unit":
            unitd = shutil.which(unitd) or ""
            if not unitd:
                raise ConfigError(
                    f"no unitd ({UNITD.text(environ)!r}) on PATH; SERVER=granian serves the"
                    " apps without it"
                )
        ports = read_ports(environ)
        venv = read_venv(environ)
        app = next(iter(conf["applications"].values()))
        workers, threads = (
            # Unit's default for either is 1.
            int(setting.read(environ.get(setting.name, str(app.get(setting.conf_key, 1)))))
            for setting in (WORKERS, THREADS)
        )
        database, database_url, bindir, postgres_user = read_database(environ)
        pool_size = int(
            DATABASE_POOL_SIZE.read(
                environ.get(DATABASE_POOL_SIZE.name, default_pool_size(conf, threads))
            )
        )
        if server == "unit" and database != "none":
            problem = split_problem(pool_size, threads)
            if problem:
                raise ConfigError(problem)
        return cls(
            server=server,
            venv=venv,
            unitd=unitd,
            app_user=read_app_user(environ),
            host=read_host(environ),
            ports=ports,
            apps=read_apps(environ, conf, venv),
            workers=workers,
            threads=threads,
            metrics=MetricsConfig.from_env(environ),
            passed_on={
                s.name: environ[s.name]
                for s in (METRICS_INTERVAL, METRICS_SLOTS)
                if s.name in environ
            },
            conf_path=conf_path,
            conf=conf,
            database=database,
            database_url=database_url,
            pool_size=pool_size,
            postgres_bindir=bindir,
            postgres_user=postgres_user,
            server_prefix=read_server_prefix(environ),
            ready_within_s=int(READY_WITHIN_S.read(READY_WITHIN_S.text(environ) or "")),
        )


def check(names: list[str], environ: dict[str, str]) -> None:
    """Check the named settings (start.sh passes them into the container) as up.sh would."""
    known = {setting.name: setting for setting in SETTINGS}
    for name in names:
        if name not in known:
            raise ValueError(f"no setting {name}")
        setting = known[name]
        if isinstance(setting, Number) and setting not in (METRICS_INTERVAL, METRICS_SLOTS):
            text = setting.text(environ)
            if text is not None:
                setting.read(text)
    if {s.name for s in PORTS.values()} <= set(names):
        read_ports(environ)
    if {METRICS_INTERVAL.name, METRICS_SLOTS.name} & set(names):
        MetricsConfig.from_env(environ)
    if {DATABASE.name, DATABASE_URL.name} & set(names):
        database_choice(environ)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--check":
        print("usage: python3 -m serve.config --check SETTING...", file=sys.stderr)
        return Exit.BAD_SETTING
    try:
        check(argv[1:], dict(os.environ))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
