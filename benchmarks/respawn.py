"""How long an app is without its worker after a kill -9, and what the other app saw.

    .venv/bin/python benchmarks/respawn.py [--server granian|unit] [--workers 1] [--kills 3]

Starts both apps with ./up.sh on free loopback ports. For each app, --kills
times: kills the worker that answered /status, then asks /status every 20 ms
until it lists a new worker in its place, while GET / goes to the other app
every 20 ms. Prints, per app, the seconds until the new worker showed
(median and max over the kills), and the other app's requests and failures.
Figures vary by machine; compare within one run. A run on the project's shared
2-core machine, busy with other work (load average 4):

    $ APP_USER=root .venv/bin/python benchmarks/respawn.py
    granian, 1 worker(s) per app
    app       kills   new worker s       max s   other app requests         failed
    flask         3           0.52        0.56                  861              0
    fastapi       3           0.62        0.68                  887              0
"""

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare.failures import run_benchmark
from compare.flag_values import Parser, positive_int, setting_value
from serve.launch import launch
from serve.settings import ROOT, WORKERS


def replaced_after_s(url: str, workers: int) -> float:
    """Kill the worker that answers url/status; seconds until /status lists its successor."""
    victim = httpx2.get(url + "/status", timeout=5).json()["process"]["pid"]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    while time.monotonic() - killed_at < 30:
        try:
            pids = httpx2.get(url + "/status", timeout=2).json()["process"]["pids"]
            if victim not in pids and len(pids) == workers:
                return time.monotonic() - killed_at
        except httpx2.HTTPError:
            pass
        time.sleep(0.02)
    return float("inf")


def flags() -> Parser:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["granian", "unit"], default="granian")
    parser.add_argument(
        "--workers",
        type=setting_value(WORKERS),
        default=1,
        help=f"workers per app, as {WORKERS.name} ({WORKERS.range}; 1)",
    )
    parser.add_argument("--kills", type=positive_int, default=3, help="kills per app (3)")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def main() -> int:
    args = parse()
    served = launch(
        ROOT / "results" / "respawn-up.log", {"SERVER": args.server, "WORKERS": str(args.workers)}
    )
    templ = "{:<8} {:>6} {:>14} {:>11} {:>20} {:>14}"
    print(f"{args.server}, {args.workers} worker(s) per app")
    print(templ.format("app", "kills", "new worker s", "max s", "other app requests", "failed"))
    try:
        for app, url in served.urls.items():
            other_url = next(u for a, u in served.urls.items() if a != app)
            outcomes, stop = [], threading.Event()

            def watch(other_url=other_url, outcomes=outcomes, stop=stop):
                with httpx2.Client(timeout=5) as client:
                    while not stop.wait(0.02):
                        try:
                            outcomes.append(client.get(other_url + "/").status_code == 200)
                        except httpx2.HTTPError:
                            outcomes.append(False)

            watcher = threading.Thread(target=watch, daemon=True)  # a Ctrl-C leaves it
            watcher.start()
            times = []
            for _ in range(args.kills):
                times.append(replaced_after_s(url, args.workers))
                time.sleep(6)  # granian takes a second death within 5.5 s for a crash loop
            stop.set()
            watcher.join()
            print(
                templ.format(
                    app,
                    args.kills,
                    f"{statistics.median(times):.2f}",
                    f"{max(times):.2f}",
                    len(outcomes),
                    outcomes.count(False),
                )
            )
    finally:
        served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
