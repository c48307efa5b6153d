"""What a full /stats buffer costs: its memory, the latency of /stats, and what many
clients asking for it at once do to a worker.

    .venv/bin/python benchmarks/stats_cost.py [--server granian|unit] [--slots N]
                                              [--repeats 5] [--clients 50] [--hold-s 15]

With METRICS_SLOTS=N (default: the largest allowed, serve.settings.MAX_SLOTS), fills a
sampler's buffer here with N samples (copies of a real snapshot, as tests/full_buffer.py
makes them) and prints the memory they hold (Python allocations, RSS growth), also for
samples 30% larger. Then serves both apps with ./up.sh under --server, from a copy of
the project whose apps load with a full buffer, and prints per app:

  - the median and worst latency of GET /stats, /stats?last=60 and /status, the worst of
    GET / sent while a full /stats is answered, and the worker's RSS;
  - for each way a client may take its answer (all at once; 1 KiB every 50 ms; never),
    --clients clients asking for the full /stats at once (never reading: also one every
    0.7 s), each keeping its connection up to --hold-s: how many got 200 and 503, the
    worker's RSS before and at its peak, and GET /json sent to both ports every 0.2 s
    meanwhile (how many, not answered 200 within 5 s, worst latency).

Under Unit, VENV and UNITD as for ./up.sh; run by root, the apps run as nobody, who must
be able to run VENV (or APP_USER=root). Figures vary by machine; compare within one run.
A run on a busy 2-core machine (the /json column: failed/sent:slowest, Flask's then
FastAPI's):

    $ .venv/bin/python benchmarks/stats_cost.py
    a full buffer at METRICS_SLOTS=20000 holds 17.7 MiB
      (RSS grew 24.2 MiB); one sample's JSON is 574 bytes;
      with samples 30% larger: 23.0 MiB
    granian: /stats body 12.0 MiB
    app      request           median ms     max ms
    flask    /stats                226.5      514.4
    flask    /stats?last=60          4.2       11.7
    flask    /status                12.8       15.9
    flask    / during /stats                  408.3
    fastapi  /stats                195.7      352.9
    fastapi  /stats?last=60          2.8        5.9
    fastapi  /status                 9.6       13.5
    fastapi  / during /stats                  174.7
    50 clients ask for the full /stats, at once and 0.7 s apart:
    app      reads   apart   200  503     RSS MiB  /json failed/sent:max s
    flask    all     0 s       1   49     77 > 89  0/1:0.01 0/1:0.00
    fastapi  all     0 s       1   49     80 > 90  0/1:0.05 0/1:0.02
    flask    slowly  0 s       1   49     80 > 86  0/65:0.86 0/65:0.02
    fastapi  slowly  0 s       1   49    91 > 100  0/70:0.01 0/70:0.20
    flask    never   0 s       1   49     82 > 83  0/73:0.01 0/73:0.01
    fastapi  never   0 s       1   49     94 > 98  0/71:0.01 0/71:0.08
    flask    never   0.7 s     3   47     83 > 96  0/236:0.11 0/236:0.01
    fastapi  never   0.7 s     3   47    95 > 100  0/240:0.01 0/240:0.01

Before answers were sent in pieces and in turn, the same clients took FastAPI's
worker from 79 to 716-982 MB, and GET /json went unanswered for 5 s at times.
"""

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# full_buffer.py: the apps with a full buffer, as the tests serve them; hostile.py: the clients
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from full_buffer import fill, filled_copy
from hostile import Watch, take_answer

from compare.failures import run_benchmark
from compare.flag_values import Parser, positive_float, positive_int, setting_value
from metrics.sampler import Sampler
from metrics.schema import MB
from metrics.stats_body import LARGE_BYTES_PER_S
from serve.launch import Launch, launch
from serve.settings import MAX_SLOTS, METRICS_SLOTS, ROOT, MetricsConfig

TEMPL = "{:<8} {:<16} {:>10} {:>10}"
CLIENT_TEMPL = "{:<8} {:<7} {:<6} {:>4} {:>4} {:>11}  {}"
# How clients take their answer, and how far apart they come: the last is what fills
# NGINX Unit's shared memory if anything does (it takes answers whether clients read or not).
CASES = (("all", 0.0), ("slowly", 0.0), ("never", 0.0), ("never", 0.7))


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


def latencies_ms(client: httpx2.Client, url: str, repeats: int, pause_s: float) -> list[float]:
    times = []
    for _ in range(repeats):
        time.sleep(pause_s)  # a large answer may wait its turn (/stats answers 503 meanwhile)
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def held_up_ms(client: httpx2.Client, url: str, repeats: int, pause_s: float) -> float:
    """The worst latency of GET / while GET /stats requests of the full buffer run."""
    done = threading.Event()

    def load_stats():
        with httpx2.Client(timeout=30) as other:
            latencies_ms(other, url + "/stats", repeats, pause_s)
        done.set()

    thread = threading.Thread(target=load_stats)
    thread.start()
    worst = 0.0
    while not done.is_set():
        worst = max(worst, max(latencies_ms(client, url + "/", 1, 0)))
    thread.join()
    return worst


def clients_at_once(
    served: Launch, app: str, way: str, clients: int, hold_s: float, every_s: float
):
    """`clients` GET /stats to `app`, taken `way`, every_s apart: the statuses and the Watch."""
    url = served.urls[app]
    pids = httpx2.get(url + "/status", timeout=30).json()["process"]["pids"]
    statuses: list[bytes] = []
    with Watch(served.urls, [psutil.Process(pid) for pid in pids]) as watch:
        threads = []
        for _ in range(clients):

            def one():
                statuses.append(take_answer(served.ports[app], "/stats", way, hold_s))

            threads.append(threading.Thread(target=one))
            threads[-1].start()
            time.sleep(every_s)
        for thread in threads:
            thread.join()
    time.sleep(hold_s / 2)  # whatever the server still held of them goes, before the next
    return collections.Counter(statuses), watch


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["granian", "unit"], default="granian")
    parser.add_argument(
        "--slots",
        type=setting_value(METRICS_SLOTS),
        default=MAX_SLOTS,
        help=f"the buffer's samples, as {METRICS_SLOTS.name} ({METRICS_SLOTS.range}; {MAX_SLOTS})",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="times each request is timed (5)"
    )
    parser.add_argument(
        "--clients", type=positive_int, default=50, help="asking for /stats at once (50)"
    )
    parser.add_argument(
        "--hold-s", type=positive_float, default=15, help="seconds each keeps its connection (15)"
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def main() -> int:
    args = parse()

    traced_mb, rss_mb, sample_bytes = buffer_mb(args.slots)
    print(f"a full buffer at METRICS_SLOTS={args.slots} holds {traced_mb:.1f} MiB")
    print(f"  (RSS grew {rss_mb:.1f} MiB); one sample's JSON is {sample_bytes} bytes;")
    print(f"  with samples 30% larger: {traced_mb * 1.3:.1f} MiB")

    env = {
        "SERVER": args.server,
        "METRICS_SLOTS": str(args.slots),
        "METRICS_INTERVAL": "3600",
        "VENV": os.environ.get("VENV", str(ROOT / ".venv")),  # the copy has none of its own
    }
    with tempfile.TemporaryDirectory() as tmp:
        copy = filled_copy(Path(tmp))
        with launch(ROOT / "results" / "stats-cost-up.log", env, root=copy) as served:
            # A full answer is paid for at the worker's rate: wait that long between them.
            body_bytes = len(httpx2.get(served.urls["flask"] + "/stats", timeout=60).content)
            pause_s = body_bytes / LARGE_BYTES_PER_S + 0.5
            body_mb = body_bytes / MB
            print(f"{args.server}: /stats body {body_mb:.1f} MiB")
            print(TEMPL.format("app", "request", "median ms", "max ms"))
            for app, url in served.urls.items():
                with httpx2.Client(timeout=60) as client:
                    for path in ("/stats", "/stats?last=60", "/status"):
                        pause = pause_s if path == "/stats" else 0
                        times = latencies_ms(client, url + path, args.repeats, pause)
                        median, worst = statistics.median(times), max(times)
                        print(TEMPL.format(app, path, f"{median:.1f}", f"{worst:.1f}"))
                    held_ms = held_up_ms(client, url, args.repeats, pause_s)
                    print(TEMPL.format(app, "/ during /stats", "", f"{held_ms:.1f}"))
            print(f"{args.clients} clients ask for the full /stats, at once and 0.7 s apart:")
            print(
                CLIENT_TEMPL.format(
                    "app", "reads", "apart", "200", "503", "RSS MiB", "/json failed/sent:max s"
                )
            )
            for way, every_s in CASES:
                for app in served.urls:
                    time.sleep(pause_s)
                    statuses, watch = clients_at_once(
                        served, app, way, args.clients, args.hold_s, every_s
                    )
                    probes = " ".join(f"{f}/{s}:{w:.2f}" for s, f, w in watch.probes.values())
                    rss = f"{watch.rss_before_mb:.0f} > {watch.rss_peak_mb:.0f}"
                    said = [app, way, f"{every_s:g} s", statuses[b"200"], statuses[b"503"]]
                    print(CLIENT_TEMPL.format(*said, rss, probes))
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
