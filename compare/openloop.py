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
import os
import random
import sys
from dataclasses import asdict
from urllib.parse import urlsplit

if not __package__:  # run as compare/openloop.py: its parts are imported from the package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from compare.generator import Unreachable, generate, precise_loop
from compare.schedule import ARRIVALS, Schedule, Target

UNREACHABLE = 3
MAX_REQUESTS = 5_000_000  # per run: every latency is kept to the end


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
