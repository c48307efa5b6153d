"""What the database routes answer while PostgreSQL is down, how fast, and how long until
both apps answer from it again, by themselves.

    .venv/bin/python benchmarks/database_outage.py [--server granian|unit] [--down 5,30,60]

Makes a PostgreSQL cluster as up.sh would (serve/postgres.py) and serves both apps
against it (DATABASE_URL) with ./up.sh on free loopback ports. For each --down
length: stops the cluster (a fast shutdown), asks /db of each app in turn until the
outage has lasted that long, timing every answer, then starts the cluster again on the
same data and socket and asks /db every 50 ms until each app answers 200. Prints, per
outage and app, what the answers during it were, their slowest, and the seconds to
recover. The pool gives up on a connection after database.POOL_TIMEOUT_S.
Figures vary by machine and load; compare within one run.

    $ .venv/bin/python benchmarks/database_outage.py --down 5,30,60
    granian; pool timeout 3 s
    down s   app       asked  answers           slowest s  recovered s
    5        flask         5  503 x5                 3.00         0.58
    5        fastapi       5  503 x5                 3.00         1.04
    30       flask         6  503 x6                 3.02         0.03
    30       fastapi       6  503 x6                 3.12         0.14
    60       flask        14  503 x14                3.01         0.04
    60       fastapi      14  503 x14                3.10         0.68
"""

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import database
from compare.failures import run_benchmark
from compare.flag_values import Parser, checked_float
from serve.config import Config
from serve.launch import launch
from serve.postgres import Postgres
from serve.settings import ROOT


def down_lengths(text: str) -> list[float]:
    """Outages in turn, each more than 0 and at most 600 s; one may come again (5,5)."""
    says = "an outage of more than 0 and at most 600 s"
    return [checked_float(part, lambda s: 0 < s <= 600, says) for part in text.split(",")]


def during(client: httpx2.Client, urls: dict[str, str], down_s: float) -> dict[str, list]:
    """(status, seconds) of every /db asked of each app, in turn, for down_s."""
    answers: dict[str, list] = {app: [] for app in urls}
    ends_at = time.monotonic() + down_s
    while time.monotonic() < ends_at:
        for app, url in urls.items():
            asked_at = time.monotonic()
            status = client.get(url + "/db").status_code
            answers[app].append((status, time.monotonic() - asked_at))
    return answers


def recovered_after_s(client: httpx2.Client, urls: dict[str, str], since: float) -> dict:
    """Seconds from `since` until each app answers /db with 200, asked in turn every 50 ms."""
    found: dict[str, float] = {}
    while len(found) < len(urls) and time.monotonic() - since < 120:
        for app, url in urls.items():
            if app not in found and client.get(url + "/db").status_code == 200:
                found[app] = time.monotonic() - since
        time.sleep(0.05)
    return {app: found.get(app, float("inf")) for app in urls}


def flags() -> Parser:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["granian", "unit"], default="granian")
    parser.add_argument(
        "--down",
        type=down_lengths,
        default="5,30,60",
        metavar="S[,S...]",
        help="outages in turn, each of more than 0 and at most 600 s (5,30,60)",
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return flags().parse_args(argv)


def main() -> int:
    args = parse()
    # Made for this server's apps (APP_USER's group may use its socket).
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE")}
    cluster = Postgres(Config.from_env({**environ, "SERVER": args.server, "DATABASE": "postgres"}))
    templ = "{:<8} {:<8} {:>6}  {:<16} {:>10} {:>12}"
    try:
        url = cluster.start()["DATABASE_URL"]
        log = ROOT / "results" / "database-outage-up.log"
        with (
            launch(log, {"SERVER": args.server, "DATABASE_URL": url}) as served,
            httpx2.Client(timeout=60) as client,
        ):
            print(f"{args.server}; pool timeout {database.POOL_TIMEOUT_S:g} s")
            print(templ.format("down s", "app", "asked", "answers", "slowest s", "recovered s"))
            for down_s in args.down:
                cluster.stop()
                answers = during(client, served.urls, down_s)
                cluster.run()
                recovered = recovered_after_s(client, served.urls, time.monotonic())
                for app, found in answers.items():
                    counts = collections.Counter(status for status, _ in found)
                    said = ", ".join(f"{status} x{count}" for status, count in counts.items())
                    print(
                        templ.format(
                            f"{down_s:g}",
                            app,
                            len(found),
                            said,
                            f"{max(seconds for _, seconds in found):.2f}",
                            f"{recovered[app]:.2f}",
                        )
                    )
    finally:
        cluster.stop()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
