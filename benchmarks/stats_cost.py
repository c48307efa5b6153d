"""What a full /stats buffer costs: its memory in a worker, and the latency of /stats.

    .venv/bin/python benchmarks/stats_cost.py [--slots N] [--repeats 5]

Imports both apps here, as a server's worker does, with METRICS_SLOTS=N (default:
the largest allowed, metrics.MAX_SLOTS), and fills their sampler's buffer with N
samples (copies of a real snapshot, each stored as the sampler stores it). Prints
the memory the full buffer holds (Python allocations, and the growth of RSS), the
same for samples 30% larger, and the median and worst latency of GET /stats, of
/stats?last=60 and of /status through each framework's own test client. Figures
vary by machine; compare within one run.
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import metrics

MB = 1024 * 1024


def fill(sampler: metrics.Sampler, count: int) -> tuple[float, float]:
    """Append `count` samples; the MiB they hold as traced allocations and as RSS growth."""
    snapshot = sampler.status()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    traced_before, _ = tracemalloc.get_traced_memory()
    for i in range(count):
        # Distinct figures in every sample, as a real buffer has.
        sample = snapshot.model_copy(update={"timestamp": snapshot.timestamp + i})
        sample.process = sample.process.model_copy(update={"rss_mb": 40 + i % 1000 / 100})
        sampler._samples.append(sample)  # what the sampler thread does at each interval
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (traced - traced_before) / MB, (process.memory_info().rss - rss_before) / MB


def latencies_ms(get, path: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=metrics.MAX_SLOTS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    os.environ.update(METRICS_SLOTS=str(args.slots), METRICS_INTERVAL="3600")
    flask_app = __import__("flask-wsgi")
    fastapi_app = __import__("fastapi-asgi")
    from fastapi.testclient import TestClient

    sampler = flask_app.sampler  # one sampler per process, shared by both apps here
    traced_mb, rss_mb = fill(sampler, args.slots)
    sample_bytes = len(sampler.stats_json(2)) - len(sampler.stats_json(1)) - 1
    print(f"full buffer at METRICS_SLOTS={args.slots}: {traced_mb:.1f} MiB allocated,")
    print(f"  RSS grew {rss_mb:.1f} MiB; one sample's JSON is about {sample_bytes} bytes;")
    print(f"  with samples 30% larger: {traced_mb * 1.3:.1f} MiB (the limit: 50 MiB per worker)")
    print(f"/stats body: {len(sampler.stats_json()) / MB:.1f} MiB")

    templ = "{:<8} {:<16} {:>10} {:>10}"
    print(templ.format("app", "request", "median ms", "max ms"))
    clients = {
        "flask": flask_app.app.test_client().get,
        "fastapi": TestClient(fastapi_app.app).get,
    }
    for name, get in clients.items():
        for path in ("/stats", "/stats?last=60", "/status"):
            times = latencies_ms(get, path, args.repeats)
            print(templ.format(name, path, f"{statistics.median(times):.1f}", f"{max(times):.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
