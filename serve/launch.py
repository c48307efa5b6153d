"""Both apps under ./up.sh on free loopback ports, in the background: a Launch, started,
awaited until both serve (serve.readiness), and stopped with nothing left behind.
./compare.sh --launch, the benchmarks and the tests use it:

    with launch(Path("results/up.log"), {"SERVER": "granian"}) as apps:
        httpx2.get(apps.urls["flask"] + "/json")
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from serve import readiness
from serve.ports import free_ports
from serve.settings import READY_WITHIN_S, ROOT
from serve.supervise import POLL_S, dies_with_parent

HOST = "127.0.0.1"  # where the apps listen: loopback only


class LaunchError(RuntimeError):
    """up.sh exited, or the apps did not serve in time: `reason` says so in one line, with
    up.sh's last words and where its log is; the message carries the whole log."""

    def __init__(self, what: str, log: Path):
        text = log.read_text()
        said = [line for line in text.splitlines() if line.startswith("up.sh: ")]
        words = f": {said[-1].removeprefix('up.sh: ')}" if said else ""
        self.reason = f"{what}{words} (log: {log})"
        super().__init__(f"{what}:\n{text}")


@dataclass
class Launch:
    """up.sh and the two apps it serves; a context manager that stops them."""

    process: subprocess.Popen
    ports: dict[str, int]
    argv: list[str]
    log: Path
    frameworks: dict[str, str] | None = None  # what each port serves, if not its own app
    seen: list[psutil.Process] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return {app: f"http://{HOST}:{port}" for app, port in self.ports.items()}

    def tree(self) -> list[psutil.Process]:
        """up.sh and every process below it now."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM to up.sh; its exit code, or None if it had to be killed."""
        # What runs now, in case up.sh dies before its servers (they lead sessions of
        # their own, and a killed up.sh leaves them to init): a stop while it was still
        # starting has seen nothing yet.
        self.seen += self.tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None
        finally:
            # The servers lead process groups of their own: kill whatever was seen
            # running, in case up.sh could not stop it.
            for process in self.seen + self.tree():
                with contextlib.suppress(psutil.Error):
                    process.kill()

    def wait_until_serving(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while True:
            if self.process.poll() is not None:
                raise LaunchError(f"./up.sh exited with {self.process.returncode}", self.log)
            answers = readiness.ask_both("127.0.0.1", self.ports, frameworks=self.frameworks)
            if all(answer.ready for answer in answers):
                return
            if time.monotonic() > deadline:
                whys = "; ".join(answer.why for answer in answers if not answer.ready)
                raise LaunchError(
                    f"the apps did not serve within {within_s:g} s ({whys})", self.log
                )
            time.sleep(POLL_S)

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *_) -> None:
        self.stop()


def launch(
    log: Path,
    env: dict[str, str | None] | None = None,
    prefix: list[str] | None = None,
    within_s: float | None = None,
    root: Path = ROOT,
    frameworks: dict[str, str] | None = None,
) -> Launch:
    """Start `root`/up.sh (after `prefix`, e.g. taskset) with `env` on top of this
    process's environment (None: unset) and two free ports; return once both apps serve
    (each port its own app, or the framework `frameworks` names for it, as APPS in `env`
    has it), within `within_s`: by default, 15 s more than up.sh gives the apps
    (READY_WITHIN_S), so that up.sh gives up first, and says why."""
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
    argv = [*(prefix or []), str(root / "up.sh")]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as log_file:
        environ = {
            **os.environ,
            "HOST": HOST,
            "FLASK_PORT": str(ports["flask"]),
            "FASTAPI_PORT": str(ports["fastapi"]),
            **(env or {}),
        }
        process = subprocess.Popen(
            argv,
            env={name: value for name, value in environ.items() if value is not None},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A SIGTERM (a drain) for up.sh when this process dies without stopping it.
            preexec_fn=dies_with_parent(signal.SIGTERM),
        )
    apps = Launch(process, ports, argv, log, frameworks)
    if within_s is None:  # a bad READY_WITHIN_S: up.sh refuses it at once
        given = environ.get(READY_WITHIN_S.name) or ""
        ready_s = given if not READY_WITHIN_S.problem(given) else READY_WITHIN_S.default
        within_s = float(ready_s or 0) + 15
    try:
        apps.wait_until_serving(within_s)
        apps.seen = apps.tree()  # a stop that lands here (a SIGTERM as the apps came up) stops them
    except BaseException:
        apps.stop()
        raise
    return apps
