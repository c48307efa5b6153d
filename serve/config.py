"""The one configuration of serving: conf.json and the environment, read and checked once.

`Config.from_env()` reads every setting, refuses a bad one in one line (exit code 2), and
every other part of serve/ receives the Config it returns. The apps take their METRICS_*
settings from here too (`MetricsConfig`). Standard library only: start.sh checks the
settings it passes into the container with these same rules, before it builds anything,
with whatever python3 the host has:

    $ METRICS_INTERVAL=0 python3 -m serve.config --check METRICS_INTERVAL WORKERS
    invalid metrics setting: METRICS_INTERVAL='0': Input should be greater than or equal to 0.1
    $ echo $?
    2

An empty setting is refused like a bad one: it never means the default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.exits import Exit, Refused

ROOT = Path(__file__).resolve().parent.parent
APPS = {"flask": "Flask", "fastapi": "FastAPI"}  # conf.json's names, and how to say them
SERVERS = ("unit", "granian")
# settings.http: how long Unit waits for a client before it closes the connection, in
# seconds. granian has one such timeout (--http1-header-read-timeout, 1-60 s) for both
# a request's headers and the idle time between requests, so those two must be equal.
TIMEOUTS = ("header_read_timeout", "idle_timeout", "body_read_timeout", "send_timeout")
MAX_TIMEOUT_S = 60
UNPRIVILEGED = "nobody"  # whom the apps run as when root runs up.sh and names no APP_USER
# The largest METRICS_SLOTS: a full buffer must stay well under 50 MiB per worker,
# with room for larger samples, and /stats of it under 200 ms on a busy machine
# (benchmarks/stats_cost.py measures both). 100000 met neither.
MAX_SLOTS = 20_000
# Only plain decimals, in ASCII: '1_000', ' 5', '1e1', '+5', '.5', 'nan' are typos, not numbers.
INTEGER = re.compile(r"-?[0-9]+")
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# An app of this project as APPS names it: module[:callable], the module dotted from the
# project's root (flask-wsgi, baselines.flask-plain), as granian and Unit import it.
APP_TARGET = re.compile(r"(?P<module>[\w-]+(\.[\w-]+)*)(:(?P<callable>[A-Za-z_]\w*))?", re.ASCII)
# Run by VENV's python from the project's root: each module:callable's interface, as
# interface_of finds it, and the package its app's class comes from (its framework).
FIND_INTERFACES = """
import importlib, inspect, json, sys
from serve.config import interface_of
ARGUMENTS = {"wsgi": "environ, start_response", "asgi": "scope, receive, send"}
found = {}
for target in sys.argv[1:]:
    module, _, name = target.partition(":")
    try:
        app = getattr(importlib.import_module(module), name)
    except Exception as error:
        found[target] = {"error": f"{type(error).__name__}: {error}"}
        continue
    interface = interface_of(app) if callable(app) else "wsgi"
    try:
        inspect.signature(app).bind(*ARGUMENTS[interface].split(", "))
    except (TypeError, ValueError):
        found[target] = {"error": f"it takes no ({ARGUMENTS[interface]}): no app"}
        continue
    found[target] = {"interface": interface, "framework": type(app).__module__.split(".")[0]}
print(json.dumps(found))
"""


class ConfigError(Refused):
    """A setting is invalid; start-up must stop."""

    def __init__(self, message: str):
        super().__init__(message, Exit.BAD_SETTING)


@dataclass(frozen=True)
class Setting:
    """An environment variable: its default (None: another setting decides) and meaning."""

    name: str
    default: str | None
    meaning: str
    default_words: str = ""  # what --help says of the default, where it is not a value

    def text(self, environ: dict[str, str]) -> str | None:
        return environ.get(self.name, self.default)


@dataclass(frozen=True)
class Number(Setting):
    """A setting that is a plain decimal number from `low` to `high`."""

    low: float = 1
    high: float = 1
    integer: bool = True
    what: str = ""  # "a port number": how a refusal names what it should be
    example: str = ""  # "60": how a METRICS_* refusal shows one
    conf_key: str = ""  # the key of conf.json's applications that gives the default

    def problem(self, text: str) -> str | None:
        """What is wrong with text as this setting, in pydantic's words, or None."""
        if not (INTEGER if self.integer else DECIMAL).fullmatch(text):
            kind = "integer" if self.integer else "number"
            return f"Input should be a plain decimal {kind} such as {self.example}"
        value = float(text)
        if value < self.low:
            return f"Input should be greater than or equal to {self.low:g}"
        if value > self.high:
            return f"Input should be less than or equal to {self.high:g}"
        return None

    def read(self, text: str) -> int | float:
        problem = self.problem(text)
        if problem:
            raise ConfigError(f"{self.name}={text!r} is not {self.what} ({self.range})")
        return int(text) if self.integer else float(text)

    @property
    def range(self) -> str:
        return f"{self.low:g}-{self.high:g}"


SERVER = Setting(
    "SERVER", None, "the server: unit or granian", "unit where UNITD is on PATH, else granian"
)
VENV = Setting(
    "VENV",
    None,
    "the virtualenv with requirements.txt installed; under Unit, made by the Python that"
    " Unit's Python module links",
    ".venv; /venv in the image",
)
UNITD = Setting("UNITD", "unitd", "the unitd to run: a path, or a name on PATH")
APP_USER = Setting(
    "APP_USER",
    None,
    "the user the apps run as (granian's processes, Unit's apps and router); only root may"
    " name another than itself, and that user must be able to run VENV and read the project",
    f"{UNPRIVILEGED} when up.sh runs as root (NGINX Unit's own default), else whoever runs"
    " it; unit in the Unit image",
)
HOST = Setting("HOST", "127.0.0.1", "the address to listen on; 0.0.0.0 for every address")
PORTS = {
    "flask": Number("FLASK_PORT", "8080", "Flask's port", high=65535, what="a port number"),
    "fastapi": Number("FASTAPI_PORT", "8081", "FastAPI's port", high=65535, what="a port number"),
}
WORKERS = Number(
    "WORKERS",
    None,
    "processes per app",
    "conf.json's processes",
    high=64,
    what="a number of processes",
    conf_key="processes",
)
THREADS = Number(
    "THREADS",
    None,
    "threads per process; under granian FastAPI's event loop has one thread (granian"
    " allows no more for ASGI), so THREADS applies to Flask only",
    "conf.json's threads",
    high=256,
    what="a number of threads",
    conf_key="threads",
)
METRICS_INTERVAL = Number(
    "METRICS_INTERVAL",
    "10",
    "seconds between the sampler's samples",
    low=0.1,
    high=3600,
    integer=False,
    example="10 or 0.5",
)
METRICS_SLOTS = Number(
    "METRICS_SLOTS", "60", "samples kept for /stats", high=MAX_SLOTS, example="60"
)
MODULES = Setting(
    "APPS",
    None,
    "the app served on FLASK_PORT and the one on FASTAPI_PORT, each module[:callable] of"
    " this project (callable: app); flask-wsgi,flask-wsgi serves Flask twice, for an A/A"
    " comparison; WSGI or ASGI is found from the app",
    "conf.json's modules, flask-wsgi,fastapi-asgi",
)
UNIT_CONF = Setting(
    "UNIT_CONF",
    str(ROOT / "conf.json"),
    "another configuration of both apps to try, in Unit's format (granian takes its"
    " processes, threads and timeouts from it)",
    "conf.json",
)
DATABASE = Setting(
    "DATABASE",
    None,
    "the database behind /db, /queries, /fortunes and /updates: postgres (a PostgreSQL"
    " cluster of its own, made at start-up before the apps, on a unix socket only) or none"
    " (those routes answer 503)",
    "postgres where PostgreSQL's server is installed, else none",
)
DATABASE_URL = Setting(
    "DATABASE_URL",
    None,
    "an existing PostgreSQL to use instead of starting one (a libpq URL or connection"
    " string): nothing is started, its tables are made if missing, and its cost is not"
    " counted",
    "none",
)
DATABASE_POOL_SIZE = Number(
    "DATABASE_POOL_SIZE",
    None,
    "database connections per worker, the same for both apps; FastAPI under Unit splits"
    " them evenly over its event loops, one per thread",
    "conf.json's environment, else the threads",
    high=100,
    what="a number of connections",
)
POSTGRES_USER = Setting(
    "POSTGRES_USER",
    None,
    "the unprivileged user the started PostgreSQL runs as when up.sh runs as root"
    " (PostgreSQL refuses root)",
    "postgres; whoever runs up.sh when that is not root",
)
SETTINGS = (
    SERVER,
    VENV,
    UNITD,
    APP_USER,
    HOST,
    *PORTS.values(),
    WORKERS,
    THREADS,
    METRICS_INTERVAL,
    METRICS_SLOTS,
    MODULES,
    UNIT_CONF,
    DATABASE,
    DATABASE_URL,
    DATABASE_POOL_SIZE,
    POSTGRES_USER,
)
# Set by serve for the apps, not by hand: the event loops each worker of an ASGI app runs
# (threads under Unit; 1 under granian), over which its pool is split, and the lock file of
# the PostgreSQL started beside the apps (its first line is the postmaster's pid), whose
# processes /status counts.
ASGI_EVENT_LOOPS = Number(
    "ASGI_EVENT_LOOPS", "1", "event loops per worker", high=256, what="a number of loops"
)
DATABASE_LOCK_FILE = "DATABASE_LOCK_FILE"
# Where Debian's packages (postgresql-15 and the like) put PostgreSQL's server programs.
DEBIAN_POSTGRES_BINDIRS = "/usr/lib/postgresql/*/bin"
POSTGRES_PROGRAMS = ("initdb", "postgres")
HOW_TO_GET_POSTGRES = (
    "install PostgreSQL's server (Debian: apt-get install postgresql-15) or set DATABASE_URL"
)
NO_DATABASE = f"none, so /db, /queries, /fortunes and /updates answer 503 ({HOW_TO_GET_POSTGRES})"


@dataclass(frozen=True)
class MetricsConfig:
    """The sampler's settings: METRICS_INTERVAL and METRICS_SLOTS, checked once."""

    interval_s: float = float(METRICS_INTERVAL.default or 0)
    slots: int = int(METRICS_SLOTS.default or 0)

    def __post_init__(self) -> None:
        for setting, value in ((METRICS_INTERVAL, self.interval_s), (METRICS_SLOTS, self.slots)):
            problem = setting.problem(str(value))
            if problem:
                raise ConfigError(f"invalid metrics setting: {setting.name}={value!r}: {problem}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> MetricsConfig:
        environ = os.environ if environ is None else environ
        texts = {s: s.text(environ) or "" for s in (METRICS_INTERVAL, METRICS_SLOTS)}
        found = {setting: setting.problem(text) for setting, text in texts.items()}
        refused = [f"{s.name}={texts[s]!r}: {problem}" for s, problem in found.items() if problem]
        if refused:
            raise ConfigError(f"invalid metrics setting: {'; '.join(refused)}")
        return cls(float(texts[METRICS_INTERVAL]), int(texts[METRICS_SLOTS]))


@dataclass(frozen=True)
class AppModule:
    """The app served on one port: its module and callable, its interface (wsgi or asgi)
    and its framework (flask or fastapi), as its app object says."""

    module: str
    callable: str
    interface: str
    framework: str
    in_conf: bool  # one of conf.json's applications: the project's own app of its framework

    @property
    def target(self) -> str:
        return f"{self.module}:{self.callable}"

    @property
    def title(self) -> str:
        """How up.sh names it: "Flask" for the project's own Flask app, else its module too."""
        name = APPS.get(self.framework, self.framework)
        return name if self.in_conf else f"{self.target} ({name})"


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


def interface_of(callable_: Any) -> str:
    """'asgi' for an ASGI app (an async call of scope, receive, send), else 'wsgi'."""
    call = callable_ if inspect.isfunction(callable_) else type(callable_).__call__
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


def problems(conf: dict, root: Path = ROOT, import_apps: bool = True) -> list[str]:
    """What in conf breaks the rules that matter here (Unit's own, and fairness)."""
    found = []
    apps = conf.get("applications", {})
    listeners = conf.get("listeners", {})
    if not listeners:
        found.append("no listeners")
    for address, listener in listeners.items():
        target = listener.get("pass", "")
        if not target.startswith("applications/") or target.split("/", 1)[1] not in apps:
            found.append(f"listener {address} passes to {target!r}, which is no application")
    for name, app in apps.items():
        if not str(app.get("type", "")).startswith("python 3"):
            found.append(f"{name}: type {app.get('type')!r} is not 'python 3'")
        if app.get("protocol") not in ("wsgi", "asgi"):
            found.append(f"{name}: protocol {app.get('protocol')!r} is neither wsgi nor asgi")
        module_file = root / f"{app.get('module')}.py"
        if not module_file.is_file():
            found.append(f"{name}: module file {module_file.name} does not exist")
        elif import_apps:
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            callable_ = getattr(__import__(app["module"]), app.get("callable", "application"))
            if interface_of(callable_) != app.get("protocol"):
                found.append(
                    f"{name}: protocol {app.get('protocol')} but {app['module']}:"
                    f"{app.get('callable')} is a {interface_of(callable_)} app"
                )
        if "timeout" not in app.get("limits", {}):
            found.append(f"{name}: no limits.timeout")
    http = conf.get("settings", {}).get("http", {})
    for key in TIMEOUTS:
        value = http.get(key)
        if type(value) is not int or not 1 <= value <= MAX_TIMEOUT_S:
            found.append(f"settings.http.{key} is {value!r}, not 1-{MAX_TIMEOUT_S} s")
    if http.get("header_read_timeout") != http.get("idle_timeout"):
        found.append(
            "settings.http.header_read_timeout and idle_timeout differ; granian has one"
            " timeout for both"
        )
    for key in ("processes", "threads", "environment"):
        values = {name: app.get(key) for name, app in apps.items()}
        if key == "environment":  # but the event loops, which serve tells an ASGI app
            values = {
                name: {k: v for k, v in value.items() if k != ASGI_EVENT_LOOPS.name}
                if isinstance(value, dict)
                else value
                for name, value in values.items()
            }
        if len({json.dumps(value, sort_keys=True) for value in values.values()}) > 1:
            found.append(f"unequal {key}: {values}")
    for name, app in apps.items():
        environment = app.get("environment", {})
        if not isinstance(environment, dict):
            found.append(f"{name}: environment is not an object")
        elif DATABASE_POOL_SIZE.name in environment:
            pool_size = environment[DATABASE_POOL_SIZE.name]
            if not isinstance(pool_size, str) or DATABASE_POOL_SIZE.problem(pool_size):
                found.append(
                    f"{name}: environment {DATABASE_POOL_SIZE.name} is {pool_size!r}, not"
                    f" {DATABASE_POOL_SIZE.what} ({DATABASE_POOL_SIZE.range}) as a string"
                )
    if set(apps) != set(APPS):
        found.append(f"applications {sorted(apps)}, not {sorted(APPS)}")
    return found


def load_conf(path: Path) -> dict:
    """conf.json (or UNIT_CONF), refused in one line if unreadable or against the rules."""
    try:
        conf = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    found = problems(conf, import_apps=False) if isinstance(conf, dict) else ["not an object"]
    if found:
        raise ConfigError(f"{path}: {'; '.join(found)}")
    return conf


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
        )


def read_ports(environ: dict[str, str]) -> dict[str, int]:
    ports = {app: int(setting.read(setting.text(environ) or "")) for app, setting in PORTS.items()}
    if ports["flask"] == ports["fastapi"]:
        raise ConfigError(f"FLASK_PORT and FASTAPI_PORT are both {ports['flask']}")
    return ports


def conf_target(app: dict) -> str:
    """module:callable of one of conf.json's applications (Unit's default callable)."""
    return f"{app['module']}:{app.get('callable', 'application')}"


def read_apps(environ: dict[str, str], conf: dict, venv: Path) -> dict[str, AppModule]:
    """APPS: the app on each port, each a module of this project. conf.json says what its
    own applications are; any other is imported once by VENV's python, to ask it."""
    applications = conf["applications"]
    described = {conf_target(app): (app["protocol"], name) for name, app in applications.items()}
    text = environ.get(MODULES.name)
    if text is None:
        text = ",".join(conf_target(applications[app]) for app in PORTS)
    targets = []
    for given in text.split(","):
        found = APP_TARGET.fullmatch(given)
        if given.endswith(".py"):
            raise ConfigError(f"APPS={text!r}: {given!r} is a file: name its module")
        if not found:
            raise ConfigError(f"APPS={text!r}: {given!r} is not module[:callable]")
        module_file = Path(*found["module"].split(".")).with_suffix(".py")
        if not (ROOT / module_file).is_file():
            raise ConfigError(f"APPS={text!r}: {module_file} is no file of this project")
        targets.append(f"{found['module']}:{found['callable'] or 'app'}")
    if len(targets) != len(PORTS):
        raise ConfigError(
            f"APPS={text!r} names {len(targets)} app(s): one for FLASK_PORT, then one for"
            " FASTAPI_PORT"
        )
    asked = find_interfaces(venv, [t for t in dict.fromkeys(targets) if t not in described])
    apps = {}
    for app, target in zip(PORTS, targets, strict=True):
        module, _, name = target.partition(":")
        if target in described:
            interface, framework = described[target]
        elif "error" in asked[target]:
            raise ConfigError(f"APPS={text!r}: {target} cannot be served: {asked[target]['error']}")
        else:
            interface, framework = asked[target]["interface"], asked[target]["framework"]
        apps[app] = AppModule(module, name, interface, framework, in_conf=target in described)
    return apps


def find_interfaces(venv: Path, targets: list[str]) -> dict[str, dict[str, str]]:
    """Each module:callable's interface and framework, or the error importing it gave."""
    if not targets:
        return {}
    asked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", FIND_INTERFACES, *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        return json.loads(asked.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        said = (asked.stderr.strip().splitlines() or ["no word"])[-1]
        raise ConfigError(f"VENV's python could not import {', '.join(targets)}: {said}") from None


def read_host(environ: dict[str, str]) -> str:
    host = HOST.text(environ) or ""
    if not host:
        raise ConfigError("HOST is empty")
    try:
        socket.getaddrinfo("0.0.0.0" if host == "*" else host.strip("[]"), None)
    except socket.gaierror as error:
        raise ConfigError(f"HOST={host!r} is no address here: {error.strerror}") from None
    return host


def read_venv(environ: dict[str, str]) -> Path:
    given = environ.get(VENV.name)
    venv = Path(given).absolute() if given else ROOT / ".venv"
    if given != "" and (venv / "bin" / "python").exists():
        return venv
    if given is None:
        raise Refused(
            "there is no virtualenv in .venv: make one with 'python3 -m venv .venv &&"
            " .venv/bin/pip install -r requirements.txt' (./start.sh --local does that),"
            " or name another with VENV=path"
        )
    raise ConfigError(f"VENV={given!r} is no virtualenv (it has no bin/python)")


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


def read_app_user(environ: dict[str, str]) -> str:
    """APP_USER: by default, whoever runs up.sh, or UNPRIVILEGED where that is root."""
    me = pwd.getpwuid(os.getuid()).pw_name
    user = environ.get(APP_USER.name, UNPRIVILEGED if os.getuid() == 0 else me)
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"{APP_USER.name}={user!r} is no user here") from None
    if os.getuid() != 0 and user != me:
        raise ConfigError(
            f"{APP_USER.name}={user!r}: up.sh runs as {me}, and only root may run the apps"
            " as another user"
        )
    return user


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
