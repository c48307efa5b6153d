"""Shared fixtures: the two app modules, and both apps served by ./up.sh."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import Launched, LaunchError, launch  # noqa: E402


def load_app(module_name: str):
    """Import flask-wsgi or fastapi-asgi (dashed names, as the servers import them)."""
    return importlib.import_module(module_name)


@pytest.fixture(scope="session")
def flask_module():
    return load_app("flask-wsgi")


@pytest.fixture(scope="session")
def fastapi_module():
    return load_app("fastapi-asgi")


def serve(log: Path, **env: str) -> Launched:
    """./up.sh under granian (unless `env` says otherwise), both apps answering."""
    try:
        return launch(log, {"SERVER": "granian", **env})
    except LaunchError as error:
        pytest.fail(str(error))


@pytest.fixture
def served_factory(tmp_path):
    """serve(**env), stopped and cleaned up after the test."""
    started: list[Launched] = []

    def start(**env: str) -> Launched:
        served = serve(tmp_path / f"up-{len(started)}.log", **env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
