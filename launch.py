"""Both apps under ./up.sh on free loopback ports: started, awaited, and stopped with
nothing left behind. ./compare.sh --launch, the benchmarks and the tests use it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psutil

ROOT = Path(__file__).resolve().parent


class LaunchError(RuntimeError):
    """up.sh exited, or the apps did not answer in time; the message carries its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Launched:
    """up.sh and the two apps it serves."""

    process: subprocess.Popen
    urls: dict[str, str]
    argv: list[str]
    log: Path
    seen: list[psutil.Process] = field(default_factory=list)

    def tree(self) -> list[psutil.Process]:
        """up.sh and every process below it now."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM to up.sh; its exit code, or None if it had to be killed."""
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


def launch(
    log: Path,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
    wait_s: float = 60,
) -> Launched:
    """Start ./up.sh (after `prefix`, e.g. taskset) with `env` on top of this process's
    environment and two free ports, and return once both apps answer GET /."""
    ports = {"flask": free_port(), "fastapi": free_port()}
    argv = [*(prefix or []), str(ROOT / "up.sh")]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as log_file:
        process = subprocess.Popen(
            argv,
            env={
                **os.environ,
                "HOST": "127.0.0.1",
                "FLASK_PORT": str(ports["flask"]),
                "FASTAPI_PORT": str(ports["fastapi"]),
                **(env or {}),
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    urls = {app: f"http://127.0.0.1:{port}" for app, port in ports.items()}
    launched = Launched(process, urls, argv, log)
    try:
        _wait_until_answering(launched, wait_s)
    except BaseException:
        launched.stop()
        raise
    launched.seen = launched.tree()
    return launched


def _wait_until_answering(launched: Launched, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    # Patient probes: an app's first answer may wait for its import.
    with httpx2.Client(timeout=30) as client:
        for url in launched.urls.values():
            while True:
                if launched.process.poll() is not None:
                    raise LaunchError(
                        f"./up.sh exited with {launched.process.returncode}:\n"
                        + launched.log.read_text()
                    )
                if time.monotonic() > deadline:
                    raise LaunchError(
                        f"the apps did not answer within {wait_s:g} s:\n" + launched.log.read_text()
                    )
                with contextlib.suppress(httpx2.HTTPError):
                    if client.get(url + "/").status_code == 200:
                        break
                time.sleep(0.1)
