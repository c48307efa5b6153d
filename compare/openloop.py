"""An open-loop HTTP load generator: GET requests at a fixed rate, whatever the answers.

    python compare/openloop.py URL --rate R --duration S [--connections C] [--timeout T]
        [--arrivals poisson|uniform] [--seed N]

Why it exists: to compare two apps at the same request rate, the load must
arrive at that rate however each app answers. Closed-loop tools (wrk, ab,
hey -q, bombardier --rate) send a connection's next request only after its
answer, so a server that stalls also stalls its load, and the requests that
should have been sent meanwhile are never timed: latency is understated
(coordinated omission). The open-loop tools that correct this (wrk2, vegeta,
oha, k6) are in no registry this project reaches (PyPI, Debian, npm), and
Debian's httperf busy-spins a whole core and prints no percentiles. So this
one is ours, used only for fixed-rate runs; saturation runs keep wrk, ab, hey.

How it works: each request has a due time, whatever happened to earlier ones.
By default the due times are random, as real arrivals are: a Poisson process
of rate R over the S seconds (exponential gaps of mean 1/R, drawn by a
generator seeded with --seed; the seed is printed, and the same seed sends the
same schedule again). --arrivals=uniform spaces them evenly instead, request i
at i/R, which hides the queueing that bursts cause. A due request takes an
idle keep-alive HTTP/1.1 connection, or opens a new one while fewer than C are
open, or else waits for one to free up. Latency runs from the request's due
time, not from when it was sent, to the end of its response (as wrk2
measures), so a stalled server, a full pool or a late generator all show in
it. Requests still unanswered when the schedule ends get up to --timeout more
to finish; the rest count as errors, so a slow server cannot hide its queue. A
request unanswered --timeout after it was sent also counts as an error (its
connection is dropped). The event loop waits to the microsecond (epoll alone
rounds up to the millisecond, which would add up to 1 ms to every latency).
Linux only, as the project is. Its own floor, its latency against a server
that does nothing, is measured by compare/floor.py.

Output, one JSON object on stdout. FastAPI's /json under granian (./up.sh),
on this project's busy, shared 2-core machine:

    $ python3 compare/openloop.py http://127.0.0.1:38029/json --rate 1000 --duration 5 \
        | python3 -m json.tool
    {
        "url": "http://127.0.0.1:38029/json",
        "arrivals": "poisson",
        "seed": 762077580,
        "rate_asked": 1000.0,
        "rate_scheduled": 1013.0,
        "rate_sent": 1013.0,
        "rate_achieved": 1012.78,
        "generator_missed": false,
        "duration_s": 5.001,
        "scheduled": 5065,
        "sent": 5065,
        "requests": 5065,
        "errors": 0,
        "non_2xx": 0,
        "latency_min_ms": 0.276,
        "latency_p50_ms": 0.71,
        "latency_p90_ms": 2.942,
        "latency_p99_ms": 7.079,
        "latency_p999_ms": 9.902,
        "latency_max_ms": 11.429,
        "send_lag_p50_ms": 0.119,
        "send_lag_p99_ms": 2.973,
        "send_lag_max_ms": 4.991,
        "waited_for_connection": 0,
        "connections": 64,
        "connections_opened": 14,
        "timeout_s": 10.0,
        "generator_cpu_s": 0.838,
        "errors_by_kind": {}
    }

- arrivals, seed: how the due times were drawn (seed null for uniform ones).
- requests: responses received, any status; errors: requests without one
  (connect or read error, closed connection, bad HTTP, timeout, unfinished),
  by kind in errors_by_kind; non_2xx: responses outside 2xx.
  requests + errors = scheduled (Poisson: random, about R x S; uniform:
  ceil(R x S)); sent counts requests written.
- duration_s: from the first due time to the last response, at least S;
  rate_achieved = requests / duration_s, so a server that falls behind and
  answers its queue late gets its real rate. rate_scheduled = scheduled / S.
  rate_sent: requests written per second of the sending window (S, or up to
  the last write where that is later). generator_missed: rate_sent fell under
  98% of rate_scheduled, so the asked rate was not sent (this process short of
  CPU, or all C connections held by a slow server: waited_for_connection); the
  figures stand for what was sent.
- latency_*_ms: exact nearest-rank percentiles (the smallest value with at
  least p% of all at or below it), min (p0), p50, p90, p99, p99.9 and max
  (p100), of every scheduled request's latency. None is left out: a request
  without an answer (errors) counts as its timeout, or as long as it had
  waited since its due time where that is longer; null when nothing was due.
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
import random
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
ARRIVALS = ("poisson", "uniform")
# A run that wrote its requests at less than this share of its schedule's rate missed it.
SENT_SHARE = 0.98


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
    `connections`, each given `timeout_s`; their due times drawn by `arrivals` from `seed`."""

    target: Target
    rate: float  # requests per second
    duration_s: float
    connections: int
    timeout_s: float
    arrivals: str = "poisson"  # one of ARRIVALS
    seed: int | None = None  # of the Poisson arrivals; None for uniform ones

    def due_offsets(self) -> array:
        return due_offsets(self.rate, self.duration_s, self.arrivals, self.seed)


def due_offsets(rate: float, duration_s: float, arrivals: str, seed: int | None) -> array:
    """The seconds after the start at which each request is due, in order.

    poisson: a Poisson process of `rate` over [0, duration_s), the gaps drawn from the
    exponential distribution of mean 1/rate by a generator seeded with `seed` (the same
    seed, the same schedule); their count is random, about rate x duration_s.
    uniform: request i at exactly i/rate, ceil(rate x duration_s) of them.
    """
    if arrivals == "uniform":
        return array("d", (i / rate for i in range(math.ceil(rate * duration_s))))
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be one of {ARRIVALS}, not {arrivals!r}")
    gap = random.Random(seed).expovariate
    offsets = array("d")
    due = gap(rate)
    while due < duration_s:
        offsets.append(due)
        due += gap(rate)
    return offsets


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


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be 0 to 2**64-1: {text!r}")
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
    add(
        "--arrivals",
        choices=ARRIVALS,
        default="poisson",
        help="random (Poisson) arrivals at the rate, or evenly spaced (%(default)s)",
    )
    add(
        "--seed",
        type=seed_number,
        help="seed of the Poisson arrivals, to repeat a run's schedule (default: a random one,"
        " printed in the output)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.rate * args.duration <= MAX_REQUESTS:
        parser.error(
            f"argument --rate: --rate x --duration must give 1 to {MAX_REQUESTS:,} requests"
        )
    if args.arrivals == "uniform":
        if args.seed is not None:
            parser.error("argument --seed: only --arrivals=poisson draws its arrivals")
        seed = None
    else:
        seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    return Schedule(
        args.url, args.rate, args.duration, args.connections, args.timeout, args.arrivals, seed
    )


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
    arrivals: str
    seed: int | None
    rate_asked: float
    rate_scheduled: float
    rate_sent: float
    rate_achieved: float
    generator_missed: bool
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
    latency_p999_ms: float | None
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
    """Nearest rank: the smallest value with at least `percent`% of `ordered` at or below it.

    The rank is counted in whole thousandths of a percent: in floating point 99.9% of
    1,000 is 999.0000000000001, whose ceiling would be the maximum.
    """
    rank = -(-round(percent * 1000) * len(ordered) // 100_000)
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
        self.offsets = schedule.due_offsets()
        self.address = schedule.target.host
        self.latencies = array("d")  # seconds from due time to the end of the response
        self.failed = array("d")  # likewise for requests without one: at least timeout_s
        self.send_lags = array("d")  # seconds from due time to the write
        self.errors: Counter[str] = Counter()
        self.non_2xx = 0
        self.sent = 0
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

    def fail(self, kind: str, due: float) -> None:
        """A request ends without an answer: it counts as its timeout, or as long as it
        has waited since its due time where that is longer."""
        self.errors[kind] += 1
        self.failed.append(max(self.schedule.timeout_s, self.clock() - due))

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
                        self.fail(f"connect: {type(error).__name__}", due)
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
                    self.fail(kind, due)
                    due = None
                    continue
                timer.cancel()
                end = clock()
                latencies.append(end - due)
                self.last_response = end
                if not 200 <= status < 300:
                    self.non_2xx += 1
                if not keep_alive or writer in self.expired:
                    self.expired.discard(writer)
                    writer.close()
                    reader = writer = None
                due = None
        except asyncio.CancelledError:  # the run is over: a request still in hand failed
            if due is not None:
                self.fail("unfinished at the end", due)
            raise
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
        if self.idle:
            self.idle.pop().set_result(due)
        elif self.open < self.schedule.connections:
            self.add_connection(due)
        else:
            self.waiting.append(due)
            self.waited += 1

    async def dispatch_on_schedule(self) -> None:
        """Dispatch each request at start + its offset, all that are due at each wake-up."""
        clock, start, offsets = self.clock, self.start, self.offsets
        scheduled, dispatched = len(offsets), 0
        while dispatched < scheduled:
            now = clock() - start
            while dispatched < scheduled and offsets[dispatched] <= now:
                self.dispatch(start + offsets[dispatched])
                dispatched += 1
            if dispatched < scheduled:
                await asyncio.sleep(start + offsets[dispatched] - clock())

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
        while self.waiting:  # due, but no connection came free for them in time
            self.fail("unfinished at the end", self.waiting.popleft())
        cpu_s = time.process_time() - cpu_start
        return self.result(cpu_s)

    def result(self, cpu_s: float) -> Result:
        schedule = self.schedule
        # Every request counts in the percentiles: those without an answer at their timeout.
        latencies = sorted(self.latencies + self.failed)
        lags = sorted(self.send_lags)
        scheduled = len(self.offsets)
        duration_s = max(schedule.duration_s, self.last_response - self.start)
        send_window_s = max(schedule.duration_s, self.last_send - self.start)
        rate_scheduled = scheduled / schedule.duration_s
        rate_sent = self.sent / send_window_s
        return Result(
            url=schedule.target.url,
            arrivals=schedule.arrivals,
            seed=schedule.seed,
            rate_asked=schedule.rate,
            rate_scheduled=round(rate_scheduled, 2),
            rate_sent=round(rate_sent, 2),
            rate_achieved=round(len(self.latencies) / duration_s, 2),
            generator_missed=rate_sent < SENT_SHARE * rate_scheduled,
            duration_s=round(duration_s, 3),
            scheduled=scheduled,
            sent=self.sent,
            requests=len(self.latencies),
            errors=sum(self.errors.values()),
            non_2xx=self.non_2xx,
            latency_min_ms=ms(latencies, 0),
            latency_p50_ms=ms(latencies, 50),
            latency_p90_ms=ms(latencies, 90),
            latency_p99_ms=ms(latencies, 99),
            latency_p999_ms=ms(latencies, 99.9),
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
