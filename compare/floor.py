"""openloop's own floor: its latency against the trivial server, at a rate, on given cores.

    python -m compare.floor --rate 300,1000 [--duration 5] [--arrivals poisson] [--seed N]
        [--server-cores 0] [--tool-cores 1]

An app's latency at a rate, as openloop times it, holds the generator's own share:
its timer wake-ups, its event loop, the loopback and the kernel's scheduling. This
measures that share alone. The trivial server (compare/trivial_server.py: an asyncio
Protocol answering a fixed keep-alive 200) runs as a process of its own on the
cores the apps would use, openloop on the load tool's cores, at the same rate and
arrivals as the apps' runs; what openloop then reports is its floor, to set beside
the apps' latencies at that rate. Prints one row per rate (latencies in ms):

    $ python -m compare.floor --rate 300,1000 --duration 3 --server-cores 0 --tool-cores 1
        rate  arrivals        seed   sent/s    p50    p90    p99  p99.9    max  missed
         300   poisson  1825386650    303.3  0.195  0.286  0.416  0.682  0.684      no
        1000   poisson  3271417002   1011.0  0.151  0.235  0.353  0.615  0.928      no

Exit codes: 0 measured; 2 bad flags; 4 the trivial server or openloop failed.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from compare import loadtools
from compare.openloop import seed_number
from compare.schedule import ARRIVALS

TRIVIAL_SERVER = Path(__file__).resolve().parent / "trivial_server.py"
SERVER_START_S = 10.0  # the most the trivial server may take to print its port
FAILED = 4


def taskset(cores: list[int] | None) -> list[str]:
    """The command prefix that runs a command on `cores` (none: wherever it may)."""
    return ["taskset", "-c", ",".join(map(str, cores))] if cores else []


@contextlib.contextmanager
def trivial_server(cores: list[int] | None = None) -> Iterator[str]:
    """The trivial server running on `cores`: its URL, until the block ends."""
    process = subprocess.Popen(
        [*taskset(cores), sys.executable, str(TRIVIAL_SERVER)], stdout=subprocess.PIPE, text=True
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], SERVER_START_S)
        line = process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            raise loadtools.LoadToolError(
                f"the trivial server printed no port within {SERVER_START_S:g} s"
                f" (exit code {process.poll()})"
            )
        yield f"http://127.0.0.1:{int(line)}/"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_floor(
    rate: float,
    duration_s: float,
    *,
    arrivals: str = "poisson",
    seed: int | None = None,
    connections: int = 64,
    server_cores: list[int] | None = None,
    tool_cores: list[int] | None = None,
) -> loadtools.LoadResult:
    """openloop's floor at `rate`: one run of `duration_s` against the trivial server.

    The server runs on `server_cores` (those of the apps), openloop on `tool_cores`,
    each where it may when None; arrivals and seed as openloop takes them. The
    result's latency percentiles (latency_p50_ms ... latency_p999_ms) are the floor;
    generator_missed says whether openloop sent the rate at all. LoadToolError where
    the server or openloop fails.
    """
    with trivial_server(server_cores) as url:
        argv = [
            *taskset(tool_cores),
            *loadtools.command(
                loadtools.OPEN_LOOP, url, connections, duration_s, 1, rate, arrivals, seed
            ),
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=duration_s + loadtools.TIMEOUT_S + 60
            )
        except subprocess.TimeoutExpired:
            raise loadtools.LoadToolError(f"{' '.join(argv)} did not finish in time") from None
    if done.returncode != 0:
        raise loadtools.LoadToolError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return loadtools.parse_output(loadtools.OPEN_LOOP, done.stdout)


def rates(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not all(0 < value <= loadtools.OPEN_LOOP_MAX_RATE for value in values):
        raise argparse.ArgumentTypeError(
            f"each rate must be more than 0 and at most {loadtools.OPEN_LOOP_MAX_RATE:g}: {text!r}"
        )
    return values


def cores(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of core numbers: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compare.floor", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--rate", type=rates, required=True, help="requests per second, one or several: 300,1000")
    add("--duration", type=float, default=5.0, help="seconds per rate (%(default)s)")
    add("--arrivals", choices=ARRIVALS, default="poisson", help="(%(default)s)")
    add("--seed", type=seed_number, help="of the Poisson arrivals (default: a random one per rate)")
    add("--server-cores", type=cores, help="the trivial server's cores: the apps' (default: any)")
    add("--tool-cores", type=cores, help="openloop's cores: the load tool's (default: any)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600:
        parser.error("argument --duration: must be more than 0 and at most 600 seconds")
    if min(args.rate) * args.duration < 1:
        parser.error("argument --rate: each rate x --duration must give at least 1 request")
    if args.seed is not None and args.arrivals != "poisson":
        parser.error("argument --seed: only --arrivals=poisson draws its arrivals")
    templ = "{:>8} {:>9} {:>11} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7}"
    print(
        templ.format(
            "rate", "arrivals", "seed", "sent/s", "p50", "p90", "p99", "p99.9", "max", "missed"
        )
    )
    for rate in args.rate:
        try:
            floor = measure_floor(
                rate,
                args.duration,
                arrivals=args.arrivals,
                seed=args.seed,
                server_cores=args.server_cores,
                tool_cores=args.tool_cores,
            )
        except loadtools.LoadToolError as error:
            print(f"python -m compare.floor: {error}", file=sys.stderr)
            return FAILED
        print(
            templ.format(
                f"{rate:g}",
                floor.arrivals,
                "-" if floor.seed is None else floor.seed,
                f"{floor.rate_sent:.1f}",
                *(
                    "-" if value is None else f"{value:.3f}"
                    for value in (
                        floor.latency_p50_ms,
                        floor.latency_p90_ms,
                        floor.latency_p99_ms,
                        floor.latency_p999_ms,
                        floor.latency_max_ms,
                    )
                ),
                "yes" if floor.generator_missed else "no",
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
