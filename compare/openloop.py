"""An open-loop HTTP load generator: GET requests at a fixed rate, whatever the answers.

    python compare/openloop.py URL --rate R --duration S [--connections C] [--timeout T]

Why it exists: to compare two apps at the same request rate, the load must
arrive at that rate however each app answers. Closed-loop tools (wrk, ab,
hey -q, bombardier --rate) send a connection's next request only after its
answer, so a server that stalls also stalls its load, and the requests that
should have been sent meanwhile are never timed: latency is understated
(coordinated omission). The open-loop tools that correct this (wrk2, vegeta,
oha, k6) are in no registry this project reaches (PyPI, Debian, npm), and
Debian's httperf busy-spins a whole core and prints no percentiles. So this
one is ours, used only for fixed-rate runs; saturation runs keep wrk, ab, hey.

How it works: request i is due at start + i/R, whatever happened to earlier
ones. A due request takes an idle keep-alive HTTP/1.1 connection, or opens a
new one while fewer than C are open, or else waits for one to free up.
Latency runs from the request's due time, not from when it was sent, to the
end of its response (as wrk2 measures), so a stalled server, a full pool or a
late generator all show in it. Requests still unanswered when the schedule
ends get up to --timeout more to finish; the rest count as errors, so a slow
server cannot hide its queue. A request unanswered --timeout after it was
sent also counts as an error (its connection is dropped). The event loop
waits to the microsecond (epoll alone rounds up to the millisecond, which
would add up to 1 ms to every latency). Linux only, as the project is.

Output, one JSON object on stdout. FastAPI's /json under granian (./up.sh),
on this project's busy, shared 2-core machine:

    $ python3 compare/openloop.py http://127.0.0.1:35755/json --rate 1000 --duration 5 \
        | python3 -m json.tool
    {
        "url": "http://127.0.0.1:35755/json",
        "rate_asked": 1000.0,
        "rate_sent": 1000.0,
        "rate_achieved": 999.85,
        "duration_s": 5.001,
        "scheduled": 5000,
        "sent": 5000,
        "requests": 5000,
        "errors": 0,
        "non_2xx": 0,
        "latency_min_ms": 0.325,
        "latency_p50_ms": 0.619,
        "latency_p90_ms": 1.329,
        "latency_p99_ms": 14.83,
        "latency_max_ms": 62.377,
        "send_lag_p50_ms": 0.12,
        "send_lag_p99_ms": 1.624,
        "send_lag_max_ms": 8.92,
        "waited_for_connection": 0,
        "connections": 64,
        "connections_opened": 61,
        "timeout_s": 10.0,
        "generator_cpu_s": 0.904,
        "errors_by_kind": {}
    }

- requests: responses received, any status; errors: requests without one
  (connect or read error, closed connection, bad HTTP, timeout, unfinished),
  by kind in errors_by_kind; non_2xx: responses outside 2xx.
  requests + errors = scheduled (= ceil(R x S)); sent counts requests written.
- duration_s: from the first due time to the last response, at least S;
  rate_achieved = requests / duration_s, so a server that falls behind and
  answers its queue late gets its real rate. rate_sent: requests written per
  second of the sending window (S, or up to the last write where that is later).
- latency_*_ms: exact nearest-rank percentiles of every response's latency
  (the smallest recorded value with at least p% of all at or below it), the
  same for min (p0) to max (p100); null without responses.
- send_lag_*_ms (same percentiles): how late requests were written against
  their due time, on this process's monotonic clock. It holds the generator's
  own lateness (timer wake-up, a busy event loop: the figure to watch for
  whether it kept up) and waits for a free connection when all C were busy
  (waited_for_connection counts those requests, so a lag with none is ours).
- generator_cpu_s: this process's CPU time during the run, its cost
  (benchmarks/openloop_capacity.py measures what rate one core can hold).

Exit codes: 0 done (errors are reported, not fatal); 2 bad flags; 3 the
target refuses or times out the first connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import select
import selectors
import socket
import sys
import time
from array import array
from collections import Counter, deque
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

UNREACHABLE = 3
MAX_REQUESTS = 5_000_000  # per run: every latency is kept to the end
NO_BODY_STATUSES = (204, 304)


class ProtocolError(Exception):
    """The answer is not an HTTP/1.x response this reader understands."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    request: bytes  # the GET, prepared once and written as is for every request


@dataclass(frozen=True)
class Schedule:
    """What one run sends: GETs of `target` at `rate` for `duration_s`, on at most
    `connections`, each given `timeout_s`."""

    target: Target
    rate: float  # requests per second
    duration_s: float
    connections: int
    timeout_s: float


# --- command line --------------------------------------------------------------------


def http_url(text: str) -> Target:
    parts = urlsplit(text)
    try:
        port = parts.port or 80
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r}: need http://host[:port][/path] (no https)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode("ascii")
    return Target(url=text, host=parts.hostname, port=port, request=request)


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def connection_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 1-10000: {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> Schedule:
    parser = argparse.ArgumentParser(
        prog="openloop.py",
        description=__doc__.splitlines()[0],
    )
    add = parser.add_argument
    add("url", type=http_url, help="http://host[:port][/path?query] to GET")
    add("--rate", type=positive_number, required=True, help="requests per second")
    add("--duration", type=positive_number, required=True, help="seconds of sending")
    add(
        "--connections",
        type=connection_count,
        default=64,
        help="most connections open (%(default)s)",
    )
    add(
        "--timeout",
        type=positive_number,
        default=10.0,
        help="seconds a request may take (%(default)s)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.rate * args.duration <= MAX_REQUESTS:
        parser.error(
            f"argument --rate: --rate x --duration must give 1 to {MAX_REQUESTS:,} requests"
        )
    return Schedule(args.url, args.rate, args.duration, args.connections, args.timeout)


# --- HTTP/1.1 responses --------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response: its status, and whether the connection stays open after it."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:40]!r}")
        try:
            status = int(status_line[9:12])
        except ValueError:
            raise ProtocolError(f"bad status line: {status_line[:40]!r}") from None
        if not 100 <= status < 200:
            break  # 1xx answers are interim: the real one follows
    keep_alive = status_line[7:8] == b"1"  # HTTP/1.1 keeps the connection by default, 1.0 not
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length: {value[:40]!r}") from None
        elif name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    if status in NO_BODY_STATUSES:
        pass
    elif chunked:
        await read_chunked(reader)
    elif length is not None:
        if length:
            await reader.readexactly(length)
    else:  # no length given: the body runs to the end of the connection
        await reader.read()
        keep_alive = False
    return status, keep_alive


async def read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_line[:40]!r}") from None
        if size == 0:
            break
        await reader.readexactly(size + 2)
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailer fields, up to the empty line


# --- the run -------------------------------------------------------------------------


class Unreachable(Exception):
    """The target cannot be connected to at all."""


@dataclass
class Result:
    url: str
    rate_asked: float
    rate_sent: float
    rate_achieved: float
    duration_s: float
    scheduled: int
    sent: int
    requests: int
    errors: int
    non_2xx: int
    latency_min_ms: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    send_lag_p50_ms: float | None
    send_lag_p99_ms: float | None
    send_lag_max_ms: float | None
    waited_for_connection: int  # requests that found all --connections busy
    connections: int
    connections_opened: int
    timeout_s: float
    generator_cpu_s: float
    errors_by_kind: dict[str, int]


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least `percent`% of `ordered` at or below it."""
    rank = math.ceil(percent / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def ms(ordered: list[float], percent: float) -> float | None:
    return round(percentile(ordered, percent) * 1000, 3) if ordered else None


class Generator:
    """One open-loop run of a Schedule: its dispatch, the connection pool and what they
    recorded."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.loop = asyncio.get_running_loop()
        self.clock = self.loop.time
        self.request = schedule.target.request
        self.scheduled = math.ceil(schedule.rate * schedule.duration_s)
        self.address = schedule.target.host
        self.latencies = array("d")  # seconds from due time to the end of the response
        self.send_lags = array("d")  # seconds from due time to the write
        self.errors: Counter[str] = Counter()
        self.non_2xx = 0
        self.sent = 0
        self.outstanding = 0  # dispatched, neither answered nor failed yet
        self.open = 0
        self.opened = 0
        self.waited = 0
        self.idle: list[asyncio.Future[float | None]] = []  # connections waiting for work
        self.waiting: deque[float] = deque()  # due times of requests waiting for a connection
        self.expired: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.start = 0.0
        self.last_send = 0.0
        self.last_response = 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self.schedule.timeout_s):
            streams = await asyncio.open_connection(self.address, self.schedule.target.port)
        self.opened += 1
        return streams

    def expire(self, writer: asyncio.StreamWriter) -> None:
        """A request's --timeout is up: drop its connection, which fails the read."""
        self.expired.add(writer)
        writer.transport.abort()

    def fail(self, kind: str) -> None:
        self.errors[kind] += 1
        self.outstanding -= 1

    async def connection(
        self, due: float | None, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
    ) -> None:
        """One keep-alive connection: serves due requests, one at a time, until the run stops."""
        clock, request, latencies = self.clock, self.request, self.latencies
        reader, writer = streams or (None, None)
        try:
            while True:
                if due is None:
                    if self.waiting:
                        due = self.waiting.popleft()
                    elif self.stopping:
                        return
                    else:
                        idle = self.loop.create_future()
                        self.idle.append(idle)
                        due = await idle
                        if due is None:
                            return
                if writer is None or reader.at_eof():  # never opened, or closed by the server
                    if writer is not None:
                        writer.close()
                    try:
                        reader, writer = await self.connect()
                    except (OSError, TimeoutError) as error:
                        reader = writer = None
                        self.fail(f"connect: {type(error).__name__}")
                        due = None
                        continue
                sent = clock()
                self.send_lags.append(sent - due)
                self.sent += 1
                self.last_send = sent
                writer.write(request)
                timer = self.loop.call_at(sent + self.schedule.timeout_s, self.expire, writer)
                try:
                    status, keep_alive = await read_response(reader)
                except (OSError, EOFError, ProtocolError, asyncio.LimitOverrunError) as error:
                    timer.cancel()
                    writer.close()
                    if writer in self.expired:
                        self.expired.discard(writer)
                        kind = "timeout"
                    elif isinstance(error, asyncio.IncompleteReadError):
                        kind = "closed before a whole response"
                    elif isinstance(error, ProtocolError):
                        kind = f"bad HTTP: {error}"
                    else:
                        kind = f"read: {type(error).__name__}"
                    reader = writer = None
                    self.fail(kind)
                    due = None
                    continue
                timer.cancel()
                end = clock()
                latencies.append(end - due)
                self.last_response = end
                self.outstanding -= 1
                if not 200 <= status < 300:
                    self.non_2xx += 1
                if not keep_alive or writer in self.expired:
                    self.expired.discard(writer)
                    writer.close()
                    reader = writer = None
                due = None
        finally:
            self.open -= 1
            if writer is not None:
                writer.close()

    def add_connection(
        self,
        due: float | None,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    ) -> None:
        self.open += 1
        task = self.loop.create_task(self.connection(due, streams))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def dispatch(self, due: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.pop().set_result(due)
        elif self.open < self.schedule.connections:
            self.add_connection(due)
        else:
            self.waiting.append(due)
            self.waited += 1

    async def dispatch_on_schedule(self) -> None:
        """Dispatch request i at start + i/rate, all that are due at each wake-up."""
        clock, rate, scheduled = self.clock, self.schedule.rate, self.scheduled
        dispatched = 0
        while dispatched < scheduled:
            due_now = min(scheduled, int((clock() - self.start) * rate) + 1)
            while dispatched < due_now:
                self.dispatch(self.start + dispatched / rate)
                dispatched += 1
            if dispatched < scheduled:
                await asyncio.sleep(self.start + dispatched / rate - clock())

    async def run(self) -> Result:
        schedule = self.schedule
        # Resolve the name once, so no connection waits for a lookup; and check that the
        # target answers a connection at all. That connection becomes the pool's first.
        try:
            infos = await self.loop.getaddrinfo(
                schedule.target.host, schedule.target.port, type=socket.SOCK_STREAM
            )
            self.address = infos[0][4][0]
            streams = await self.connect()
        except (OSError, TimeoutError) as error:
            raise Unreachable(f"cannot connect to {schedule.target.url}: {error!r}") from None
        self.add_connection(None, streams)
        await asyncio.sleep(0)  # let it go idle
        cpu_start = time.process_time()
        self.start = self.clock()
        await self.dispatch_on_schedule()
        self.stopping = True
        for idle in self.idle:
            idle.set_result(None)
        self.idle.clear()
        deadline = self.start + schedule.duration_s + schedule.timeout_s
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=max(0, deadline - self.clock()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.outstanding:
            self.errors["unfinished at the end"] += self.outstanding
        cpu_s = time.process_time() - cpu_start
        return self.result(cpu_s)

    def result(self, cpu_s: float) -> Result:
        schedule = self.schedule
        latencies = sorted(self.latencies)
        lags = sorted(self.send_lags)
        duration_s = max(schedule.duration_s, self.last_response - self.start)
        send_window_s = max(schedule.duration_s, self.last_send - self.start)
        return Result(
            url=schedule.target.url,
            rate_asked=schedule.rate,
            rate_sent=round(self.sent / send_window_s, 2),
            rate_achieved=round(len(latencies) / duration_s, 2),
            duration_s=round(duration_s, 3),
            scheduled=self.scheduled,
            sent=self.sent,
            requests=len(latencies),
            errors=sum(self.errors.values()),
            non_2xx=self.non_2xx,
            latency_min_ms=ms(latencies, 0),
            latency_p50_ms=ms(latencies, 50),
            latency_p90_ms=ms(latencies, 90),
            latency_p99_ms=ms(latencies, 99),
            latency_max_ms=ms(latencies, 100),
            send_lag_p50_ms=ms(lags, 50),
            send_lag_p99_ms=ms(lags, 99),
            send_lag_max_ms=ms(lags, 100),
            waited_for_connection=self.waited,
            connections=schedule.connections,
            connections_opened=self.opened,
            timeout_s=schedule.timeout_s,
            generator_cpu_s=round(cpu_s, 3),
            errors_by_kind=dict(self.errors),
        )


async def generate(schedule: Schedule) -> Result:
    return await Generator(schedule).run()


class PreciseEpollSelector(selectors.EpollSelector):
    """epoll whose waits end on time to the microsecond, not rounded up to the millisecond.

    epoll takes its timeout in whole milliseconds, so a send due in 0.3 ms would
    leave 1 ms late. select() takes microseconds, and the epoll descriptor
    becomes readable as soon as any registered socket is ready: wait in select()
    on that one descriptor, then collect the events without waiting.
    """

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout > 0:
            select.select([self.fileno()], [], [], timeout)
            timeout = 0
        return super().select(timeout)


def precise_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(PreciseEpollSelector())


def main(argv: list[str] | None = None) -> int:
    schedule = parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=precise_loop) as runner:
            result = runner.run(generate(schedule))
    except Unreachable as error:
        print(f"openloop.py: {error}", file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        print("openloop.py: interrupted, no result", file=sys.stderr)
        return 130
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
