"""Hostile clients on loopback: connections that hold a server without finishing a request.

    with Hostile(port, idle=300, slow=5) as hostile:
        ...                        # the connections are open (or opening) here
        hostile.wait_closed(8)     # True once the server has closed every one

Idle connections send nothing. Slow ones send a request line, then one header
line every `every_s`, and never the blank line that ends the headers. With
`reopen`, a connection the server closes is opened again at once, as a hostile
client would. tests/ use it to check that the servers close such connections;
benchmarks/connections.py keeps thousands open while it measures latency.
"""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time
from dataclasses import dataclass


def raise_open_files(needed: int) -> int:
    """Raise this process's soft limit of open files towards `needed`; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


@dataclass
class _Connection:
    slow: bool
    sent_request_line: bool = False


class Hostile:
    """`idle` silent and `slow` slow-header connections to 127.0.0.1:port, held by a thread."""

    def __init__(
        self, port: int, idle: int, slow: int = 0, every_s: float = 0.5, reopen: bool = False
    ):
        self.port, self.idle, self.slow, self.every_s, self.reopen = (
            port,
            idle,
            slow,
            every_s,
            reopen,
        )
        self.closed = 0  # connections the server closed (or reset)
        self.refused = 0  # connections the server refused
        self._selector = selectors.DefaultSelector()  # epoll: no 1,024-descriptor limit
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Hostile:
        self._thread.start()
        self._opened.wait()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()

    @property
    def open(self) -> int:
        """Connections open now, as the client sees them."""
        with self._lock:
            return len(self._selector.get_map())

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait until the server has closed every connection; False if some are still open."""
        deadline = time.monotonic() + timeout_s
        while self.open and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open == 0

    def _connect(self, slow: bool) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))  # in progress; the selector sees the outcome
        self._selector.register(sock, selectors.EVENT_READ, _Connection(slow))

    def _run(self) -> None:
        with self._lock:
            for slow in [False] * self.idle + [True] * self.slow:
                self._connect(slow)
        self._opened.set()
        next_send = time.monotonic()
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                self._read(key)
            if self.slow and time.monotonic() >= next_send:
                next_send += self.every_s
                self._send_a_header_line()

    def _read(self, key: selectors.SelectorKey) -> None:
        try:
            if key.fileobj.recv(65536):
                return  # an answer (Unit's 408); the close follows
            self.closed += 1
        except ConnectionRefusedError:
            self.refused += 1
        except OSError:  # reset
            self.closed += 1
        with self._lock:
            self._selector.unregister(key.fileobj)
            key.fileobj.close()
            if self.reopen:
                self._connect(key.data.slow)

    def _send_a_header_line(self) -> None:
        for key in list(self._selector.get_map().values()):
            connection = key.data
            if not connection.slow:
                continue
            line = b"X-Slow: 1\r\n" if connection.sent_request_line else b"GET / HTTP/1.1\r\n"
            try:
                key.fileobj.send(line)
                connection.sent_request_line = True
            except OSError:
                pass  # not connected yet, or closed: the selector will say which
