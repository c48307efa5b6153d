"""conf.json (or UNIT_CONF): read, and checked against the rules that matter here, Unit's
own and fairness's, with every problem said in one line (exit code 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from serve.apps import APPS, interface_of
from serve.settings import ASGI_EVENT_LOOPS, DATABASE_POOL_SIZE, ROOT, ConfigError

# settings.http: how long Unit waits for a client before it closes the connection, in
# seconds. granian has one such timeout (--http1-header-read-timeout, 1-60 s) for both
# a request's headers and the idle time between requests, so those two must be equal.
TIMEOUTS = ("header_read_timeout", "idle_timeout", "body_read_timeout", "send_timeout")
MAX_TIMEOUT_S = 60


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
