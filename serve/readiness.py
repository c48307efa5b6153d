"""Whether both apps serve: each answers GET / as itself and GET /status with 200.

up.sh waits for this before it says that it serves; serve.launch (the tests, the
benchmarks, ./compare.sh --launch), start.sh on the host and the images' HEALTHCHECK ask
it too. Standard library only, for the bare python3 of a host or of Unit's image:

    $ python3 -m serve.readiness; echo $?      # FLASK_PORT, FASTAPI_PORT (8080, 8081) of HOST
    Flask does not answer on port 8080 yet: [Errno 111] Connection refused
    1
    $ python3 -m serve.readiness 127.0.0.1 9080 9081; echo $?
    0
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from dataclasses import dataclass

from serve.apps import APPS
from serve.settings import HOST, ConfigError, read_ports


@dataclass(frozen=True)
class Answer:
    """What one app's port said: ready, or why not; broken if waiting will not mend it."""

    app: str
    ready: bool
    why: str
    broken: bool = False
    body: str = ""  # what it answered, where that matters


def probe_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`."""
    if host in ("0.0.0.0", "*"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host.strip("[]")


def get(host: str, port: int, path: str, timeout_s: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def ask(host: str, port: int, app: str, timeout_s: float = 5, framework: str = "") -> Answer:
    """Whether `app`'s port (flask or fastapi) serves, on host:port, an app of `framework`
    (by default the app's own)."""
    framework = framework or app
    name = APPS.get(framework, framework)
    try:
        status, body = get(host, port, "/", timeout_s)
        try:
            said = json.loads(body).get("framework") if status == 200 else None
        except (ValueError, AttributeError):
            said = None
        if said != framework:
            return Answer(app, False, f"port {port} answers GET / with {status}, not as {name}")
        status, body = get(host, port, "/status", timeout_s)
    except (OSError, http.client.HTTPException) as error:
        return Answer(app, False, f"{name} does not answer on port {port} yet: {error}")
    if status != 200:
        why = f"{name} answers / but /status answered {status}"
        return Answer(app, False, why, broken=True, body=body[:200].decode(errors="replace"))
    return Answer(app, True, f"{name} serves on port {port}")


def ask_both(
    host: str, ports: dict[str, int], timeout_s: float = 5, frameworks: dict[str, str] | None = None
) -> list[Answer]:
    """ask() of each app, one after the other, at probe_host(host); `frameworks` says what
    each port serves where that is not its own app (APPS)."""
    return [
        ask(probe_host(host), port, app, timeout_s, (frameworks or {}).get(app, app))
        for app, port in ports.items()
    ]


def main(argv: list[str]) -> int:
    try:
        if argv:
            host, flask_port, fastapi_port = argv
            ports = {"flask": int(flask_port), "fastapi": int(fastapi_port)}
        else:
            host, ports = HOST.text(os.environ) or "", read_ports(dict(os.environ))
    except (ValueError, ConfigError) as error:
        print(f"usage: python3 -m serve.readiness [HOST FLASK_PORT FASTAPI_PORT]: {error}")
        return 2
    # A HEALTHCHECK gets 5 s for both.
    answers = ask_both(host, ports, timeout_s=2)
    for answer in answers:
        if not answer.ready:
            print(answer.why, file=sys.stderr)
    return 0 if all(answer.ready for answer in answers) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
