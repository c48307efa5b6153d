"""What rate openloop.py can hold on one core, and what it costs per request.

    .venv/bin/python benchmarks/openloop_capacity.py [--rates 1000,2000,4000,8000] [--duration 3]

Starts a tiny raw-asyncio HTTP/1.1 server (a fixed 2-byte answer, far faster
than the apps) on a free loopback port, then runs openloop.py against it at
each rate in turn, and prints per rate: the rate reached, the send lag, the
latency, and the generator's own CPU (share of one core, microseconds per
request). Where there are 2 cores or more the server and the generator get
one core each. It stops after the first rate the generator misses by more
than 2%. Figures vary by machine and with whatever else runs; compare within
one run.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

OPENLOOP = Path(__file__).resolve().parent.parent / "compare" / "openloop.py"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Answer(asyncio.Protocol):
    """Answers every request head it reads at once: one GET without a body each."""

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(ANSWER * count)


def serve(ports) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def run_openloop(url: str, rate: int, duration_s: float, cpus: set[int] | None) -> dict:
    process = subprocess.Popen(
        [sys.executable, str(OPENLOOP), url, f"--rate={rate}", f"--duration={duration_s}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    if cpus:
        os.sched_setaffinity(process.pid, cpus)
    stdout, _ = process.communicate(timeout=duration_s + 30)
    if process.returncode != 0:
        sys.exit(f"openloop.py exited {process.returncode}")
    return json.loads(stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,4000,8000", help="comma-separated req/s")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per rate")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]

    cores = sorted(os.sched_getaffinity(0))
    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    try:
        if len(cores) >= 2:
            os.sched_setaffinity(server.pid, {cores[-1]})
        url = f"http://127.0.0.1:{ports.get(timeout=10)}/"
        generator_cpus = {cores[0]} if len(cores) >= 2 else None
        print(f"server pid {server.pid}, cores: server {cores[-1]}, generator {cores[0]}")
        templ = "{:>8} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8}"
        print(
            templ.format(
                "asked", "sent", "achieved", "lag p50", "lag p99", "lag max",
                "lat p50", "lat p99", "cpu %", "cpu µs",
            )
        )  # fmt: skip
        for rate in rates:
            result = run_openloop(url, rate, args.duration, generator_cpus)
            cpu_share = result["generator_cpu_s"] / result["duration_s"]
            print(
                templ.format(
                    rate,
                    result["rate_sent"],
                    result["rate_achieved"],
                    result["send_lag_p50_ms"],
                    result["send_lag_p99_ms"],
                    result["send_lag_max_ms"],
                    result["latency_p50_ms"],
                    result["latency_p99_ms"],
                    f"{cpu_share * 100:.0f}",
                    f"{result['generator_cpu_s'] / result['scheduled'] * 1e6:.0f}",
                )
            )
            if result["rate_achieved"] < 0.98 * rate:
                print(f"missed {rate} req/s by more than 2%: stopping here")
                break
        print("lag and latency in ms; cpu % of one core; cpu µs per request")
    finally:
        server.terminate()
        server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
