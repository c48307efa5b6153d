"""The open-loop generator of compare/openloop.py: a Schedule's requests dispatched at
their due times over a pool of keep-alive connections, each timed from its due time, and
the event loop that wakes it on time."""

from __future__ import annotations

import asyncio
import select
import selectors
import socket
import time
from array import array
from collections import Counter, deque

from compare.http_response import ProtocolError, read_response
from compare.openloop_result import Result, ms
from compare.schedule import Schedule

# A run that wrote its requests at less than this share of its schedule's rate missed it.
SENT_SHARE = 0.98


class Unreachable(Exception):
    """The target cannot be connected to at all."""


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
                    status, keep_alive, *_ = await read_response(reader)
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
