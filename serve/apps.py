"""The app served on each port (APPS): a module of this project, and whether it is a WSGI
or an ASGI app and of which framework, as conf.json or the app object itself says."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.settings import MODULES, PORTS, ROOT, ConfigError

APPS = {"flask": "Flask", "fastapi": "FastAPI"}  # conf.json's names, and how to say them
# An app of this project as APPS names it: module[:callable], the module dotted from the
# project's root (flask-wsgi, baselines.flask-plain), as granian and Unit import it.
APP_TARGET = re.compile(r"(?P<module>[\w-]+(\.[\w-]+)*)(:(?P<callable>[A-Za-z_]\w*))?", re.ASCII)
# Run by VENV's python from the project's root: each module:callable's interface, as
# interface_of finds it, and the package its app's class comes from (its framework).
FIND_INTERFACES = """
import importlib, inspect, json, sys
from serve.apps import interface_of
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


def interface_of(callable_: Any) -> str:
    """'asgi' for an ASGI app (an async call of scope, receive, send), else 'wsgi'."""
    call = callable_ if inspect.isfunction(callable_) else type(callable_).__call__
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


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
