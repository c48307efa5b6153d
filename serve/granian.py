"""granian serving both apps: one granian per app, each with its workers (processes).

Each granian is run as conf.json configures Unit, as far as granian can follow: its
processes and threads, and its one timeout for a request's headers and an idle
connection. It runs as APP_USER (granian has no option of its own for that: up.sh
starts it so). Like Unit it speaks HTTP/1 only: with HTTP/2 possible, granian would wait for
the first byte of a connection with no time limit.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable

from serve.config import Config
from serve.exits import Refused
from serve.ports import listen_problem
from serve.settings import (
    ASGI_EVENT_LOOPS,
    DATABASE_LOCK_FILE,
    DATABASE_POOL_SIZE,
    DATABASE_URL,
    PORTS,
)
from serve.supervise import POLL_S, ServerLog, spawn

# What the apps learn of the database from serve alone, never from up.sh's environment.
DATABASE_VARIABLES = frozenset(
    {DATABASE_URL.name, DATABASE_POOL_SIZE.name, DATABASE_LOCK_FILE, ASGI_EVENT_LOOPS.name}
)


def backpressure(open_files: int) -> int:
    """granian's cap on a worker's open connections, idle ones included: as many as the
    open files allow, less a few for the rest. Its default, 1,024, let idle clients
    starve the app."""
    return open_files - 128 if open_files > 256 else open_files // 2


def command(config: Config, app: str, open_files: int) -> list[str]:
    """The granian serving on `app`'s port (flask or fastapi) what APPS puts there, as
    conf.json and config say."""
    served = config.apps[app]
    argv = [
        *config.server_prefix,
        str(config.venv / "bin" / "python"),
        *("-m", "granian", "--host", config.host, "--port", str(config.ports[app])),
        *("--workers", str(config.workers), "--no-ws", "--http", "1"),
        *("--http1-header-read-timeout", str(config.header_read_timeout_s * 1000)),
        *("--backlog", "4096", "--backpressure", str(backpressure(open_files))),
        # A worker that dies is replaced at once; granian itself exits (and up.sh with
        # it) only when a replaced worker dies again within 5.5 s.
        "--respawn-failed-workers",
        *("--log-level", "warning", "--interface", served.interface),
    ]
    if served.interface == "wsgi":  # an ASGI app has one thread, its event loop
        argv += ["--blocking-threads", str(config.threads)]
    return [*argv, served.target]


def apps_environment(config: Config, app: str, environment: dict[str, str]) -> dict[str, str]:
    """What `app` runs with: up.sh's environment, with conf.json's for the app and
    `environment` on top, as Unit gives them; the database's only as serve says."""
    inherited = {k: v for k, v in os.environ.items() if k not in DATABASE_VARIABLES}
    return {**inherited, **config.conf["applications"][app].get("environment", {}), **environment}


class Granian:
    """Flask's granian and FastAPI's, for the Supervisor."""

    def __init__(self, config: Config):
        self.config = config
        self.apps = list(config.ports)
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[str, ServerLog] = {}

    def start(self, environment: dict[str, str]) -> None:
        open_files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if open_files == resource.RLIM_INFINITY:
            open_files = 1_048_576
        for app in self.apps:
            env = apps_environment(self.config, app, environment)
            argv = command(self.config, app, open_files)
            process, self.logs[app] = spawn(argv, env=env, user=self.config.app_user)
            self.processes.append(process)

    def exited_early(self, index: int) -> Refused:
        # A granian that exits before it has workers failed to bind: most often its port
        # was taken since up.sh checked it.
        app, process = self.apps[index], self.processes[index]
        try:
            os.killpg(process.pid, 0)  # a worker of it still runs: it did bind
        except ProcessLookupError:
            problem = listen_problem(self.config.host, self.config.ports[app], PORTS[app].name)
            if problem:
                return problem
        return Refused("a server exited before both apps answered; its output is above")

    def drain(self, deadline: float, hurried: Callable[[], bool]) -> str:
        """SIGTERM is granian's drain: it refuses new connections and lets its workers
        answer the requests they have. But a worker still loading the app loses that
        signal: until it has, it runs the copy of its master's handler it was forked with,
        which only takes note, and its master then waits for it with no time limit. A
        second SIGTERM is no remedy: it cuts off a draining worker's requests. So wait
        until every worker has loaded the app (up to the deadline, or a second signal)."""
        while self.loading():
            if time.monotonic() >= deadline or hurried():
                return "a granian worker was still loading the app"
            time.sleep(POLL_S)
        return ""

    def loading(self) -> bool:
        """Whether a granian has fewer workers than asked, or one that does not listen yet
        (it listens once it has loaded the app and set its own signal handlers)."""
        import psutil  # in VENV, which runs this; up.sh's checks before need no psutil

        for app, process in zip(self.apps, self.processes, strict=True):
            if process.poll() is not None:
                continue  # its master is gone: no worker of it will load the app
            try:
                workers = psutil.Process(process.pid).children()
                ports = [
                    {c.laddr.port for c in w.net_connections("inet") if c.status == "LISTEN"}
                    for w in workers
                ]
            except psutil.Error:  # a worker gone, or not yet reaped: one is being replaced
                return True
            if len(workers) < self.config.workers:
                return True
            if any(self.config.ports[app] not in listening for listening in ports):
                return True
        return False

    def check(self) -> None:
        pass  # nothing of granian's own: the virtualenv has it, or up.sh said so

    def close(self) -> None:
        pass
