"""What the metrics sampler costs: CPU time per snapshot and the latency of /status.

    .venv/bin/python benchmarks/sampler_cost.py [--snapshots 300] [--requests 500]

Prints the median CPU time one snapshot takes in this process, the CPU time
of the look for sibling workers that a worker adds to it, their share of one
core at the default 10 s interval, and the median and p90 latency of /status
next to / on both apps started by ./up.sh (one process each) on loopback.
Figures vary by machine; compare within one run.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compare
import metrics


def snapshot_cpu_ms(count: int) -> list[float]:
    """CPU milliseconds of each of `count` snapshots taken back to back."""
    _, reference = metrics.take_snapshot(None)
    times = []
    for _ in range(count):
        start = time.process_time()
        _, reference = metrics.take_snapshot(reference)
        times.append((time.process_time() - start) * 1000)
    return times


def scan_cpu_ms(count: int) -> list[float]:
    """CPU milliseconds of one look for sibling workers (every process is read).

    A lone process skips it; a worker under granian or Unit does it on every
    sample, and on /status at most once a second.
    """
    parent = psutil.Process().parent()
    times = []
    for _ in range(count):
        start = time.process_time()
        parent.children()
        times.append((time.process_time() - start) * 1000)
    return times


def latencies_ms(client: httpx2.Client, url: str, count: int) -> list[float]:
    for _ in range(20):  # warm up the connection and the app
        client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=300, help="snapshots to time (300)")
    parser.add_argument("--requests", type=int, default=500, help="requests per endpoint (500)")
    args = parser.parse_args()
    if args.snapshots < 10 or args.requests < 10:
        parser.error("--snapshots and --requests need at least 10")

    median_ms = statistics.median(cpu_ms := snapshot_cpu_ms(args.snapshots))
    print(f"snapshot CPU time: median {median_ms:.3f} ms, p90 {p90(cpu_ms):.3f} ms")
    scan_ms = statistics.median(scan_cpu_ms(args.snapshots))
    print(f"worker scan CPU time ({len(psutil.pids())} processes): median {scan_ms:.3f} ms")
    per_tick_ms = median_ms + scan_ms
    print(
        f"one sample in a worker: {per_tick_ms:.3f} ms, share of one core at a 10 s interval:"
        f" {per_tick_ms / 10_000 * 100:.4f} %"
    )

    launch = argparse.Namespace(workers=1)
    log = Path("/tmp/sampler_cost_up.log")
    with compare.launched(launch, None, log) as (urls, _), httpx2.Client(timeout=10) as client:
        server = client.get(urls["flask"] + "/").headers.get("server", "unknown")
        print(f"latency over {args.requests} sequential keep-alive requests ({server}):")
        for name, url in urls.items():
            for path in ("/", "/status"):
                times = latencies_ms(client, url + path, args.requests)
                print(
                    f"  {name:8} {path:8} median {statistics.median(times):.3f} ms,"
                    f" p90 {p90(times):.3f} ms"
                )


if __name__ == "__main__":
    main()
