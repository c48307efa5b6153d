"""How long an app stays busy with requests whose clients have gone.

    .venv/bin/python benchmarks/abandoned_requests.py [--server granian|unit] [--threads 4]
                                                       [--ms 2000] [--attack 40:1 --attack 200:30]

Starts both apps with ./up.sh on free loopback ports. For each attack N:S and each
app, sends N requests GET /io?ms=--ms at once, each on its own connection, and closes
every connection S seconds later, as clients that give up would. Then sends one GET /
on a new connection and prints how long after the hang-up it was answered, with the
bound the limits give: the queue's N x ms over the app's threads, less the S seconds
already spent. Neither server drops a request whose client has gone, so the figure
for Flask is about that bound; FastAPI waits without holding a thread, and answers at
once. Under Unit, VENV and UNITD as for ./up.sh; run by root, the apps run as nobody,
who must be able to run VENV (or APP_USER=root). Figures vary by machine; compare within
one run. A run on a busy 2-core machine, under either server (Unit's figures were the same):

    $ VENV=/opt/venv .venv/bin/python benchmarks/abandoned_requests.py
    granian, 1 process of 4 thread(s) per app, /io?ms=2000
    app      requests hang-up s  answered after s  bound s
    flask          40         1              19.0     19.0
    fastapi        40         1               0.0      0.0
    flask         200        30              70.0     70.0
    fastapi       200        30               0.0      0.0

With --ms 10000, the old maximum, Flask answered these after 99.0 and 470.1 s.
"""

import argparse
import http.client
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# hostile.py: the clients that the tests use too
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import abandon

import workloads
from compare.failures import run_benchmark
from compare.flag_values import Parser, checked_float, positive_int, setting_value
from serve.conf import load_conf
from serve.launch import launch
from serve.settings import ROOT, THREADS

GIVE_UP_AFTER_S = 900  # the probe's own patience
TEMPL = "{:<8} {:>8} {:>9} {:>17} {:>8}"


def attack(text: str) -> tuple[int, float]:
    """N:S, the requests (1 or more) and the seconds (0: at once) after which their clients
    hang up."""
    requests, colon, seconds = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"{text!r} is not N:S (requests:seconds)")
    says = "seconds of 0 or more"
    return positive_int(requests), checked_float(seconds, lambda s: 0 <= s < math.inf, says)


def answered_after_s(port: int, requests: int, ms: int, give_up_s: float) -> float:
    """Seconds from the hang-up of `requests` abandoned /io?ms=`ms` to the answer of GET /."""
    abandon(port, f"/io?ms={ms}", requests, give_up_s)
    hung_up = time.monotonic()
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=GIVE_UP_AFTER_S)
    try:
        probe.request("GET", "/")
        status = probe.getresponse().status
    except OSError:
        return math.inf
    finally:
        probe.close()
    return time.monotonic() - hung_up if status == 200 else math.inf


def flags() -> Parser:
    threads_default = next(iter(load_conf(ROOT / "conf.json")["applications"].values()))
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["granian", "unit"], default="granian")
    parser.add_argument(
        "--threads",
        type=setting_value(THREADS),
        default=threads_default.get("threads", 1),
        help=f"threads per process, as {THREADS.name} ({THREADS.range}; conf.json's)",
    )
    parser.add_argument(
        "--ms",
        type=positive_int,
        default=workloads.IO_MAX_MS,
        help=f"each request's /io?ms= (1-{workloads.IO_MAX_MS}; {workloads.IO_MAX_MS})",
    )
    parser.add_argument(
        "--attack",
        type=attack,
        action="append",
        metavar="N:S",
        help="N requests whose clients hang up S s later (0: at once); again for more"
        " (40:1 and 200:30)",
    )
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags()
    args = parser.parse_args(argv)
    if args.ms > workloads.IO_MAX_MS:
        parser.error(f"--ms must be at most {workloads.IO_MAX_MS}, the longest that /io waits")
    return args


def main() -> int:
    args = parse()
    attacks = args.attack or [(40, 1.0), (200, 30.0)]
    served = launch(
        ROOT / "results" / "abandoned-up.log", {"SERVER": args.server, "THREADS": str(args.threads)}
    )
    print(f"{args.server}, 1 process of {args.threads} thread(s) per app, /io?ms={args.ms}")
    print(TEMPL.format("app", "requests", "hang-up s", "answered after s", "bound s"))
    try:
        for requests, give_up_s in attacks:
            for app, port in served.ports.items():
                after_s = answered_after_s(port, requests, args.ms, give_up_s)
                queue_s = math.ceil(requests / args.threads) * args.ms / 1000
                bound_s = max(0.0, queue_s - give_up_s) if app == "flask" else 0.0
                said = f"{after_s:.1f}" if after_s < math.inf else f"> {GIVE_UP_AFTER_S}"
                print(TEMPL.format(app, requests, f"{give_up_s:g}", said, f"{bound_s:.1f}"))
    finally:
        served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
