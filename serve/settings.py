"""Serving's settings: every environment variable with its default and meaning, and the
readers that turn one into a plain value or refuse it in one line (exit code 2).

Standard library only: the apps read their METRICS_* settings here (`MetricsConfig`), and
start.sh checks settings with these rules on the host (`python3 -m serve.config --check`).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from serve.exits import Exit, Refused

ROOT = Path(__file__).resolve().parent.parent
UNPRIVILEGED = "nobody"  # whom the apps run as when root runs up.sh and names no APP_USER
# The largest METRICS_SLOTS: a full buffer must stay well under 50 MiB per worker,
# with room for larger samples, and /stats of it under 200 ms on a busy machine
# (benchmarks/stats_cost.py measures both). 100000 met neither.
MAX_SLOTS = 20_000
# Only plain decimals, in ASCII: '1_000', ' 5', '1e1', '+5', '.5', 'nan' are typos, not numbers.
INTEGER = re.compile(r"-?[0-9]+")
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


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
    "METRICS_SLOTS",
    "60",
    "samples kept for /stats",
    high=MAX_SLOTS,
    what="a number of samples",
    example="60",
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
SERVER_PREFIX = Setting(
    "SERVER_PREFIX",
    None,
    "a command that each server runs under, with every process it starts, split into"
    " words as a shell would: valgrind --tool=callgrind --trace-children=yes, say, as"
    " benchmarks/whole_request.py counts the whole request; a slow one needs READY_WITHIN_S",
    "none: the servers run as they are",
)
READY_WITHIN_S = Number(
    "READY_WITHIN_S",
    "60",
    "seconds the apps have to answer / and /status once their server starts (under Unit,"
    " also for it to take their configuration)",
    high=3600,
    what="a number of seconds",
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
    SERVER_PREFIX,
    READY_WITHIN_S,
)
# Set by serve for the apps, not by hand: the event loops each worker of an ASGI app runs
# (threads under Unit; 1 under granian), over which its pool is split, and the lock file of
# the PostgreSQL started beside the apps (its first line is the postmaster's pid), whose
# processes /status counts.
ASGI_EVENT_LOOPS = Number(
    "ASGI_EVENT_LOOPS", "1", "event loops per worker", high=256, what="a number of loops"
)
DATABASE_LOCK_FILE = "DATABASE_LOCK_FILE"


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


def read_ports(environ: dict[str, str]) -> dict[str, int]:
    ports = {app: int(setting.read(setting.text(environ) or "")) for app, setting in PORTS.items()}
    if ports["flask"] == ports["fastapi"]:
        raise ConfigError(f"FLASK_PORT and FASTAPI_PORT are both {ports['flask']}")
    return ports


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


def read_server_prefix(environ: dict[str, str]) -> tuple[str, ...]:
    """SERVER_PREFIX's words, its command found on PATH; () where it is not set."""
    given = environ.get(SERVER_PREFIX.name)
    if given is None:
        return ()
    try:
        words = shlex.split(given)
    except ValueError as error:
        raise ConfigError(f"{SERVER_PREFIX.name}={given!r} is no command: {error}") from None
    if not words:
        raise ConfigError(f"{SERVER_PREFIX.name} is empty")
    found = shutil.which(words[0])
    if found is None:
        raise ConfigError(f"{SERVER_PREFIX.name}={given!r}: no {words[0]!r} on PATH")
    return (found, *words[1:])
