"""Ports: free ones on loopback, and whether a server could listen on one now.

Standard library only: start.sh asks it on the host before it publishes the ports.

    $ python3 -m serve.ports 127.0.0.1 8080; echo $?   # 0: free; 1: held, and why
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys

from serve.exits import Refused


def free_ports(count: int) -> list[int]:
    """`count` different ports nothing listens on now on 127.0.0.1 (the kernel's choice):
    held together while chosen, since one closed before the next is chosen may come back."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port() -> int:
    """A port nothing listens on now on 127.0.0.1."""
    return free_ports(1)[0]


def bind_error(host: str, port: int) -> OSError | None:
    """Why nothing could listen on host:port now (None: it could). Binding, not connecting,
    shows a port held on any address, which a connection to one address does not."""
    family, kind, _, _, address = socket.getaddrinfo(
        "0.0.0.0" if host == "*" else host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error
    return None


def listen_problem(host: str, port: int, variable: str) -> Refused | None:
    """up.sh's one line when a server could not listen on `port` (its setting `variable`)."""
    error = bind_error(host, port)
    if error is None:
        return None
    if error.errno == errno.EADDRINUSE:
        return Refused(f"port {port} ({variable}) is already in use on {host}")
    return Refused(f"cannot listen on {host} port {port} ({variable}): {error.strerror}")


def main(argv: list[str]) -> int:
    host, port = argv
    error = bind_error(host, int(port))
    if error:
        print(f"port {port} on {host}: {error.strerror}", file=sys.stderr)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
