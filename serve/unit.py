"""NGINX Unit serving both apps: its Python checked, its configuration applied through its
control API, and its drain.

Unit runs the apps on the Python its Python module links, with VENV's packages: the
virtualenv must be made by that very Python (the same build, so the same standard
library), or the apps fail in ways no start-up shows (under a Python 3.11.2 module, a
3.11.7 virtualenv breaks `import ssl`, so FastAPI's /status answers 500). The control
API listens on a unix socket only, in a state directory that is removed on exit, so that
nothing saved rebinds the ports at the next start.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from serve.config import Config
from serve.exits import Refused
from serve.settings import ASGI_EVENT_LOOPS, ROOT
from serve.supervise import POLL_S, ServerLog, say, spawn

CONTROL_TIMEOUT_S = 2.0  # a control request that is no configuration
SOCKET_WITHIN_S = 10.0
# Unit's notes about one client's connection ("[info] 12#14 *26 h1p upgrade: bad method"),
# one per malformed request: a client sending those would make the log grow faster than
# it sends, and Unit's log has no level to leave them out. Its warnings and errors stay.
CLIENT_NOTE = re.compile(rb"\[info\] \d+#\d+ \*\d+ ")
# Run by VENV's python with the libpythons to ask: its own version, then each of theirs.
ASK_VERSIONS = """
import ctypes, json, sys
versions = {"venv": sys.version}
for path in sys.argv[1:]:
    library = ctypes.CDLL(path)
    library.Py_GetVersion.restype = ctypes.c_char_p
    versions[path] = library.Py_GetVersion().decode()
print(json.dumps(versions))
"""


def python_modules(unitd: str) -> list[Path]:
    """unitd's Python modules (python3.X.unit.so, or python3.unit.so) in its modules directory."""
    help_text = subprocess.run([unitd, "--help"], capture_output=True, text=True).stdout
    found = re.search(r'--modulesdir[^\n]*\n\s*default: "([^"]*)"', help_text)
    return sorted(Path(found[1]).glob("python*.unit.so")) if found else []


def linked_libpython(module: Path) -> Path | None:
    """The libpython that `module` links, as the loader finds it (None: none, or no ldd)."""
    try:
        listed = subprocess.run(["ldd", str(module)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return None
    found = re.search(r"libpython\S* => (/\S+)", listed)
    return Path(found[1]) if found else None


def one_line(version: str) -> str:
    return version.strip().replace("\n", " ")


def python_of_build(libpython: Path, version: str) -> str | None:
    """A python on this machine of the build `version` (libpython's), to make a virtualenv."""
    minor = re.match(r"libpython(\d+\.\d+)", libpython.name)
    name = f"python{minor[1]}" if minor else "python3"
    prefixes = {"/usr", "/usr/local", str(libpython.parent.parent), str(libpython.parent)}
    candidates = [shutil.which(name), *(f"{prefix}/bin/{name}" for prefix in sorted(prefixes))]
    for candidate in dict.fromkeys(filter(None, candidates)):
        try:
            said = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
            ).stdout
        except OSError:
            continue
        if one_line(said) == one_line(version):
            return candidate
    return None


def check_python(config: Config) -> None:
    """Refuse, in one line, a VENV not made by the Python that Unit's Python module links."""
    modules = python_modules(config.unitd)
    if not modules:
        raise Refused(
            f"{config.unitd} has no Python module (python3.X.unit.so in its modules directory,"
            f" see {config.unitd} --help): build Unit's Python module, or SERVER=granian"
            " serves without it"
        )
    libraries = {module: linked_libpython(module) for module in modules}
    if None in libraries.values():
        unknown = next(module for module, library in libraries.items() if library is None)
        say(
            f"cannot tell which Python {unknown} runs (ldd names no libpython):"
            " VENV must be made by it"
        )
        return
    asked = subprocess.run(
        [str(config.venv / "bin" / "python"), "-c", ASK_VERSIONS, *map(str, libraries.values())],
        capture_output=True,
        text=True,
    )
    if asked.returncode != 0:
        said = (asked.stderr.strip().splitlines() or ["no word"])[-1]
        raise Refused(f"VENV's python could not ask Unit's libpython its version: {said}")
    versions = json.loads(asked.stdout)
    venv_version = one_line(versions["venv"])
    if any(one_line(versions[str(library)]) == venv_version for library in libraries.values()):
        return
    module, library = next(iter(libraries.items()))
    assert library is not None
    unit_version = one_line(versions[str(library)])
    python = python_of_build(library, unit_version)
    advice = (
        f"make one with that Python: {python} -m venv DIR && DIR/bin/pip install -r"
        " requirements.txt, then VENV=DIR"
        if python
        else "make one with that Python (none on PATH here is that build), or build Unit's"
        " Python module against VENV's"
    )
    raise Refused(
        f"Unit's Python module {module} runs Python {unit_version} (from {library}), but VENV"
        f" {config.venv} was made by Python {venv_version}, another build whose standard"
        f" library does not fit it: {advice}"
    )


def render(conf: dict, config: Config, environment: dict[str, str]) -> dict:
    """conf.json adapted to this folder, VENV, and the settings: listeners on HOST and the
    ports, each passing to an application named for its port that serves what APPS puts
    there (the same module twice is two applications), the apps' processes and threads,
    and `environment` (METRICS_*, the database) added to theirs. An ASGI app is told that
    it runs an event loop per thread."""
    host = "*" if config.host in ("0.0.0.0", "*") else config.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    listeners = {
        f"{host}:{port}": {"pass": f"applications/{app}"} for app, port in config.ports.items()
    }
    applications = {}
    for name, served in config.apps.items():
        app = {
            **conf["applications"][name],
            "module": served.module,
            "callable": served.callable,
            "protocol": served.interface,
            "path": str(ROOT),
            "home": str(config.venv),
            "processes": config.workers,
            "threads": config.threads,
        }
        environment_here = {**environment}
        if app["protocol"] == "asgi":
            environment_here[ASGI_EVENT_LOOPS.name] = str(config.threads)
        if environment_here:
            app["environment"] = {**app.get("environment", {}), **environment_here}
        applications[name] = app
    return {**conf, "listeners": listeners, "applications": applications}


class ControlConnection(http.client.HTTPConnection):
    """HTTP to Unit's control API over its unix socket."""

    def __init__(self, socket_path: Path, timeout_s: float):
        super().__init__("localhost", timeout=timeout_s)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.socket_path))


def control(
    socket_path: Path,
    method: str,
    path: str,
    body: object = None,
    timeout_s: float = CONTROL_TIMEOUT_S,
) -> tuple[int, str]:
    """Unit's answer to a request of its control API: status (0: none) and text."""
    connection = ControlConnection(socket_path, timeout_s)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, f"/{path}", body=data)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        return 0, f"no answer from Unit's control socket: {error}"
    finally:
        connection.close()


def causes(log: str, part: str) -> list[str]:
    """Why Unit refused `part`, in one line each, from its log: its answer says only
    "Failed to apply new configuration"."""
    if part == "applications":
        # [alert] 12#12 Python failed to import module "flask-wsgi", then the app's traceback
        stamp = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
        found = []
        for match in re.finditer(
            rf"\] \d+#\d+ (Python failed [^\n]*)\n((?:(?!{stamp}).*\n)*)", log
        ):
            trace = [line for line in match[2].splitlines() if line.strip()]
            found.append(f"{match[1]}: {trace[-1] if trace else 'Unit logged no more'}")
        return found
    ports = dict.fromkeys(re.findall(r"bind\(.*?:(\d+)\\?\"?\) failed \(98", log))
    return [f"port {port} is already in use: Unit could not listen on it" for port in ports]


class Unit:
    """unitd, configured with both apps, for the Supervisor."""

    def __init__(self, config: Config):
        self.config = config
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[str, ServerLog] = {}
        self.state: Path | None = None
        self.bodies: Path | None = None

    @property
    def socket_path(self) -> Path:
        assert self.state is not None
        return self.state / "control.sock"

    def check(self) -> None:
        check_python(self.config)

    def start(self, environment: dict[str, str]) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="flask-vs-fastapi-unit."))
        user = pwd.getpwnam(self.config.app_user)
        group = grp.getgrgid(user.pw_gid).gr_name
        # Unit's router, which runs as APP_USER, keeps a request body over 8 KiB in a file
        # there: a directory of that user's own, as the state directory (the control
        # socket's) is root's alone where root runs up.sh, and a file it cannot make is a 500.
        self.bodies = Path(tempfile.mkdtemp(prefix="flask-vs-fastapi-bodies."))
        os.chown(self.bodies, user.pw_uid, user.pw_gid)
        # Unit's log goes to our stderr, and to the ServerLog, which up.sh reads for what
        # Unit's answers leave out (an app's own import error, a port held); less its
        # notes about single clients.
        unitd, log = spawn(
            [
                *self.config.server_prefix,
                self.config.unitd,
                *("--no-daemon", "--control", f"unix:{self.socket_path}"),
                *("--statedir", str(self.state), "--pid", str(self.state / "unit.pid")),
                *("--tmpdir", str(self.bodies), "--log", "/dev/stderr"),
                *("--user", user.pw_name, "--group", group),
            ],
            unsaid=CLIENT_NOTE,
        )
        self.processes.append(unitd)
        self.logs = dict.fromkeys(self.config.ports, log)
        deadline = time.monotonic() + SOCKET_WITHIN_S
        while not self.socket_path.is_socket() and unitd.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        if not self.socket_path.is_socket():
            raise Refused(f"unitd did not open its control socket within {SOCKET_WITHIN_S:g} s")
        # The settings (conf.json's timeouts), the applications, and the listeners once
        # the applications run: Unit 1.34 can stop answering an app for good when a
        # request reaches it while it starts. Unit answers a configuration of the
        # applications once their processes have imported their apps, which on a busy
        # machine takes long: as long as the apps have to answer.
        rendered = render(self.config.conf, self.config, environment)
        for part in ("settings", "applications", "listeners"):
            status, answer = control(
                self.socket_path,
                "PUT",
                f"config/{part}",
                rendered[part],
                self.config.ready_within_s,
            )
            if status != 200:
                time.sleep(0.2)  # Unit's log may come a moment after its answer
                for cause in causes(log.text() + "\n", part):
                    say(cause)
                raise Refused(
                    f"NGINX Unit rejected the configuration's {part} (HTTP {status}):\n{answer}"
                )

    def exited_early(self, index: int) -> Refused:
        return Refused("a server exited before both apps answered; its output is above")

    def drain(self, deadline: float, hurried: Callable[[], bool]) -> str:
        """Unit's own SIGTERM gives every request in flight an empty reply: first close the
        listeners (new connections are refused), then wait until no connection has a
        request left, in flight or queued. What is still busy at the deadline, if any."""
        if self.state is None or not self.socket_path.is_socket():
            return ""
        control(self.socket_path, "PUT", "config/listeners", {})
        while True:
            status, answer = control(self.socket_path, "GET", "status/connections/active")
            busy = int(answer) if status == 200 and answer.strip().isdigit() else 0
            if busy == 0 or time.monotonic() >= deadline or hurried():
                break
            time.sleep(POLL_S)
        return f"Unit still had {busy} connection(s) with a request" if busy else ""

    def close(self) -> None:
        for folder in (self.state, self.bodies):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
