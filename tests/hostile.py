"""Hostile clients on loopback: connections that hold a server without finishing a request,
requests given up on, and answers read slowly or never.

    with Hostile(port, idle=300, slow=5) as hostile:
        ...                        # the connections are open (or opening) here
        hostile.wait_closed(8)     # True once the server has closed every one
    abandon(port, "/io?ms=2000", 40, after_s=1)    # 40 requests, their clients gone
    take_answer(port, "/stats", "never", hold_s=5)  # b"200": the status it got
    with Watch(urls, workers) as watch: ...         # meanwhile: peak RSS, GET /json

Idle connections send nothing. Slow ones send a request line, then one header
line every `every_s`, and never the blank line that ends the headers. With
`reopen`, a connection the server closes is opened again at once, as a hostile
client would. tests/ use these to check that the servers close such connections
and that no handful of clients holds an app; benchmarks/connections.py,
abandoned_requests.py and stats_cost.py, to measure what they cost.
"""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time
from dataclasses import dataclass

import httpx2
import psutil

WAYS = ("all", "slowly", "never")  # how take_answer takes an answer


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


def abandon(port: int, path: str, count: int, after_s: float) -> None:
    """`count` GET `path` at once, each on its own connection, all closed `after_s` later
    whether answered or not, as clients that give up would."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        clients.append(client)
    time.sleep(after_s)
    for client in clients:
        client.close()


def take_answer(port: int, path: str, way: str, hold_s: float) -> bytes:
    """GET `path` on a new connection, its answer taken `way` (WAYS: all of it; 1 KiB every
    50 ms; never a byte), for at most `hold_s`: the status it got (b"" if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=hold_s + 30) as client:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        client.sendall(request.encode())
        started = time.monotonic()
        if way == "never":
            time.sleep(hold_s)
        size = 1024 if way == "slowly" else 65536
        head = client.recv(size)
        while way != "never" and time.monotonic() - started < hold_s:
            if not client.recv(size):
                break
            if way == "slowly":
                time.sleep(0.05)
    return head[9:12]


class Watch:
    """Meanwhile, every 0.2 s from the start and once at the end: the peak RSS of `workers`
    (MiB, summed), and GET /json to each of `urls` (how many, how many not answered 200
    within 5 s, the slowest)."""

    def __init__(self, urls: dict[str, str], workers: list[psutil.Process]):
        self.urls, self.workers = urls, workers
        self.rss_before_mb = self.rss_peak_mb = self.rss_mb()
        self.probes = {name: [0, 0, 0.0] for name in urls}  # sent, failed, slowest s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def rss_mb(self) -> float:
        return sum(worker.memory_info().rss for worker in self.workers) / 2**20

    def _watch(self) -> None:
        with httpx2.Client(timeout=5) as client:
            while True:
                self.probe(client)
                if self._stop.wait(0.2):
                    return

    def probe(self, client: httpx2.Client) -> None:
        self.rss_peak_mb = max(self.rss_peak_mb, self.rss_mb())
        for name, url in self.urls.items():
            start = time.monotonic()
            try:
                ok = client.get(url + "/json").status_code == 200
            except httpx2.HTTPError:
                ok = False
            sent, failed, slowest = self.probes[name]
            took_s = time.monotonic() - start
            self.probes[name] = [sent + 1, failed + (not ok), max(slowest, took_s)]

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        with httpx2.Client(timeout=5) as client:
            self.probe(client)  # and once more after, whatever came before
