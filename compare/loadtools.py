"""The load generators the comparison drives: wrk, ab and hey, and openloop at fixed rates.

For each: the command line for a fixed-duration run at N connections, its
version, and a parser of its output into one LoadResult. wrk, ab and hey load
as fast as the apps answer (closed loop: each connection waits for its answer).
At a fixed rate closed-loop tools understate latency (a stalled server delays
the requests they would have sent, and those never count), and no open-loop tool
with percentiles is packaged where this project installs from, so fixed-rate
runs use openloop.py, a small open-loop generator of our own that times every
request from when it was due.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, computed_field

TOOLS = ("wrk", "ab", "hey")
INSTALL = {"wrk": "wrk", "ab": "apache2-utils", "hey": "hey"}
TIMEOUT_S = 10  # a request slower than this counts as an error
OPEN_LOOP = "openloop"
OPEN_LOOP_SCRIPT = Path(__file__).resolve().parent / "openloop.py"
# The most --rate compare lets openloop send from its one core (compare refuses more).
# benchmarks/openloop_capacity.py measures it with Poisson arrivals: on the project's
# 2-core machine, quiet, it held this rate with 74% of its core (75 µs per request) and
# a p99 send lag of 0.6 ms; its docstring has the session.
OPEN_LOOP_MAX_RATE = 10_000
# openloop sent later than its schedule by this much (p99) with connections to spare:
# the generator itself, not the app, lagged.
LATE_SEND_MS = 5.0


class LoadToolError(RuntimeError):
    """The load tool is missing, failed, or printed nothing that can be read."""


class LoadResult(BaseModel):
    requests: int  # responses received, whatever their status
    duration_s: float
    errors: int  # connect, read and write errors and timeouts: no response at all
    non_2xx: int  # responses with a status outside 2xx (wrk: outside 2xx and 3xx)
    # Closed-loop tools time answered requests only. openloop times every request from
    # its due time, and counts each request without an answer (errors) as its timeout.
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    # openloop only (None from the others): the extremes and p99.9 of the same latencies,
    # how late its sends left (p99), and how many requests waited for a free connection
    latency_min_ms: float | None = None
    latency_p999_ms: float | None = None
    latency_max_ms: float | None = None
    send_lag_p99_ms: float | None = None
    waited_for_connection: int | None = None
    errors_by_kind: dict[str, int] | None = None  # "timeout", "unfinished at the end", ...
    # openloop only: how its due times were drawn (poisson or uniform; the seed repeats a
    # poisson schedule), their rate, the rate it wrote them at, and its own CPU seconds
    arrivals: str | None = None
    seed: int | None = None
    rate_scheduled: float | None = None
    rate_sent: float | None = None
    generator_cpu_s: float | None = None
    # openloop only: it wrote its requests at under 98% of the schedule's rate, so the
    # asked rate was not sent: its own CPU, or all connections held by a slow server
    # (waited_for_connection). Its figures stand, for what was sent.
    generator_missed: bool | None = None

    @property
    def generator_late(self) -> bool:
        """Whether the generator itself fell behind its schedule (openloop only)."""
        return (
            self.send_lag_p99_ms is not None
            and self.send_lag_p99_ms > LATE_SEND_MS
            and not self.waited_for_connection
        )

    @computed_field
    @property
    def requests_per_s(self) -> float:
        """Responses per second, the same way for every tool (hey's own counts failures)."""
        return self.requests / self.duration_s if self.duration_s else 0.0


def percentiles(latency_ms: dict[str, float]) -> dict[str, float | None]:
    """LoadResult's latency fields from {"50": ms, "90": ms, "99": ms}, None where missing."""
    return {f"latency_p{p}_ms": latency_ms.get(p) for p in ("50", "90", "99")}


def require(tool: str) -> str:
    """The tool's path, or a LoadToolError that says how to install it."""
    if tool == OPEN_LOOP:
        return sys.executable
    path = shutil.which(tool)
    if path is None:
        raise LoadToolError(
            f"{tool} is not installed: apt-get install {INSTALL[tool]}"
            f" (or choose another with --tool {'|'.join(TOOLS)})"
        )
    return path


def command(
    tool: str,
    url: str,
    connections: int,
    duration_s: float,
    threads: int,
    rate: float | None = None,
    arrivals: str = "poisson",
    seed: int | None = None,
) -> list[str]:
    """The command line of a run of duration_s seconds at `connections` concurrent connections
    (with openloop: at `rate` requests per second, on at most `connections`, arriving at
    random (poisson, from `seed`: None lets openloop draw one and print it) or evenly)."""
    if tool == OPEN_LOOP:
        return [
            sys.executable,
            str(OPEN_LOOP_SCRIPT),
            url,
            f"--rate={rate:g}",
            f"--duration={duration_s:g}",
            f"--connections={connections}",
            f"--timeout={TIMEOUT_S}",
            f"--arrivals={arrivals}",
            *([] if seed is None else [f"--seed={seed}"]),
        ]
    if tool == "wrk":
        return [
            "wrk",
            f"--threads={min(threads, connections)}",
            f"--connections={connections}",
            f"--duration={duration_s:g}s",
            f"--timeout={TIMEOUT_S}s",
            "--latency",
            url,
        ]
    if tool == "ab":
        # -t stops after the time; -n only lifts ab's default cap of 50000 requests.
        # -r counts socket errors instead of aborting on the first one.
        return [
            "ab",
            "-k",
            "-r",
            "-q",
            f"-s{TIMEOUT_S}",
            f"-c{connections}",
            f"-t{duration_s:g}",
            "-n100000000",
            url,
        ]
    if tool == "hey":
        return ["hey", f"-z={duration_s:g}s", f"-c={connections}", f"-t={TIMEOUT_S}", url]
    raise ValueError(f"unknown load tool {tool!r}")


def version(tool: str) -> str:
    """The tool's own word on its version, or the Debian package's."""
    if tool == OPEN_LOOP:
        return f"openloop (compare/openloop.py, open loop, Python {sys.version.split()[0]})"
    flag = {"wrk": ["-v"], "ab": ["-V"]}.get(tool)
    if flag:
        result = subprocess.run([tool, *flag], capture_output=True, text=True, timeout=10)
        first = (result.stdout or result.stderr).strip().splitlines()
        if first:
            return first[0].split("Copyright")[0].strip()
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", INSTALL[tool]],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return f"{tool} {result.stdout.strip()}" if result.returncode == 0 else f"{tool} (unknown)"


def parse_output(tool: str, output: str) -> LoadResult:
    """The figures of one run from the tool's output; LoadToolError where there are none."""
    parsers = {"wrk": parse_wrk, "ab": parse_ab, "hey": parse_hey, OPEN_LOOP: parse_openloop}
    try:
        return parsers[tool](output)
    except (AttributeError, ValueError) as error:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise LoadToolError(f"{tool} printed no result ({error}):\n{tail}") from None


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is not None:
            return default
        raise ValueError(f"no {pattern!r}")
    return float(match.group(1))


_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> LoadResult:
    match = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", output, re.MULTILINE)
    if match is None:
        raise ValueError("no 'N requests in T' line")
    requests = int(match.group(1))
    duration_s = float(match.group(2)) * _TO_MS[match.group(3)] / 1000
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = {}
    section = output.partition("Latency Distribution")[2]
    for percent, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)", section, re.M):
        latency[percent] = float(value) * _TO_MS[unit]
    return LoadResult(
        requests=requests,
        duration_s=duration_s,
        errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx=int(_number(r"Non-2xx or 3xx responses: (\d+)", output, 0)),
        **percentiles(latency),
    )


def parse_ab(output: str) -> LoadResult:
    requests = int(_number(r"^Complete requests:\s+(\d+)", output))
    duration_s = _number(r"^Time taken for tests:\s+([\d.]+) seconds", output)
    # ab counts a body whose length differs from the first one as "failed";
    # our answers vary in length (pids, figures), so only real failures count.
    failed = re.search(
        r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", output
    )
    latency = {
        percent: float(ms)
        for percent, ms in re.findall(r"^\s+(50|90|99)%\s+(\d+)\s*$", output, re.MULTILINE)
    }
    return LoadResult(
        requests=requests,
        duration_s=duration_s,
        errors=sum(int(n) for n in failed.groups()) if failed else 0,
        non_2xx=int(_number(r"^Non-2xx responses:\s+(\d+)", output, 0)),
        **percentiles(latency),
    )


def parse_hey(output: str) -> LoadResult:
    duration_s = _number(r"^\s+Total:\s+([\d.]+) secs", output)
    statuses = output.partition("Status code distribution:")[2].partition("Error distribution:")
    codes = [
        (int(code), int(n)) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", statuses[0])
    ]
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", statuses[2], re.MULTILINE))
    latency = {
        percent: float(seconds) * 1000
        for percent, seconds in re.findall(r"^\s+(50|90|99)% in ([\d.]+) secs", output, re.M)
    }
    return LoadResult(
        requests=sum(n for _, n in codes),
        duration_s=duration_s,
        errors=errors,
        non_2xx=sum(n for code, n in codes if not 200 <= code < 300),
        **percentiles(latency),
    )


def parse_openloop(output: str) -> LoadResult:
    """openloop prints one JSON object, whatever else went to stderr."""
    line = next((ln for ln in output.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise ValueError("no JSON result")
    return LoadResult.model_validate(json.loads(line))
