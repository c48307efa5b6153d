"""What a full /stats buffer costs: its memory in a worker, and the latency of /stats.

    .venv/bin/python benchmarks/stats_cost.py [--slots N] [--repeats 5]

With METRICS_SLOTS=N (default: the largest allowed, serve.config.MAX_SLOTS), fills a
sampler's buffer with N samples (copies of a real snapshot, each stored as the
sampler stores it) and prints the memory they hold here (Python allocations and
the growth of RSS), also for samples 30% larger. Then serves each app under
granian on a free loopback port, one worker whose buffer is filled at import
(this file is the --factory target), and prints the worker's RSS, the median
and worst latency of GET /stats, /stats?last=60 and /status, and the worst
latency of GET / sent while a /stats of the full buffer is answered: how long
/stats holds up the app's other requests (FastAPI's one event loop, Flask's
threads). Figures vary by machine; compare within one run.
"""

import argparse
import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metrics.sampler import Sampler
from metrics.schema import MB
from serve.config import MAX_SLOTS, MetricsConfig
from serve.ports import free_port


def fill(sampler: Sampler, count: int) -> None:
    """Append `count` samples to the sampler's buffer, as its thread would at each interval."""
    snapshot = sampler.status()
    for i in range(count):
        # Distinct figures in every sample, as a real buffer has.
        sample = snapshot.model_copy(update={"timestamp": snapshot.timestamp + i})
        sample.process = sample.process.model_copy(update={"rss_mb": 40 + i % 1000 / 100})
        sampler._samples.append(sample)


def full(module_name: str):
    """The app of `module_name` with its sampler's buffer full."""
    module = importlib.import_module(module_name)
    fill(module.sampler, module.sampler.config.slots)
    return module.app


def full_flask():  # granian --factory targets
    return full("flask-wsgi")


def full_fastapi():
    return full("fastapi-asgi")


def buffer_mb(slots: int) -> tuple[float, float, int]:
    """MiB that a full buffer of `slots` holds here: traced allocations, RSS growth; and
    the bytes of one sample's JSON."""
    sampler = Sampler(MetricsConfig(slots=slots))
    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    fill(sampler, slots)
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = (process.memory_info().rss - rss_before) / MB
    sample_bytes = len(sampler.stats_json(2)) - len(sampler.stats_json(1)) - 1
    return traced / MB, rss_mb, sample_bytes


@contextlib.contextmanager
def served(app: str, slots: int):
    """`app` (flask or fastapi) under granian with a full buffer; yields (url, worker RSS MiB)."""
    port = free_port()
    interface = ["wsgi", "--blocking-threads", "4"] if app == "flask" else ["asgi"]
    argv = [sys.executable, "-m", "granian", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--no-ws", "--log-level", "warning", "--factory"]
    argv += ["--working-dir", str(Path(__file__).parent), "--interface", *interface]
    server = subprocess.Popen(
        [*argv, f"stats_cost:full_{app}"],
        env={**os.environ, "METRICS_SLOTS": str(slots), "METRICS_INTERVAL": "3600"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"granian exited with {server.returncode}"
            assert time.monotonic() < deadline, "the app did not answer within 120 s"
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(url + "/", timeout=5).status_code == 200:
                    break
            time.sleep(0.2)
        workers = psutil.Process(server.pid).children()
        yield url, sum(w.memory_info().rss for w in workers) / MB
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def latencies_ms(client: httpx2.Client, url: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def held_up_ms(client: httpx2.Client, url: str, repeats: int) -> float:
    """The worst latency of GET / while GET /stats requests of the full buffer run."""
    done = threading.Event()

    def load_stats():
        with httpx2.Client(timeout=30) as other:
            for _ in range(repeats):
                other.get(url + "/stats")
        done.set()

    thread = threading.Thread(target=load_stats)
    thread.start()
    worst = 0.0
    while not done.is_set():
        worst = max(worst, max(latencies_ms(client, url + "/", 1)))
    thread.join()
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=MAX_SLOTS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    traced_mb, rss_mb, sample_bytes = buffer_mb(args.slots)
    print(f"a full buffer at METRICS_SLOTS={args.slots} holds {traced_mb:.1f} MiB")
    print(f"  (RSS grew {rss_mb:.1f} MiB); one sample's JSON is {sample_bytes} bytes;")
    print(f"  with samples 30% larger: {traced_mb * 1.3:.1f} MiB")

    templ = "{:<8} {:<16} {:>10} {:>10}"
    print(templ.format("app", "request", "median ms", "max ms"))
    for app in ("flask", "fastapi"):
        with served(app, args.slots) as (url, worker_rss_mb), httpx2.Client(timeout=30) as client:
            for path in ("/stats", "/stats?last=60", "/status"):
                times = latencies_ms(client, url + path, args.repeats)
                median, worst = statistics.median(times), max(times)
                print(templ.format(app, path, f"{median:.1f}", f"{worst:.1f}"))
            held_ms = held_up_ms(client, url, args.repeats)
            print(templ.format(app, "/ during /stats", "", f"{held_ms:.1f}"))
            body_mb = len(client.get(url + "/stats").content) / MB
            print(f"{app}: worker RSS {worker_rss_mb:.1f} MiB, /stats body {body_mb:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
