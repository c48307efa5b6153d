"""What rate openloop.py holds on one core with Poisson arrivals, and its floor at each rate.

    .venv/bin/python benchmarks/openloop_capacity.py [--rates 1000,2000,4000,6000,8000]
        [--duration 5] [--arrivals poisson]

Runs compare.floor.measure_floor at each rate in turn: the trivial server
(compare/trivial_server.py) on one core, openloop on another where there are two,
and prints per rate: the rate scheduled and sent, the send lag, the latency floor,
and the generator's own CPU (share of one core, microseconds per request). A rate
is held when openloop sent it (not generator_missed), its sends left on time
(p99 lag under loadtools.LATE_SEND_MS) and it kept under 90% of its core busy
(where compare counts a load tool as the bottleneck). loadtools.OPEN_LOOP_MAX_RATE,
which compare enforces on --rate, is to be set below the highest rate held on a
quiet machine. Figures vary by machine and with whatever else runs: compare
within one run.

On the project's 2-core machine, quiet (nothing else running), on 2026-12-02: every
rate up to compare's limit held, so the limit stands.

    $ .venv/bin/python benchmarks/openloop_capacity.py --rates 2000,4000,6000,8000,10000
    trivial server on cores [0], openloop on [1]; poisson arrivals, 5 s per rate
    compare's limit now 10,000 req/s
     asked scheduled sent/s lag p99 waited    p50    p99  p99.9    max cpu % cpu µs held
      2000      2034   2034   0.731      0  0.308  1.831  4.337  5.789    30    148  yes
      4000      4006   4006   0.547      0  0.265  1.409  3.654  5.039    43    107  yes
      6000      5978   5978   0.328      0  0.230  1.032  4.271  6.816    51     85  yes
      8000      7923   7922   0.575      0  0.223  1.693  5.487  9.383    62     78  yes
     10000      9950   9950   0.618     90  0.271  2.152  7.797  9.704    74     75  yes
    highest rate held: 10,000 req/s

On the same machine, busy with other work (load average 10 on
2 cores): openloop got a quarter to a half of its core, so no rate held for long,
and the figure to read is its CPU per request; a quiet machine decides the limit.

    $ .venv/bin/python benchmarks/openloop_capacity.py \\
        --rates 1000,2000,4000,6000,8000,10000,12000
    trivial server on cores [0], openloop on [1]; poisson arrivals, 5 s per rate
    compare's limit now 10,000 req/s
     asked scheduled sent/s lag p99 waited    p50    p99  p99.9    max cpu % cpu µs held
      1000       992    992    80.4    147  0.698  119.6  143.6  145.2    15    151   no
      2000      2040   2040   4.673      0  0.538   13.1   28.5   31.8    26    127  yes
      4000      4031   4031   5.634     53  0.752   12.7   26.6   28.5    39     96   no
      6000      5980   5977    72.7   7877  1.236   83.5   90.1   94.1    41     69   no
      8000      7913   4357   4,140  32116  1,263  4,148  4,156  4,160    24     56   no
     10000     10052   7394   1,765  50191  1,252  1,786  1,803  1,806    33     44   no
     12000     12033   7388   3,784  60102  3,214  3,789  3,798  3,800    29     39   no
    lag and latency in ms; waited: requests that found all 64 connections busy;
    cpu % of one core; cpu µs per request
    highest rate held: 2,000 req/s
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare.failures import run_benchmark
from compare.flag_values import Parser, float_list, positive_float
from compare.floor import measure_floor
from compare.loadtools import LATE_SEND_MS, OPEN_LOOP_MAX_RATE
from compare.openloop import MAX_REQUESTS
from compare.schedule import ARRIVALS

BUSY_SHARE = 0.9  # compare's TOOL_BOUND_SHARE: a tool this busy may be the bottleneck


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--rates",
        type=float_list,
        default="1000,2000,4000,6000,8000",
        help="req/s, ascending (1000,2000,4000,6000,8000)",
    )
    add("--duration", type=positive_float, default=5.0, help="seconds per rate (5)")
    add("--arrivals", choices=ARRIVALS, default="poisson", help="(poisson)")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags()
    args = parser.parse_args(argv)
    if args.rates != sorted(args.rates):  # the highest rate held is the last one held
        parser.error(f"--rates must ascend: {','.join(f'{rate:g}' for rate in args.rates)}")
    if not all(1 <= rate * args.duration <= MAX_REQUESTS for rate in args.rates):
        parser.error(
            f"--rates x --duration must give 1 to {MAX_REQUESTS:,} requests at each rate"
            " (openloop's limits)"
        )
    return args


def main() -> int:
    args = parse()
    cores = sorted(os.sched_getaffinity(0))
    server_cores, tool_cores = ([cores[0]], [cores[-1]]) if len(cores) >= 2 else (None, None)
    print(
        f"trivial server on cores {server_cores or cores}, openloop on {tool_cores or cores};"
        f" {args.arrivals} arrivals, {args.duration:g} s per rate\n"
        f"compare's limit now {OPEN_LOOP_MAX_RATE:,} req/s"
    )
    templ = "{:>6} {:>9} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6} {:>4}"
    print(
        templ.format(
            "asked", "scheduled", "sent/s", "lag p99", "waited", "p50", "p99", "p99.9",
            "max", "cpu %", "cpu µs", "held",
        )
    )  # fmt: skip
    held = 0.0
    for rate in args.rates:
        floor = measure_floor(
            rate,
            args.duration,
            arrivals=args.arrivals,
            server_cores=server_cores,
            tool_cores=tool_cores,
        )
        cpu_share = floor.generator_cpu_s / floor.duration_s
        holds = (
            not floor.generator_missed
            and floor.send_lag_p99_ms < LATE_SEND_MS
            and cpu_share < BUSY_SHARE
        )
        print(
            templ.format(
                f"{rate:g}",
                f"{floor.rate_scheduled:.0f}",
                f"{floor.rate_sent:.0f}",
                _ms(floor.send_lag_p99_ms),
                floor.waited_for_connection,
                _ms(floor.latency_p50_ms),
                _ms(floor.latency_p99_ms),
                _ms(floor.latency_p999_ms),
                _ms(floor.latency_max_ms),
                f"{cpu_share * 100:.0f}",
                f"{floor.generator_cpu_s / max(floor.requests, 1) * 1e6:.0f}",
                "yes" if holds else "no",
            )
        )
        held = rate if holds else held
    print(
        "lag and latency in ms; waited: requests that found all 64 connections busy;\n"
        "cpu % of one core; cpu µs per request"
    )
    print(f"highest rate held: {held:,.0f} req/s" if held else "no rate held")
    return 0


def _ms(value: float | None) -> str:
    """Milliseconds in at most 7 characters: 0.698, 13.1, 4,140."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
