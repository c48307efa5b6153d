"""Shared fixtures: the two app modules, free loopback ports, and both apps served by ./up.sh."""

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_app(module_name: str):
    """Import flask-wsgi or fastapi-asgi (dashed names, as the servers import them)."""
    return importlib.import_module(module_name)


@pytest.fixture(scope="session")
def flask_module():
    return load_app("flask-wsgi")


@pytest.fixture(scope="session")
def fastapi_module():
    return load_app("fastapi-asgi")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """Both apps running under ./up.sh on loopback."""

    process: subprocess.Popen
    flask_url: str
    fastapi_url: str
    log: Path
    started: list[psutil.Process] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return {"flask": self.flask_url, "fastapi": self.fastapi_url}

    def tree(self) -> list[psutil.Process]:
        """up.sh and every process below it."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        finally:
            # Whatever happened above, leave nothing behind: the servers lead
            # process groups of their own, so look for every process seen running.
            for process in self.started + self.tree():
                with contextlib.suppress(psutil.Error):
                    process.kill()


def serve(log: Path, **env: str) -> Served:
    """Start ./up.sh with `env` on two free ports and wait until both apps answer."""
    flask_port, fastapi_port = free_port(), free_port()
    process = subprocess.Popen(
        [str(ROOT / "up.sh")],
        env={
            **os.environ,
            "HOST": "127.0.0.1",
            "SERVER": "granian",
            "FLASK_PORT": str(flask_port),
            "FASTAPI_PORT": str(fastapi_port),
            **env,
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    served = Served(
        process, f"http://127.0.0.1:{flask_port}", f"http://127.0.0.1:{fastapi_port}", log
    )
    deadline = time.monotonic() + 30
    pending = set(served.urls.values())
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"up.sh exited with {process.returncode}:\n{log.read_text()}")
        for url in list(pending):
            try:
                # Patient, as compare.py's probe is: a first answer may wait for an import.
                if httpx2.get(url + "/", timeout=30).status_code == 200:
                    pending.discard(url)
            except httpx2.TransportError:
                pass
        time.sleep(0.1)
    served.started = served.tree()
    if pending:
        served.stop()
        pytest.fail(f"not answering after 30 s: {pending}\n{log.read_text()}")
    return served


@pytest.fixture
def served_factory(tmp_path):
    """serve(**env), stopped and cleaned up after the test."""
    started: list[Served] = []

    def start(**env: str) -> Served:
        served = serve(tmp_path / f"up-{len(started)}.log", **env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
