"""Both apps' latency while hostile clients hold thousands of connections open.

    .venv/bin/python benchmarks/connections.py [--server granian|unit] [--idle 5000]
                                               [--slow 50] [--duration 20] [--rate 20]

Starts both apps with ./up.sh on free loopback ports and sends GET / to each
port, --rate times a second, each on a new connection, for --duration seconds:
first alone, then while another process holds --idle silent connections and
--slow slow-header ones (a header line every 0.5 s, never the end of the
headers) at each port, opening again at once every one the server closes.
Prints, per phase and app, the requests sent, those not answered 200 within
5 s, the latency's p50, p99 and max, and, under load, how many hostile
connections were open (least and average over the phase) and how many the
server closed. Figures vary by machine; compare within one run. A run on a
busy 2-core machine:

    $ .venv/bin/python benchmarks/connections.py
    granian: 20 GET / a second per app, each on a new connection
    phase    app      requests  failed   p50 ms   p99 ms    max ms hostile open min/avg    closed
    alone    flask         401       0      1.3     10.2      56.0                    -         -
    alone    fastapi       401       0      1.3      9.2      14.2                    -         -
    hostile  flask         401       0      1.4     27.0     116.4          5050 / 5050     20200
    hostile  fastapi       401       0      1.4     21.4      53.3          5050 / 5050     20200
"""

import argparse
import contextlib
import http.client
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# hostile.py: the clients that the tests use too
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import Hostile, raise_open_files

from compare.failures import run_benchmark
from compare.flag_values import Parser, positive_float, whole_number
from serve.launch import launch
from serve.settings import ROOT

ANSWER_WITHIN_S = 5
TEMPL = "{:<8} {:<8} {:>8} {:>7} {:>8} {:>8} {:>9} {:>20} {:>9}"


def latency_ms(port: int) -> float | None:
    """GET / on a new connection: milliseconds to the whole answer, None unless 200."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN_S)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        ok = response.status == 200
    except OSError:
        ok = False
    finally:
        connection.close()
    return (time.perf_counter() - start) * 1000 if ok else None


def measure(ports: dict[str, int], duration_s: float, rate: float) -> dict[str, list]:
    """Each app's latencies (None for a failure), the apps taking turns, `rate` a second each."""
    results = {app: [] for app in ports}
    period_s = 1 / (rate * len(ports))
    next_at, end = time.monotonic(), time.monotonic() + duration_s
    while time.monotonic() < end:
        for app, port in ports.items():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += period_s
            results[app].append(latency_ms(port))
    return results


def hold(ports: list[int], idle: int, slow: int, ready, done, report) -> None:
    """In a process of its own: hold the hostile connections until `done`, then report."""
    raise_open_files(len(ports) * (idle + slow) + 256)
    with contextlib.ExitStack() as stack:
        hostiles = [stack.enter_context(Hostile(p, idle, slow, reopen=True)) for p in ports]
        ready.set()
        samples = []
        while not done.wait(0.25):
            samples.append([h.open for h in hostiles])
        report.put(
            {
                "open_min": [min(s[i] for s in samples) for i in range(len(ports))],
                "open_avg": [statistics.fmean(s[i] for s in samples) for i in range(len(ports))],
                "closed": [h.closed for h in hostiles],
                "refused": [h.refused for h in hostiles],
            }
        )


def print_phase(phase: str, results: dict[str, list], held: dict | None) -> None:
    for index, (app, latencies) in enumerate(results.items()):
        answered = sorted(ms for ms in latencies if ms is not None)
        p99 = (
            statistics.quantiles(answered, n=100, method="inclusive")[98]
            if len(answered) > 1
            else float("nan")
        )
        hostile = ("-", "-")
        if held:
            open_ = f"{held['open_min'][index]} / {held['open_avg'][index]:.0f}"
            hostile = (open_, held["closed"][index])
        print(
            TEMPL.format(
                phase,
                app,
                len(latencies),
                len(latencies) - len(answered),
                f"{statistics.median(answered):.1f}" if answered else "-",
                f"{p99:.1f}",
                f"{answered[-1]:.1f}" if answered else "-",
                *hostile,
            )
        )


def flags() -> Parser:
    # 0 --idle or 0 --slow connections: the other kind alone.
    count = whole_number(0)
    parser = Parser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--server", choices=["granian", "unit"], default="granian")
    add("--idle", type=count, default=5000, help="silent connections per port (5000; 0: none)")
    add("--slow", type=count, default=50, help="slow-header connections per port (50; 0: none)")
    add("--duration", type=positive_float, default=20, help="seconds per phase (20)")
    add("--rate", type=positive_float, default=20, help="requests a second per app (20)")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def main() -> int:
    args = parse()
    needed = 2 * (args.idle + args.slow) + 256
    if raise_open_files(needed) < needed:
        sys.exit(f"connections.py: {needed} open files needed; the hard limit is lower")

    served = launch(ROOT / "results" / "connections-up.log", {"SERVER": args.server})
    try:
        ports = {app: int(url.rsplit(":", 1)[1]) for app, url in served.urls.items()}
        print(f"{args.server}: {args.rate:g} GET / a second per app, each on a new connection")
        print(
            TEMPL.format(
                "phase", "app", "requests", "failed", "p50 ms", "p99 ms", "max ms",
                "hostile open min/avg", "closed",
            )
        )  # fmt: skip
        print_phase("alone", measure(ports, args.duration, args.rate), None)
        context = multiprocessing.get_context("spawn")
        ready, done, report = context.Event(), context.Event(), context.Queue()
        holder = context.Process(
            target=hold, args=(list(ports.values()), args.idle, args.slow, ready, done, report)
        )
        holder.start()
        try:
            ready.wait(60)
            time.sleep(2)  # every connection opened, the slow ones sending
            results = measure(ports, args.duration, args.rate)
            done.set()
            print_phase("hostile", results, report.get(timeout=60))
        finally:
            done.set()
            holder.join(30)
            holder.kill()
    finally:
        served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
