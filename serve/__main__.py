"""Serves both apps side by side under one server: Flask (WSGI) on FLASK_PORT and FastAPI
(ASGI) on FASTAPI_PORT, with the same processes and threads each. It is the container's
command (up.sh runs it), and works on a host as well. Before the apps it starts the
database of /db, /queries, /fortunes and /updates: a PostgreSQL cluster of its own where
PostgreSQL's server is installed (DATABASE, below), which it stops after them.

  ./up.sh                              # NGINX Unit if unitd is on PATH, else granian
  SERVER=granian HOST=0.0.0.0 WORKERS=2 ./up.sh
  ./up.sh --help                       # this help; it takes no other argument

It says that it serves once both apps answer / and /status, and stays in the foreground.
SIGTERM, SIGINT or SIGHUP (a closed terminal) stops everything, as does any other way it
ends (an error, a closed stdout, a SIGKILL). A stop drains: new connections are refused,
and the requests already accepted get up to {grace_s:g} s to be answered; a second signal
cuts that short. A killed worker is replaced; if a server itself exits, the rest are
stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from serve import postgres
from serve.conf import load_conf
from serve.config import Config
from serve.exits import MEANINGS, SERVER_EXITED, Exit, Refused
from serve.granian import Granian
from serve.ports import listen_problem
from serve.settings import APP_USER, PORTS, ROOT, SETTINGS, UNIT_CONF, ConfigError, Number, Setting
from serve.supervise import GRACE_S, Server, Supervisor, as_user, say
from serve.unit import Unit

NEEDED = {"unit": ["flask", "fastapi", "psutil", "pydantic", "psycopg", "psycopg_pool"]}
NEEDED["granian"] = [*NEEDED["unit"], "granian"]


def describe(setting: Setting, conf: dict | None) -> str:
    """A setting as --help lists it: its meaning, its range, its default."""
    default = setting.default_words or setting.default
    if isinstance(setting, Number) and setting.conf_key and conf:
        default += f", {next(iter(conf['applications'].values())).get(setting.conf_key, 1)}"
    limits = f"{setting.range}; " if isinstance(setting, Number) else ""
    return textwrap.fill(
        f"{setting.meaning} ({limits}default: {default})",
        width=90,
        initial_indent=f"  {setting.name:<18} ",
        subsequent_indent=" " * 21,
        break_on_hyphens=False,  # flask-wsgi stays one word
    )


def help_text() -> str:
    try:
        conf = load_conf(Path(UNIT_CONF.text(os.environ) or ""))
    except ConfigError:
        conf = None
    codes = [(str(int(code)), meaning) for code, meaning in MEANINGS.items()]
    lines = [
        __doc__.format(grace_s=GRACE_S).rstrip(),
        "",
        "Settings, all from the environment and checked before anything starts (an empty",
        "one is refused, never taken for the default):",
        *(describe(setting, conf) for setting in SETTINGS),
        "",
        "Exit codes:",
        *(
            textwrap.fill(meaning, 90, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
            for code, meaning in [*codes, ("N", SERVER_EXITED)]
        ),
    ]
    return "\n".join(lines)


# Run by VENV's python as APP_USER, in the project's folder: the packages it lacks, or
# the first of the apps' files it cannot read.
ASK_VENV = """
import importlib.util, sys
for name in sys.argv[1:]:
    if name.endswith(".py"):
        try:
            open(name, "rb").close()
        except OSError as error:
            sys.exit(f"read {name}: {error.strerror}")
print(*(n for n in sys.argv[1:] if not n.endswith(".py") and importlib.util.find_spec(n) is None))
"""


def unusable(config: Config, why: str) -> Refused:
    """The refusal of an APP_USER other than up.sh's own that cannot run the apps here."""
    user = config.app_user
    return Refused(
        f"up.sh runs as root, so the apps run as {user} ({APP_USER.name}), who cannot {why}:"
        f" make VENV and the project readable by {user} (a virtualenv made by a Python"
        " outside /root, e.g. /usr/bin/python3 -m venv /opt/venv), name a user who can with"
        f" {APP_USER.name}=NAME, or {APP_USER.name}=root to run the apps as root"
    )


def missing_packages(config: Config) -> list[str]:
    """The packages the servers need that VENV lacks, asked as the apps will run (APP_USER);
    Refused if that user cannot run VENV's python or read the apps."""
    needed = NEEDED[config.server]
    # By their full path: the servers reach them so (a relative one would not need the
    # folders above the project to be open to the user, as the chdir is made as root).
    modules = [str(ROOT / f"{app['module']}.py") for app in config.conf["applications"].values()]
    python = str(config.venv / "bin" / "python")
    switched = as_user(config.app_user)
    try:
        asked = subprocess.run(
            [python, "-c", ASK_VENV, *needed, *modules],
            cwd=ROOT,
            capture_output=True,
            text=True,
            **switched,
        )
    except OSError as error:  # as APP_USER: VENV's python, or the project, out of reach
        if not switched:
            raise
        raise unusable(config, f"reach {error.filename}: {error.strerror}") from None
    if asked.returncode != 0 and switched and asked.stderr.startswith("read "):
        raise unusable(config, asked.stderr.strip())
    return asked.stdout.split() if asked.returncode == 0 else needed


def check_before_start(config: Config, server: Server) -> None:
    """What would make a server fail to start, said in one line before any starts."""
    server.check()
    missing = missing_packages(config)
    if missing:
        raise Refused(
            f"the virtualenv {config.venv} lacks {', '.join(missing)}:"
            f" {config.venv}/bin/pip install -r requirements.txt"
        )
    for app, port in config.ports.items():
        problem = listen_problem(config.host, port, PORTS[app].name)
        if problem:
            raise problem


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(help_text())
        return 0
    if argv:
        unknown = argv[1] if argv[0] in ("-h", "--help") else argv[0]
        say(
            f"unknown argument '{unknown}': up.sh takes its settings from the environment"
            " (--help lists them)"
        )
        return Exit.BAD_SETTING
    try:
        config = Config.from_env()
        server: Server = Unit(config) if config.server == "unit" else Granian(config)
        check_before_start(config, server)
    except Refused as refusal:
        say(str(refusal))
        return refusal.code
    return Supervisor(config, server, postgres.for_config(config)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
