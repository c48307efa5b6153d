"""What the metrics sampler costs: CPU time and instructions per sample, and /status latency.

    .venv/bin/python benchmarks/sampler_cost.py [--snapshots 300] [--requests 500] [--idle 10]
        [--callgrind 50]

Starts both apps with ./up.sh (one process each; Unit where unitd is on PATH or
UNITD names one, else granian; SERVER=granian forces it) on loopback, then prints:
- the CPU time of one sample as a worker takes it: the look-up of its sibling
  workers and of the server's processes, then the snapshot, timed here on the
  worker's own process tree (medians and p90 over --snapshots);
- the instructions of one snapshot of that tree, counted by valgrind's callgrind:
  a Python process that takes 1 + --callgrind snapshots, less one that takes 1,
  over --callgrind. A count that no load on the machine moves; the kernel's work
  for the reads of /proc (smaps_rollup above all) is not in it;
- the same cost measured inside the workers: their CPU time while idle with a
  sample every 0.1 s, less their idle CPU time with no sample due (both apps
  launched a second time, METRICS_INTERVAL=3600), per sample, thread wake-ups
  and cold caches included; beside it, what the workers' own process.observer_cpu_s
  counted per sample (the snapshots alone, timed by their thread's CPU clock);
- the median and p90 latency of /status next to / on both apps.
Timed figures vary by machine: compare within one run, on a quiet machine.

On the project's shared 2-core machine, busy with other work (load average 9 on
2 cores: the timed figures compare within one run only; the instructions hold):

    $ UNITD=/opt/unit/sbin/unitd .venv/bin/python benchmarks/sampler_cost.py
    one sample, timed on a worker's own process tree (Unit/1.34.2), medians:
      flask    look-up 0.684 ms, snapshot 3.785 ms; together 4.482 ms, p90 5.512 ms
               server: unit: "flask" prototype, unit: main v1.34.2, unit: controller, unit: router
      fastapi  look-up 0.504 ms, snapshot 2.666 ms; together 3.179 ms, p90 5.162 ms
               server: unit: "fastapi" prototype, unit: main v1.34.2, unit: controller, unit: router
    instructions of one snapshot (callgrind, 50 snapshots):
      flask    1,868.5k instructions
      fastapi  1,868.5k instructions
    inside the workers, idle for 10 s:
      flask    3.448 ms per sample (3.50 % of a core sampling every 0.1 s, 0.06 % without)
               observer_cpu_s counted 3.215 ms per sample
      fastapi  3.690 ms per sample (3.75 % of a core sampling every 0.1 s, 0.06 % without)
               observer_cpu_s counted 3.433 ms per sample
    latency over 500 sequential keep-alive requests:
      flask    /        median 1.698 ms, p90 5.462 ms
      flask    /status  median 11.724 ms, p90 28.238 ms
      fastapi  /        median 2.019 ms, p90 6.960 ms
      fastapi  /status  median 12.966 ms, p90 22.015 ms
"""

import argparse
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare.failures import run_benchmark
from compare.flag_values import Parser, checked_float, whole_number
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


ROOT = Path(__file__).resolve().parent.parent
# Takes 1 + N snapshots of the process tree of a worker, as the worker would.
SNAPSHOTS = """
import sys
sys.path.insert(0, sys.argv[1])
from metrics.processes import find_roles
from metrics.snapshot import take_snapshot
roles = find_roles(int(sys.argv[2]))
_, reading = take_snapshot(None, roles)
for _ in range(1 + int(sys.argv[3])):  # the first also pays for what is done once
    _, reading = take_snapshot(reading, roles)
"""


def instructions(pid: int, count: int) -> int:
    """The instructions callgrind counts in a Python process that takes 1 + count
    snapshots of pid's process tree."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                SNAPSHOTS,
                str(ROOT),
                str(pid),
                str(count),
            ],
            check=True,
            capture_output=True,
            env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"},
            timeout=600,
        )
        return int(re.search(r"^summary: (\d+)$", out.read_text(), re.MULTILINE).group(1))


def instructions_per_snapshot(pid: int, count: int) -> float:
    return (instructions(pid, count) - instructions(pid, 0)) / count


def idle_cpu_s_per_s(urls: dict[str, str], idle_s: float) -> dict[str, tuple[float, float]]:
    """Each app's workers' CPU seconds per second while no request comes (but two /status),
    and the part of it they counted as their observer's."""
    with httpx2.Client(timeout=10) as client:
        client.get(urls["flask"] + "/")
        time.sleep(2)  # past the first sample, 1 s after start
        before = {app: client.get(url + "/status").json() for app, url in urls.items()}
        time.sleep(idle_s)
        after = {app: client.get(url + "/status").json() for app, url in urls.items()}
    rates = {}
    for app in urls:
        window_s = after[app]["timestamp"] - before[app]["timestamp"]
        rates[app] = tuple(
            (after[app]["process"][figure] - before[app]["process"][figure]) / window_s
            for figure in ("cpu_time_s", "observer_cpu_s")
        )
    return rates


def latencies_ms(client: httpx2.Client, url: str, count: int) -> list[float]:
    for _ in range(20):  # warm up the connection and the app
        client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times


def idle_seconds(text: str) -> float:
    """--idle: 1 s or more, ten samples at least at one every 0.1 s."""
    return checked_float(text, lambda s: 1 <= s < math.inf, "a finite number of 1 or more")


def flags() -> Parser:
    # Ten or more: a p90 of fewer values says little more than their largest.
    ten_or_more = whole_number(10)
    parser = Parser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--snapshots", type=ten_or_more, default=300, help="snapshots to time (300; 10 or more)")
    add("--requests", type=ten_or_more, default=500, help="requests per endpoint (500; 10 or more)")
    add("--idle", type=idle_seconds, default=10, help="seconds idle, sampling (10; 1 or more)")
    add(
        "--callgrind",
        type=whole_number(0),
        default=50,
        help="snapshots counted by callgrind (50; 0: none)",
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags()
    args = parser.parse_args(argv)
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind: apt-get install valgrind (or --callgrind 0)")
    return args


def main() -> None:
    args = parse()

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
            print(f"one sample, timed on a worker's own process tree ({server}), medians:")
            for app, url in apps.urls.items():
                status = client.get(url + "/status").json()
                lookups, snapshots = sample_cpu_ms(status["process"]["pid"], args.snapshots)
                total = [a + b for a, b in zip(lookups, snapshots, strict=True)]
                names = ", ".join(status["server"]["names"]) if status["server"] else "none"
                print(
                    f"  {app:8} look-up {statistics.median(lookups):.3f} ms,"
                    f" snapshot {statistics.median(snapshots):.3f} ms;"
                    f" together {statistics.median(total):.3f} ms, p90 {p90(total):.3f} ms\n"
                    f"  {'':8} server: {names}"
                )
            if args.callgrind:
                print(f"instructions of one snapshot (callgrind, {args.callgrind} snapshots):")
                for app, url in apps.urls.items():
                    pid = client.get(url + "/status").json()["process"]["pid"]
                    count = instructions_per_snapshot(pid, args.callgrind)
                    print(f"  {app:8} {count / 1000:,.1f}k instructions")
            print(f"inside the workers, idle for {args.idle:g} s:")
            sampling = idle_cpu_s_per_s(apps.urls, args.idle)
            for app in apps.urls:
                cpu, observer = sampling[app]
                per_sample_ms = (cpu - baseline[app][0]) * interval_s * 1000
                print(
                    f"  {app:8} {per_sample_ms:.3f} ms per sample ({cpu * 100:.2f} % of a core"
                    f" sampling every {interval_s} s, {baseline[app][0] * 100:.2f} % without)\n"
                    f"  {'':8} observer_cpu_s counted {observer * interval_s * 1000:.3f} ms"
                    " per sample"
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
    sys.exit(run_benchmark(main))
