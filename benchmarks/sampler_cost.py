"""What the metrics sampler costs: CPU time per sample in a worker's place, and /status latency.

    .venv/bin/python benchmarks/sampler_cost.py [--snapshots 300] [--requests 500] [--idle 10]

Starts both apps with ./up.sh (one process each; Unit where unitd is on PATH or
UNITD names one, else granian; SERVER=granian forces it) on loopback, then prints:
- the CPU time of one sample as a worker takes it: the look-up of its sibling
  workers and of the server's processes, then the snapshot, timed here on the
  worker's own process tree (medians and p90 over --snapshots);
- the same cost measured inside the workers: their CPU time while idle with a
  sample every 0.1 s, less their idle CPU time with no sample due (both apps
  launched a second time, METRICS_INTERVAL=3600), per sample, thread wake-ups
  and cold caches included;
- the median and p90 latency of /status next to / on both apps.
Figures vary by machine: compare within one run, on a quiet machine.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metrics.processes import find_roles
from metrics.snapshot import take_snapshot
from serve.launch import launch


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def sample_cpu_ms(pid: int, count: int) -> tuple[list[float], list[float]]:
    """CPU ms of each look-up of pid's roles, and of each snapshot of them."""
    roles = find_roles(pid)
    _, reference = take_snapshot(None, roles)
    lookups, snapshots = [], []
    for _ in range(count):
        start = time.process_time()
        roles = find_roles(pid)
        middle = time.process_time()
        _, reference = take_snapshot(reference, roles)
        lookups.append((middle - start) * 1000)
        snapshots.append((time.process_time() - middle) * 1000)
    return lookups, snapshots


def idle_cpu_s_per_s(urls: dict[str, str], idle_s: float) -> dict[str, float]:
    """Each app's workers' CPU seconds per second while no request comes (but two /status)."""
    with httpx2.Client(timeout=10) as client:
        client.get(urls["flask"] + "/")
        time.sleep(2)  # past the first sample, 1 s after start
        before = {app: client.get(url + "/status").json() for app, url in urls.items()}
        time.sleep(idle_s)
        after = {app: client.get(url + "/status").json() for app, url in urls.items()}
    return {
        app: (after[app]["process"]["cpu_time_s"] - before[app]["process"]["cpu_time_s"])
        / (after[app]["timestamp"] - before[app]["timestamp"])
        for app in urls
    }


def latencies_ms(client: httpx2.Client, url: str, count: int) -> list[float]:
    for _ in range(20):  # warm up the connection and the app
        client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=300, help="snapshots to time (300)")
    parser.add_argument("--requests", type=int, default=500, help="requests per endpoint (500)")
    parser.add_argument("--idle", type=float, default=10, help="seconds idle, sampling (10)")
    args = parser.parse_args()
    if args.snapshots < 10 or args.requests < 10 or args.idle < 1:
        parser.error("--snapshots and --requests need at least 10, --idle 1 s")

    interval_s = 0.1
    log = Path("/tmp/sampler_cost_up.log")
    apps = launch(log, {"METRICS_INTERVAL": "3600"})
    try:
        baseline = idle_cpu_s_per_s(apps.urls, args.idle)
    finally:
        apps.stop()
    apps = launch(log, {"METRICS_INTERVAL": str(interval_s)})
    try:
        with httpx2.Client(timeout=10) as client:
            server = client.get(apps.urls["flask"] + "/").headers.get("server", "unknown")
            print(f"one sample, timed on a worker's own process tree ({server}):")
            for app, url in apps.urls.items():
                status = client.get(url + "/status").json()
                lookups, snapshots = sample_cpu_ms(status["process"]["pid"], args.snapshots)
                total = [a + b for a, b in zip(lookups, snapshots, strict=True)]
                names = ", ".join(status["server"]["names"]) if status["server"] else "none"
                print(
                    f"  {app:8} look-up median {statistics.median(lookups):.3f} ms,"
                    f" snapshot median {statistics.median(snapshots):.3f} ms;"
                    f" together median {statistics.median(total):.3f} ms, p90 {p90(total):.3f} ms"
                    f" (server: {names})"
                )
            print(f"inside the workers, idle for {args.idle:g} s:")
            sampling = idle_cpu_s_per_s(apps.urls, args.idle)
            for app in apps.urls:
                per_sample_ms = (sampling[app] - baseline[app]) * interval_s * 1000
                print(
                    f"  {app:8} {per_sample_ms:.3f} ms per sample ({sampling[app] * 100:.2f} % of"
                    f" a core sampling every {interval_s} s, {baseline[app] * 100:.2f} % without)"
                )
            print(f"latency over {args.requests} sequential keep-alive requests:")
            for name, url in apps.urls.items():
                for path in ("/", "/status"):
                    times = latencies_ms(client, url + path, args.requests)
                    print(
                        f"  {name:8} {path:8} median {statistics.median(times):.3f} ms,"
                        f" p90 {p90(times):.3f} ms"
                    )
    finally:
        apps.stop()


if __name__ == "__main__":
    main()
