"""openloop.py against real HTTP servers on free loopback ports, run as its command line."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from scipy import stats

from compare.openloop_result import percentile
from compare.schedule import due_offsets
from serve.ports import free_port

OPENLOOP = Path(__file__).resolve().parent.parent / "compare" / "openloop.py"


def answer(status: int = 200, body: bytes = b"ok", headers: str = "") -> bytes:
    reason = {200: "OK", 503: "Service Unavailable"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode()
        + body
    )


OK = answer()

# What the server does with its index-th request, received elapsed_s after its first:
# (seconds to wait, bytes to write or None to drop the connection unanswered, close after).
Action = tuple[float, bytes | None, bool]


class LoopbackServer:
    """A raw HTTP/1.1 server on a free 127.0.0.1 port, in a thread of its own.

    `respond(index, elapsed_s)` decides each answer; `done` counts what it did.
    """

    def __init__(
        self, respond: Callable[[int, float], Action], listen_for: int | None = None
    ) -> None:
        self.respond = respond
        self.listen_for = listen_for  # requests after which it stops taking connections
        self.received = 0
        self.arrivals_s: list[float] = []  # when each request came, after the first
        self.first = 0.0
        self.done: Counter[str] = Counter()
        self.ready = threading.Event()
        self.heads: set[bytes] = set()  # every distinct request head received
        self.thread = threading.Thread(target=lambda: asyncio.run(self.serve()), daemon=True)

    async def serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopped = self.loop.create_future()
        server = await self.loop.create_server(lambda: Connection(self), "127.0.0.1", 0)
        self.listener = server
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        async with server:
            await self.stopped

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        assert self.ready.wait(5), "the loopback server did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set_result, None)
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/path?q=1"


class Connection(asyncio.Protocol):
    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            server = self.server
            server.heads.add(head)
            now = time.monotonic()
            if server.received == 0:
                server.first = now
            server.arrivals_s.append(now - server.first)
            delay_s, data_out, close = server.respond(server.received, now - server.first)
            server.received += 1
            if server.received == server.listen_for:
                server.listener.close()
            server.loop.call_later(delay_s, self.send, data_out, close)

    def send(self, data: bytes | None, close: bool) -> None:
        if self.transport.is_closing():
            return
        if data is None:
            self.server.done["dropped"] += 1
            self.transport.close()
            return
        self.server.done["answered"] += 1
        self.server.done[data[9:12].decode()] += 1  # the status
        self.transport.write(data)
        if close:
            self.transport.close()


def openloop(*argv: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(OPENLOOP), *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def load(url: str, rate: float, duration_s: float, *flags: str) -> dict:
    """One run's JSON, after checking it exited 0 and accounted for every request."""
    done = openloop(url, f"--rate={rate}", f"--duration={duration_s}", *flags)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["requests"] + result["errors"] == result["scheduled"]
    assert result["errors"] == sum(result["errors_by_kind"].values())
    return result


def assert_every_delay_is_accounted_for(result: dict, duration_s: float) -> None:
    """The run lasted its schedule and at most its slowest answer more, and its rates are
    its counts over that: a generator or server that fell behind shows it in the latency
    and the send lag (both timed from each request's due time), never as a shortfall of
    the rate that nothing explains. How fast it can go is for benchmarks/, not tests."""
    assert duration_s <= result["duration_s"]
    assert result["duration_s"] <= duration_s + result["latency_max_ms"] / 1000 + 0.001
    assert result["rate_achieved"] == pytest.approx(
        result["requests"] / result["duration_s"], rel=1e-3
    )
    sent_within_s = duration_s + result["send_lag_max_ms"] / 1000
    assert result["sent"] / sent_within_s * (1 - 1e-3) <= result["rate_sent"]
    assert result["rate_sent"] <= result["sent"] / duration_s


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert [percentile(values, p) for p in (0, 1, 50, 90, 99, 100)] == [1, 1, 50, 90, 99, 100]
    assert [percentile([7.0, 9.0], p) for p in (0, 50, 51, 100)] == [7, 7, 9, 9]
    # p99.9 of 1,000 values is the 999th, not the largest (99.9 / 100 x 1000 > 999 in floats).
    thousand = [float(v) for v in range(1, 1001)]
    assert [percentile(thousand, p) for p in (99.9, 99.99, 100)] == [999, 1000, 1000]
    assert percentile([float(v) for v in range(1, 3001)], 99.9) == 2997


@pytest.mark.parametrize("seed", [1, 2024, 2**63 + 5])
def test_poisson_arrivals_have_exponential_gaps_of_mean_one_over_the_rate(seed):
    rate, duration_s = 1000.0, 30.0
    offsets = list(due_offsets(rate, duration_s, "poisson", seed))
    assert offsets == sorted(offsets)
    assert offsets[0] > 0 and offsets[-1] < duration_s
    # Their count is Poisson of mean rate x duration: 30,000 +- 4 standard deviations.
    assert abs(len(offsets) - rate * duration_s) < 4 * (rate * duration_s) ** 0.5
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    # The mean gap is 1/rate within 4 standard errors (the exponential's sd is its mean).
    assert abs(statistics.fmean(gaps) * rate - 1) < 4 / len(gaps) ** 0.5
    # The whole distribution, not just its mean: Kolmogorov-Smirnov against the exponential.
    assert stats.kstest(gaps, stats.expon(scale=1 / rate).cdf).pvalue > 0.001
    # Even spacing would be refused at once: all its gaps are the mean.
    even = list(due_offsets(rate, 1, "uniform", None))
    even_gaps = [b - a for a, b in itertools.pairwise(even)]
    assert stats.kstest(even_gaps, stats.expon(scale=1 / rate).cdf).pvalue < 1e-6


def test_the_seed_repeats_the_schedule_and_another_seed_changes_it():
    first = due_offsets(500, 2, "poisson", 7)
    assert first == due_offsets(500, 2, "poisson", 7)
    assert first != due_offsets(500, 2, "poisson", 8)


def test_uniform_arrivals_are_evenly_spaced_from_zero():
    assert list(due_offsets(4, 1.1, "uniform", None)) == [0, 0.25, 0.5, 0.75, 1.0]
    assert len(due_offsets(1000, 3, "uniform", None)) == 3000


def test_a_run_prints_its_seed_and_the_same_seed_sends_the_same_schedule():
    with LoopbackServer(lambda i, t: (0, OK, False)) as server:
        first = load(server.url, 200, 1, "--seed=99")
        again = load(server.url, 200, 1, "--seed=99")
        drawn = [load(server.url, 200, 1) for _ in range(2)]
    assert (first["arrivals"], first["seed"], again["seed"]) == ("poisson", 99, 99)
    assert first["scheduled"] == again["scheduled"]
    assert first["scheduled"] == len(due_offsets(200, 1, "poisson", 99))
    assert first["rate_scheduled"] == pytest.approx(first["scheduled"] / 1, abs=0.01)
    # Without --seed one is drawn at random, and printed so the run can be repeated.
    assert all(isinstance(run["seed"], int) for run in drawn)
    assert drawn[0]["seed"] != drawn[1]["seed"]


def test_reaches_the_asked_rate_against_a_fast_server():
    with LoopbackServer(lambda i, t: (0, OK, False)) as server:
        result = load(server.url, 1000, 3, "--arrivals=uniform")
    assert result["scheduled"] == result["sent"] == result["requests"] == 3000
    assert (result["errors"], result["non_2xx"]) == (0, 0)
    assert server.done["answered"] == 3000
    assert server.heads == {f"GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}".encode()}
    assert_every_delay_is_accounted_for(result, 3)
    # The server saw them come spread over the 3 s, not in bursts. A late wake-up of either
    # process on a busy machine moves some into another tenth of a second, so the bounds
    # leave room: most tenths near the rate, none with a burst of several tenths' worth.
    per_tenth = Counter(int(arrival_s * 10) for arrival_s in server.arrivals_s)
    counts = [per_tenth[tenth] for tenth in range(30)]
    assert 60 <= statistics.median(counts) <= 140
    assert sum(count > 0 for count in counts) >= 24 and max(counts) <= 400
    assert result["rate_asked"] == result["rate_scheduled"] == 1000
    assert (result["arrivals"], result["seed"]) == ("uniform", None)
    assert result["connections_opened"] <= result["connections"] == 64
    for name in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "send_lag_p99_ms"):
        assert result[name] > 0
    latencies = [result[f"latency_{p}_ms"] for p in ("min", "p50", "p90", "p99", "p999", "max")]
    assert latencies == sorted(latencies)
    assert result["generator_cpu_s"] > 0
    assert result["generator_missed"] is (result["rate_sent"] < 0.98 * result["rate_scheduled"])


def test_latency_includes_the_servers_delay_and_the_last_answers_count():
    with LoopbackServer(lambda i, t: (0.2, OK, False)) as server:
        result = load(server.url, 100, 1, "--arrivals=uniform")
    assert result["latency_min_ms"] >= 200
    # The requests sent in the last 0.2 s were answered after the schedule ended.
    assert result["requests"] == server.done["answered"] == 100
    assert result["duration_s"] >= 1.19


def test_a_stall_shows_in_the_p99_as_open_loop():
    """Every answer due in a 300 ms window waits for its end. With 4 connections, a
    closed loop would time only the 4 requests held (0.5% of 800) and its p99 would
    miss the stall; timed from their due time, the 120 requests scheduled in the
    window all show it."""

    def stall(i: int, elapsed_s: float) -> Action:
        return (1.1 - elapsed_s if 0.8 <= elapsed_s < 1.1 else 0, OK, False)

    with LoopbackServer(stall) as server:
        result = load(server.url, 400, 2, "--connections=4", "--arrivals=uniform")
    assert result["requests"] == server.done["answered"] == 800
    # 120 requests fall in the window, 15% of the run: the 8 of the top 1% came
    # first in it and waited most of the 300 ms.
    assert result["latency_p99_ms"] >= 200
    assert result["latency_max_ms"] >= 280
    assert result["latency_p50_ms"] < 100
    # 4 connections held: the rest of the window's requests waited for one.
    assert result["waited_for_connection"] > 0
    assert result["send_lag_max_ms"] >= 200
    assert_every_delay_is_accounted_for(result, 2)


def test_non_2xx_answers_and_dropped_requests_are_counted():
    unavailable = answer(503, b"busy")

    def mixed(i: int, elapsed_s: float) -> Action:
        if i % 5 == 2:
            return (0, None, False)  # close the connection unanswered
        return (0, unavailable if i % 3 == 1 else OK, False)

    with LoopbackServer(mixed) as server:
        result = load(server.url, 200, 1, "--arrivals=uniform")
    assert result["requests"] == server.done["answered"]
    assert result["non_2xx"] == server.done["503"] > 0
    assert result["errors"] == server.done["dropped"] == 40
    assert result["errors_by_kind"] == {"closed before a whole response": 40}


def test_refused_connections_are_errors():
    closing = answer(headers="Connection: close\r\n")

    def ten_answers(i: int, elapsed_s: float) -> Action:
        # A connection the server took while it read the tenth request (a late
        # generator opens two at once) gets no answer: the count stays ten.
        return (0, closing if i < 10 else None, True)

    with LoopbackServer(ten_answers, listen_for=10) as server:
        result = load(server.url, 50, 1, "--arrivals=uniform")
    assert result["requests"] == server.done["answered"] == 10
    assert result["errors"] == 40
    assert "connect: ConnectionRefusedError" in result["errors_by_kind"]


@pytest.mark.parametrize(
    ("response", "close", "keeps_connections"),
    [
        (answer(headers="Connection: close\r\n"), True, False),
        (b"HTTP/1.0 200 OK\r\n\r\nbody until the connection closes", True, False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: x\r\n\r\n",
            False,
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False, True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", False, True),
    ],
    ids=["connection-close", "body-to-eof", "chunked", "no-content", "http/1.0-keep-alive"],
)
def test_every_framing_of_an_answer_is_read_whole(response, close, keeps_connections):
    with LoopbackServer(lambda i, t: (0, response, close)) as server:
        result = load(server.url, 100, 1, "--arrivals=uniform")
    assert (result["requests"], result["errors"]) == (100, 0)
    if keeps_connections:  # the next answer on a connection parsed too: one carried two
        assert result["connections_opened"] < 100
    else:
        assert result["connections_opened"] >= 100


def test_an_answer_that_is_not_http_is_an_error():
    with LoopbackServer(lambda i, t: (0, b"SSH-2.0-x\r\n\r\n", False)) as server:
        result = load(server.url, 20, 1, "--arrivals=uniform")
    assert (result["requests"], result["errors"]) == (0, 20)
    assert list(result["errors_by_kind"]) == ["bad HTTP: not an HTTP/1.x status line: b'SSH-2.0-x'"]
    # No answer at all: every request counts as its timeout.
    assert result["latency_min_ms"] == result["latency_max_ms"] == 10_000


def test_requests_without_an_answer_count_as_their_timeout_in_the_percentiles():
    """One connection and a server that never answers: the first requests time out,
    the rest wait for the connection until the run ends. None is left out: every one
    counts at its timeout or more, and the counts say which is which."""
    with LoopbackServer(lambda i, t: (3600, OK, False)) as server:
        result = load(server.url, 20, 1, "--timeout=0.4", "--connections=1", "--arrivals=uniform")
    assert (result["requests"], result["errors"], result["scheduled"]) == (0, 20, 20)
    assert set(result["errors_by_kind"]) == {"timeout", "unfinished at the end"}
    assert result["errors_by_kind"]["timeout"] >= 1
    assert result["latency_min_ms"] >= 400
    assert result["latency_p50_ms"] >= 400
    # The last of them were due near the end of the 1 s schedule and waited to its end.
    assert result["latency_max_ms"] >= 400
    # Its requests went out one per timeout, not at 20 a second: the rate was not sent.
    assert result["generator_missed"] is True
    assert result["rate_sent"] < 0.98 * result["rate_scheduled"]


def test_answered_and_failed_requests_share_the_percentiles():
    def every_fourth_dropped(i: int, elapsed_s: float) -> Action:
        return (0, None if i % 4 == 3 else OK, False)

    with LoopbackServer(every_fourth_dropped) as server:
        result = load(server.url, 100, 1, "--arrivals=uniform", "--timeout=2")
    assert (result["requests"], result["errors"]) == (75, 25)
    # A quarter failed: p50 is an answer, p90 a failure counted as its 2 s timeout.
    assert result["latency_p50_ms"] < 2000
    assert result["latency_p90_ms"] == result["latency_max_ms"] == 2000


def test_unanswered_requests_time_out_and_the_run_still_ends():
    def silent_after_five(i: int, elapsed_s: float) -> Action:
        return (0 if i < 5 else 3600, OK, False)

    started = time.monotonic()
    with LoopbackServer(silent_after_five) as server:
        result = load(server.url, 20, 1, "--timeout=0.5", "--arrivals=uniform")
    assert time.monotonic() - started < 1 + 0.5 + 5
    assert (result["requests"], result["errors"]) == (5, 15)
    assert server.done["answered"] == 5
    assert set(result["errors_by_kind"]) <= {"timeout", "unfinished at the end"}
    assert result["errors_by_kind"]["timeout"] >= 1


def test_an_unreachable_target_exits_3_saying_so():
    url = f"http://127.0.0.1:{free_port()}/"
    done = openloop(url, "--rate=10", "--duration=1")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith(f"openloop.py: cannot connect to {url}: ConnectionRefusedError")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rate=0", "--duration=1"], "argument --rate: must be more than 0"),
        (["--rate=fast", "--duration=1"], "argument --rate: not a number"),
        (["--rate=10", "--duration=-1"], "argument --duration: must be more than 0"),
        (["--rate=10", "--duration=nan"], "argument --duration: must be more than 0"),
        (["--duration=1"], "the following arguments are required: --rate"),
        (["--rate=10", "--duration=1", "--connections=0"], "argument --connections: must be"),
        (["--rate=10", "--duration=1", "--timeout=0"], "argument --timeout: must be more"),
        (["--rate=0.5", "--duration=1"], "argument --rate: --rate x --duration must give 1 to"),
        (["--rate=100000", "--duration=51"], "argument --rate: --rate x --duration must give"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, says):
    done = openloop("http://127.0.0.1:9/", *argv)
    assert done.returncode == 2
    assert says in done.stderr.splitlines()[-1]


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "127.0.0.1:8080", "http://:80/"])
def test_a_url_it_cannot_load_exits_2(url):
    done = openloop(url, "--rate=10", "--duration=1")
    assert done.returncode == 2
    assert "argument url:" in done.stderr.splitlines()[-1]


def test_both_apps_under_granian_hold_the_rate(served_factory):
    served = served_factory()
    for app, url in served.urls.items():
        result = load(f"{url}/json", 200, 2)
        assert (result["errors"], result["non_2xx"]) == (0, 0), app
        assert result["requests"] == result["scheduled"] > 0, app
        assert_every_delay_is_accounted_for(result, 2)
