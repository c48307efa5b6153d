"""How exact is the CPU-seconds figure? /status against the kernel's own accounting.

    .venv/bin/python benchmarks/cpu_accuracy.py [--workers 2] [--duration 10]

Starts both apps with ./up.sh (granian, --workers each), and for each app reads
/status and /proc/<pid>/stat (utime + stime of every worker) just before and
just after a wrk run on /json. Prints both CPU-second deltas and their
difference, and what the reading side itself spent. Needs wrk.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare.failures import run_benchmark
from compare.flag_values import Parser, positive_int, setting_value
from compare.loadtools import INSTALL, LoadToolError
from compare.targets import status
from serve.launch import launch
from serve.settings import WORKERS

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pids: list[int]) -> float:
    """utime + stime of the pids, straight from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / TICKS_PER_S


def flags() -> Parser:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=setting_value(WORKERS),
        default=2,
        help=f"workers per app, as {WORKERS.name} ({WORKERS.range}; 2)",
    )
    parser.add_argument(
        "--duration", type=positive_int, default=10, help="whole seconds of each wrk run (10)"
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def main() -> None:
    args = parse()
    if shutil.which("wrk") is None:
        raise LoadToolError(f"wrk is not installed: apt-get install {INSTALL['wrk']}")
    apps = launch(Path("/tmp/cpu_accuracy_up.log"), {"WORKERS": str(args.workers)})
    try:
        measure(apps.urls, args.duration)
    finally:
        apps.stop()


def measure(urls: dict[str, str], duration_s: int) -> None:
    with httpx2.Client(timeout=10) as client:
        for app, url in urls.items():
            before = status(client, url)
            pids = before.process.pids
            proc_before = proc_cpu_s(pids)
            runner_before = time.process_time()
            subprocess.run(
                ["wrk", "-t2", "-c32", f"-d{duration_s}s", url + "/json"],
                check=True,
                capture_output=True,
            )
            proc_after = proc_cpu_s(pids)
            after = status(client, url)
            runner_s = time.process_time() - runner_before
            status_s = after.process.cpu_time_s - before.process.cpu_time_s
            kernel_s = proc_after - proc_before
            print(
                f"{app:8} {len(pids)} workers: /status {status_s:.3f} CPU-s, /proc {kernel_s:.3f}"
                f" CPU-s, difference {status_s - kernel_s:+.3f} s"
                f" ({(status_s / kernel_s - 1) * 100:+.2f} %); this script: {runner_s:.3f} CPU-s"
            )


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
