"""conf.json, NGINX Unit's configuration of both apps: checked, and adapted to where it runs.

    python3 unit_conf.py check          # exit 1 with the problems, if any
    python3 unit_conf.py render         # conf.json for this host and these settings, on stdout
    python3 unit_conf.py applications   # only that part of it (likewise: settings, listeners)
    python3 unit_conf.py fairness       # "PROCESSES THREADS", which granian uses too
    python3 unit_conf.py header-read-timeout   # seconds, which granian uses too

UNIT_CONF=path reads another file instead of conf.json.

conf.json is written for the container: listeners on *:8080 and *:8081, the
apps in /app. `render` moves the listeners to HOST, FLASK_PORT and
FASTAPI_PORT, the apps to this folder and VENV (.venv), passes METRICS_* on (Unit
gives apps no environment of their own), and applies WORKERS and THREADS.
"""

import inspect
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# UNIT_CONF names another configuration, e.g. to try one out; conf.json is the real one.
CONF = Path(os.environ.get("UNIT_CONF") or ROOT / "conf.json")
APPS = {"flask": "FLASK_PORT", "fastapi": "FASTAPI_PORT"}
PASSED_ON = ("METRICS_INTERVAL", "METRICS_SLOTS")
# settings.http: how long Unit waits for a client before it closes the connection, in
# seconds. granian has one such timeout (--http1-header-read-timeout, 1-60 s) for both
# a request's headers and the idle time between requests, so those two must be equal.
TIMEOUTS = ("header_read_timeout", "idle_timeout", "body_read_timeout", "send_timeout")
MAX_TIMEOUT_S = 60


def load(path: Path = CONF) -> dict:
    return json.loads(path.read_text())


def interface_of(callable_) -> str:
    """'asgi' for an ASGI app (an async call of scope, receive, send), else 'wsgi'."""
    call = callable_ if inspect.isfunction(callable_) else type(callable_).__call__
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


def problems(conf: dict, root: Path = ROOT, import_apps: bool = True) -> list[str]:
    """What in conf breaks the rules that matter here (Unit's own and fairness)."""
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
    for key in ("processes", "threads"):
        values = {name: app.get(key) for name, app in apps.items()}
        if len(set(values.values())) > 1:
            found.append(f"unequal {key}: {values}")
    return found


def render(conf: dict, environ: dict[str, str], root: Path = ROOT) -> dict:
    """conf adapted to this folder, its virtualenv (VENV or .venv) and the settings in environ."""
    host = environ.get("HOST", "127.0.0.1")
    host = "*" if host in ("0.0.0.0", "*") else host
    targets = {listener["pass"]: address for address, listener in conf["listeners"].items()}
    listeners = {}
    for name, port_variable in APPS.items():
        port = environ.get(port_variable, targets[f"applications/{name}"].rsplit(":", 1)[1])
        listeners[f"{host}:{port}"] = {"pass": f"applications/{name}"}
    applications = {}
    for name, app in conf["applications"].items():
        app = {**app, "path": str(root)}
        venv = root / environ.get("VENV", ".venv")  # up.sh's VENV; an absolute one stays
        if (venv / "bin" / "python").exists():
            app["home"] = str(venv)
        passed = {key: environ[key] for key in PASSED_ON if key in environ}
        if passed:
            app["environment"] = {**app.get("environment", {}), **passed}
        if "WORKERS" in environ:
            app["processes"] = int(environ["WORKERS"])
        if "THREADS" in environ:
            app["threads"] = int(environ["THREADS"])
        applications[name] = app
    return {**conf, "listeners": listeners, "applications": applications}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) == 2 else ""
    try:
        conf = load()
    except (OSError, ValueError) as error:
        print(f"unit_conf.py: cannot read {CONF}: {error}", file=sys.stderr)
        return 1
    if command == "check":
        found = problems(conf)
        for problem in found:
            print(f"conf.json: {problem}", file=sys.stderr)
        return 1 if found else 0
    if command == "render":
        print(json.dumps(render(conf, dict(os.environ)), indent=4))
        return 0
    if command in ("settings", "applications", "listeners"):
        print(json.dumps(render(conf, dict(os.environ)).get(command, {}), indent=4))
        return 0
    if command == "fairness":
        app = next(iter(conf["applications"].values()))
        print(app["processes"], app["threads"])
        return 0
    if command == "header-read-timeout":
        timeout_s = conf.get("settings", {}).get("http", {}).get("header_read_timeout")
        if type(timeout_s) is not int or not 1 <= timeout_s <= MAX_TIMEOUT_S:
            print(
                f"unit_conf.py: {CONF}: settings.http.header_read_timeout is {timeout_s!r},"
                f" not 1-{MAX_TIMEOUT_S} s",
                file=sys.stderr,
            )
            return 1
        print(timeout_s)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
