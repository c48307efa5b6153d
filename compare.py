"""Loads the Flask and the FastAPI app identically and reports their CPU and RAM cost side by side.

    ./compare.sh --launch                               # start both apps here, full report
    ./compare.sh --scenarios json,cpu --connections 8,64 --duration 20 --repeats 5
    ./compare.sh --flask http://127.0.0.1:8080 --fastapi http://127.0.0.1:8081

For every scenario and connection level it runs the load tool (wrk, ab or hey)
against Flask, then FastAPI, then Flask again..., reads each app's /status just
before and after every run and polls it during the run. It prints a table of
medians with their min-max, and writes report.json, report.md and PNG charts
to --out (default results/<timestamp>/).

Exit codes: 0 done; 2 bad flags; 3 a target is unreachable, not one of these
apps, or both URLs are the same app; 4 the load tool is missing or failed;
5 errors or non-2xx answers over --max-error-rate (the report is still written).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import psutil
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

import launch
import loadtools
import metrics
import report
import workloads

ROOT = Path(__file__).resolve().parent
APPS = ("flask", "fastapi")
SCENARIOS = ("hello", "json", "io", "cpu")
EXIT_TARGET, EXIT_LOAD_TOOL, EXIT_ERRORS = 3, 4, 5


class TargetError(RuntimeError):
    """A target is unreachable, not one of these apps, or the same app as the other."""


class Poll(BaseModel):
    """One reading of /status during a run."""

    t_s: float  # seconds since the comparison started
    cpu_time_s: float
    cpu_percent: float | None  # from cpu_time_s since the previous poll: exact over that gap
    rss_mb: float
    uss_mb: float | None
    system_cpu_percent: float
    system_memory_used_mb: float


class Run(BaseModel):
    """One counted run of the load tool against one app, with what the app spent."""

    scenario: str
    connections: int
    app: str
    repeat: int
    command: list[str]
    load: loadtools.LoadResult
    cpu_s: float  # process.cpu_time_s after minus before
    cpu_s_per_1k: float | None
    cpu_percent_avg: float  # cpu_s over the time between the two readings: exact
    cpu_percent_peak: float | None  # highest over one poll gap
    rss_mb_before: float
    rss_mb_after: float
    rss_growth_mb: float
    rss_mb_avg: float
    rss_mb_peak: float
    uss_mb_avg: float | None
    uss_mb_peak: float | None
    system_cpu_percent_avg: float
    system_memory_used_mb_avg: float
    workers: int
    workers_changed: bool  # a worker was replaced: cpu_s is then not exact
    load_tool_cpu_s: float
    runner_cpu_s: float
    polls: list[Poll]
    poll_failures: int  # polls unanswered within 5 s: they wait in the app's queue like any request
    stats_summary: dict[str, Any] | None  # the app's own /stats view of the window


# --- command line --------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value


def int_list(text: str) -> list[int]:
    values = [positive_int(part) for part in text.split(",")]
    if len(values) != len(set(values)):
        raise ValueError
    return values


def scenario_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names or len(names) != len(set(names)):
        raise ValueError
    return names


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--flask", default="http://127.0.0.1:8080", help="URL of the Flask app")
    add("--fastapi", default="http://127.0.0.1:8081", help="URL of the FastAPI app")
    add(
        "--launch",
        action="store_true",
        help="start both apps here with ./up.sh (Unit where unitd is on PATH, else granian)",
    )
    add("--workers", type=positive_int, default=1, help="with --launch: workers per app")
    add("--tool", choices=loadtools.TOOLS, default="wrk", help="load generator")
    add(
        "--scenarios",
        type=scenario_list,
        default=list(SCENARIOS),
        help=f"comma-separated, of {','.join(SCENARIOS)}",
    )
    add("--connections", type=int_list, default=[32], help="comma-separated levels")
    add("--duration", type=positive_int, default=10, help="seconds of each counted run")
    add("--warmup", type=int, default=2, help="seconds of load per app before counting (0: none)")
    add("--repeats", type=positive_int, default=3, help="counted runs per app and level")
    add("--poll", type=float, default=1.0, help="seconds between /status polls during a run")
    add("--io-ms", type=int, default=10, help="the io scenario's wait, as /io?ms=")
    add("--cpu-n", type=int, default=10_000, help="the cpu scenario's size, as /cpu?n=")
    add(
        "--max-error-rate",
        type=fraction,
        default=0.01,
        help="share of errors and non-2xx answers above which the exit code is 5",
    )
    add("--pin", action="store_true", help="give the load tool CPU cores of its own (taskset)")
    add("--out", type=Path, help="report directory (default: results/<timestamp>)")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more seconds")
    if not 0.2 <= args.poll <= 60:
        parser.error("--poll must be between 0.2 and 60 seconds")
    try:
        workloads.IoQuery(ms=args.io_ms)
        workloads.CpuQuery(n=args.cpu_n)
    except ValidationError as error:
        first = error.errors()[0]
        parser.error(f"--{'io-ms' if first['loc'][0] == 'ms' else 'cpu-n'}: {first['msg']}")
    if args.launch and args.workers > 64:
        parser.error("--workers must be 1-64")
    if not args.launch and args.flask.rstrip("/") == args.fastapi.rstrip("/"):
        parser.error("--flask and --fastapi are the same URL: both would be one app")
    args.out = args.out or ROOT / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")
    return args


def scenario_path(name: str, args: argparse.Namespace) -> str:
    return {
        "hello": "/",
        "json": "/json",
        "io": f"/io?ms={args.io_ms}",
        "cpu": f"/cpu?n={args.cpu_n}",
    }[name]


# --- targets -------------------------------------------------------------------------


def identify(client: httpx2.Client, app: str, url: str) -> dict[str, Any]:
    """The greeting of the app at url, with its server, after checking it is one of these apps."""
    try:
        hello = client.get(url + "/")
        status = client.get(url + "/status")
    except httpx2.HTTPError as error:
        raise TargetError(f"the {app} target {url} is unreachable: {error}") from None
    try:
        greeting = workloads.Greeting.model_validate(hello.json())
        metrics.Snapshot.model_validate(status.json())
    except (ValueError, ValidationError):
        raise TargetError(
            f"{url} is not an app of flask-vs-fastapi (GET / answered {hello.status_code}:"
            f" {hello.text[:120]!r})"
        ) from None
    return {**greeting.model_dump(), "server": hello.headers.get("server", "unknown")}


def check_targets(client: httpx2.Client, urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Both greetings, once each URL is known to serve the app it is given for."""
    greetings = {app: identify(client, app, url) for app, url in urls.items()}
    frameworks = {app: greeting["framework"] for app, greeting in greetings.items()}
    if frameworks["flask"] == frameworks["fastapi"]:
        raise TargetError(
            f"both URLs point at the same app: {urls['flask']} and {urls['fastapi']}"
            f" both serve {frameworks['flask']}"
        )
    if frameworks["flask"] != "flask":
        raise TargetError(
            f"{urls['flask']} is the {frameworks['flask']} app and {urls['fastapi']} the"
            f" {frameworks['fastapi']} app: swap --flask and --fastapi"
        )
    return greetings


def status(client: httpx2.Client, url: str) -> metrics.Snapshot:
    try:
        return metrics.Snapshot.model_validate(client.get(url + "/status").json())
    except (httpx2.HTTPError, ValueError, ValidationError) as error:
        raise TargetError(f"{url}/status failed during the comparison: {error}") from None


# --- launching the apps --------------------------------------------------------------


@contextlib.contextmanager
def launched(args: argparse.Namespace, app_cpus: list[int] | None, log: Path):
    """Both apps under ./up.sh on free loopback ports; every process stopped afterwards."""
    prefix = ["taskset", "-c", ",".join(map(str, app_cpus))] if app_cpus else []
    try:
        apps = launch.launch(log, {"WORKERS": str(args.workers)}, prefix)
    except launch.LaunchError as error:
        raise TargetError(str(error)) from None
    try:
        yield apps.urls, apps.argv
    finally:
        apps.stop()


# --- one run -------------------------------------------------------------------------


class Poller(threading.Thread):
    """Reads /status every `interval_s` until stopped; the runner's only work during a run."""

    def __init__(
        self, url: str, interval_s: float, origin: float, before: metrics.Snapshot, on_poll=None
    ):
        super().__init__(daemon=True)
        self.url, self.interval_s, self.origin, self.on_poll = url, interval_s, origin, on_poll
        self.before = before
        self.polls: list[Poll] = []
        self.failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=5) as client:
            deadline = time.monotonic()
            previous = (self.before.timestamp, self.before.process.cpu_time_s)
            while not self._done.wait(max(0.0, deadline - time.monotonic())):
                deadline += self.interval_s
                try:
                    snapshot = status(client, self.url)
                except TargetError:
                    self.failures += 1
                    continue
                # The gap is timed by the app's own clock when it took each reading:
                # under load a /status answer may wait in the queue for a while.
                taken, cpu_time_s = snapshot.timestamp, snapshot.process.cpu_time_s
                cpu_percent = None
                if taken > previous[0]:
                    cpu_percent = round(100 * (cpu_time_s - previous[1]) / (taken - previous[0]), 2)
                previous = (taken, cpu_time_s)
                self.polls.append(
                    Poll(
                        t_s=round(time.monotonic() - self.origin, 3),
                        cpu_time_s=snapshot.process.cpu_time_s,
                        cpu_percent=cpu_percent,
                        rss_mb=snapshot.process.rss_mb,
                        uss_mb=snapshot.process.uss_mb,
                        system_cpu_percent=snapshot.system.cpu_percent,
                        system_memory_used_mb=snapshot.system.memory_used_mb,
                    )
                )
                if self.on_poll:
                    self.on_poll()

    def stop(self) -> list[Poll]:
        self._done.set()
        self.join(10)
        return self.polls


def cpu_s_per_1k(cpu_s: float, requests: int) -> float | None:
    """CPU-seconds the app spent per 1,000 responses; None without responses."""
    return round(cpu_s / requests * 1000, 4) if requests else None


def load_argv(
    args: argparse.Namespace,
    url: str,
    scenario: str,
    connections: int,
    duration_s: int,
    tool_cpus: list[int] | None,
) -> list[str]:
    """The load tool's command line, pinned to tool_cpus where given, one thread per core."""
    cores = tool_cpus or sorted(os.sched_getaffinity(0))
    argv = loadtools.command(
        args.tool, url + scenario_path(scenario, args), connections, duration_s, len(cores)
    )
    return ["taskset", "-c", ",".join(map(str, tool_cpus)), *argv] if tool_cpus else argv


def run_load(argv: list[str], tool: str, duration_s: int) -> tuple[loadtools.LoadResult, float]:
    """The tool's parsed result and the CPU seconds the tool itself used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        raise loadtools.LoadToolError(f"{' '.join(argv)} did not finish in time") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        parsed = loadtools.parse(tool, result.stdout + result.stderr)
    except loadtools.LoadToolError as error:
        raise loadtools.LoadToolError(
            f"{' '.join(argv)} exited {result.returncode}: {error}"
        ) from None
    return parsed, tool_cpu_s


def measure(
    client: httpx2.Client,
    args: argparse.Namespace,
    app: str,
    url: str,
    scenario: str,
    connections: int,
    repeat: int,
    tool_cpus: list[int] | None,
    origin: float,
    on_poll=None,
) -> Run:
    """One counted run: /status before, the load with polls, /status and /stats after."""
    argv = load_argv(args, url, scenario, connections, args.duration, tool_cpus)
    runner_before = time.process_time()
    before = status(client, url)
    poller = Poller(url, args.poll, origin, before, on_poll)
    poller.start()
    try:
        load, tool_cpu_s = run_load(argv, args.tool, args.duration)
    finally:
        polls = poller.stop()
    poll_failures = poller.failures
    after = status(client, url)
    # The app's own view: its sampler's samples taken during this run, summarised.
    stats = client.get(url + "/stats").json()
    in_run = [s for s in stats["samples"] if s["timestamp"] >= before.timestamp]
    cpu_s = round(after.process.cpu_time_s - before.process.cpu_time_s, 3)
    rss = [before.process.rss_mb] + [p.rss_mb for p in polls] + [after.process.rss_mb]
    uss = [s.uss_mb for s in (before.process, *polls, after.process) if s.uss_mb is not None]
    peaks = [p.cpu_percent for p in polls if p.cpu_percent is not None]
    return Run(
        scenario=scenario,
        connections=connections,
        app=app,
        repeat=repeat,
        command=argv,
        load=load,
        cpu_s=cpu_s,
        cpu_s_per_1k=cpu_s_per_1k(cpu_s, load.requests),
        cpu_percent_avg=round(100 * cpu_s / (after.timestamp - before.timestamp), 2),
        cpu_percent_peak=max(peaks) if peaks else None,
        rss_mb_before=before.process.rss_mb,
        rss_mb_after=after.process.rss_mb,
        rss_growth_mb=round(after.process.rss_mb - before.process.rss_mb, 2),
        rss_mb_avg=round(statistics.fmean(rss), 2),
        rss_mb_peak=max(rss),
        uss_mb_avg=round(statistics.fmean(uss), 2) if uss else None,
        uss_mb_peak=max(uss) if uss else None,
        system_cpu_percent_avg=round(
            statistics.fmean([p.system_cpu_percent for p in polls] or [after.system.cpu_percent]), 2
        ),
        system_memory_used_mb_avg=round(
            statistics.fmean(
                [p.system_memory_used_mb for p in polls] or [after.system.memory_used_mb]
            ),
            2,
        ),
        workers=after.process.workers,
        workers_changed=before.process.pids != after.process.pids,
        load_tool_cpu_s=round(tool_cpu_s, 3),
        runner_cpu_s=round(time.process_time() - runner_before, 3),
        polls=polls,
        poll_failures=poll_failures,
        stats_summary=metrics.summarize(in_run) if in_run else None,
    )


# --- statistics ----------------------------------------------------------------------


class Spread(BaseModel):
    median: float
    min: float
    max: float
    n: int


# The figures the table and the verdicts are about: (name in Run or LoadResult, label).
FIGURES = [
    ("requests_per_s", "req/s"),
    ("latency_p50_ms", "p50 latency ms"),
    ("latency_p99_ms", "p99 latency ms"),
    ("cpu_s_per_1k", "CPU-s per 1k req"),
    ("cpu_percent_avg", "CPU % (avg)"),
    ("rss_mb_peak", "RSS MiB (peak)"),
    ("uss_mb_peak", "USS MiB (peak)"),
    ("rss_growth_mb", "RSS growth MiB"),
]


def figure(run: Run, name: str) -> float | None:
    return getattr(run.load, name) if hasattr(run.load, name) else getattr(run, name)


def spread(values: list[float | None]) -> Spread | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Spread(median=statistics.median(known), min=min(known), max=max(known), n=len(known))


def verdict(flask: Spread | None, fastapi: Spread | None) -> str:
    """FastAPI against Flask, only where the runs do not overlap."""
    if flask is None or fastapi is None:
        return "no data"
    if min(flask.n, fastapi.n) < 2:
        return "one run each: no verdict"
    if fastapi.min > flask.max:
        direction = "higher"
    elif fastapi.max < flask.min:
        direction = "lower"
    else:
        return "no clear difference"
    if flask.median:
        return f"FastAPI {abs(fastapi.median / flask.median - 1) * 100:.0f}% {direction}"
    return f"FastAPI {direction}"


def ratio(flask: Spread | None, fastapi: Spread | None) -> float | None:
    if flask is None or fastapi is None or not flask.median:
        return None
    return round(fastapi.median / flask.median, 3)


def summarize_runs(runs: list[Run]) -> list[dict[str, Any]]:
    """Per scenario and connection level, each figure's spread for both apps, ratio, verdict."""
    rows = []
    groups = sorted(
        {(r.scenario, r.connections) for r in runs}, key=lambda g: (SCENARIOS.index(g[0]), g[1])
    )
    for scenario, connections in groups:
        group = [r for r in runs if (r.scenario, r.connections) == (scenario, connections)]
        for name, label in FIGURES:
            spreads = {
                app: spread([figure(r, name) for r in group if r.app == app]) for app in APPS
            }
            rows.append(
                {
                    "scenario": scenario,
                    "connections": connections,
                    "figure": name,
                    "label": label,
                    "flask": spreads["flask"].model_dump() if spreads["flask"] else None,
                    "fastapi": spreads["fastapi"].model_dump() if spreads["fastapi"] else None,
                    "ratio_fastapi_flask": ratio(spreads["flask"], spreads["fastapi"]),
                    "verdict": verdict(spreads["flask"], spreads["fastapi"]),
                }
            )
    return rows


def error_rate(run: Run) -> float:
    attempts = run.load.requests + run.load.errors
    return (run.load.errors + run.load.non_2xx) / attempts if attempts else 1.0


# --- environment ---------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(
    args: argparse.Namespace,
    urls: dict[str, str],
    greetings: dict[str, dict[str, Any]],
    statuses: dict[str, metrics.Snapshot],
    pinning: str,
    launch_command: list[str] | None,
) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": psutil.cpu_count(),
            "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
            "platform": platform.platform(),
        },
        "runner_python": platform.python_version(),
        "apps": {
            app: {
                "url": urls[app],
                "framework_version": greetings[app]["framework_version"],
                "python_version": greetings[app]["python_version"],
                "server": greetings[app]["server"],
                "workers": statuses[app].process.workers,
                "cgroup": statuses[app].system.cgroup.model_dump()
                if statuses[app].system.cgroup
                else None,
            }
            for app in APPS
        },
        "load_tool": loadtools.version(args.tool),
        "pinning": pinning,
        "launched_with": launch_command,
        "settings": {
            "scenarios": {name: scenario_path(name, args) for name in args.scenarios},
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "poll_s": args.poll,
            "max_error_rate": args.max_error_rate,
        },
        "command": [sys.executable, *sys.argv],
    }


# --- main ----------------------------------------------------------------------------


def plan_cpus(pin: bool) -> tuple[list[int] | None, list[int] | None, str]:
    """(app cores, load tool cores, a sentence for the report)."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin:
        return None, None, f"none: apps and load tool share cores {cores}"
    if len(cores) < 2:
        raise TargetError(f"--pin needs at least 2 cores; this process may use {cores}")
    tool = cores[len(cores) // 2 :]
    apps = cores[: len(cores) // 2]
    return apps, tool, f"load tool on cores {tool}, apps on cores {apps}"


def compare(args: argparse.Namespace, console: Console) -> int:
    app_cpus, tool_cpus, pinning = plan_cpus(args.pin)
    loadtools.require(args.tool)
    if args.pin and not args.launch:
        pinning += " (apps not launched here: not pinned)"
    origin = time.monotonic()
    runner_start = time.process_time()
    with contextlib.ExitStack() as stack:
        urls = {"flask": args.flask.rstrip("/"), "fastapi": args.fastapi.rstrip("/")}
        launch_command = None
        if args.launch:
            urls, launch_command = stack.enter_context(
                launched(args, app_cpus, args.out / "up.log")
            )
        client = stack.enter_context(httpx2.Client(timeout=10))
        greetings = check_targets(client, urls)
        statuses = {app: status(client, url) for app, url in urls.items()}
        env = environment(args, urls, greetings, statuses, pinning, launch_command)
        runs = execute(client, args, urls, tool_cpus, origin, console)
    env["runner_cpu_s"] = round(time.process_time() - runner_start, 3)
    env["wall_s"] = round(time.monotonic() - origin, 1)
    rows = summarize_runs(runs)
    bad = [r for r in runs if error_rate(r) > args.max_error_rate]
    paths = report.write(args.out, env, runs, rows)
    report.print_table(console, env, rows, runs)
    console.print(f"\nreport: {', '.join(str(p) for p in paths)}")
    if bad:
        for run in bad:
            console.print(
                f"[red]{run.app} {run.scenario} c={run.connections} run {run.repeat}:"
                f" {run.load.errors} errors and {run.load.non_2xx} non-2xx of"
                f" {run.load.requests + run.load.errors} ({error_rate(run):.1%}, over"
                f" --max-error-rate {args.max_error_rate:.1%})[/red]"
            )
        return EXIT_ERRORS
    return 0


def execute(
    client: httpx2.Client,
    args: argparse.Namespace,
    urls: dict[str, str],
    tool_cpus: list[int] | None,
    origin: float,
    console: Console,
) -> list[Run]:
    """Every warm-up and counted run, Flask and FastAPI alternating, with a live progress bar."""
    levels = [(s, c) for s in args.scenarios for c in args.connections]
    total_s = len(levels) * len(APPS) * (args.warmup + args.repeats * args.duration)
    runs: list[Run] = []
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, refresh_per_second=2, transient=True) as progress:
        task = progress.add_task("starting", total=total_s)
        done_s = 0.0
        for scenario, connections in levels:
            if args.warmup:
                for app in APPS:
                    progress.update(task, description=f"{scenario} c={connections} warm-up {app}")
                    argv = load_argv(args, urls[app], scenario, connections, args.warmup, tool_cpus)
                    run_load(argv, args.tool, args.warmup)
                    done_s += args.warmup
                    progress.update(task, completed=done_s)
            for repeat in range(1, args.repeats + 1):
                for app in APPS:
                    progress.update(
                        task,
                        description=f"{scenario} c={connections} run {repeat}/{args.repeats} {app}",
                    )
                    run_started = time.monotonic()

                    def tick(started=run_started, base=done_s):
                        progress.update(
                            task, completed=base + min(args.duration, time.monotonic() - started)
                        )

                    runs.append(
                        measure(
                            client,
                            args,
                            app,
                            urls[app],
                            scenario,
                            connections,
                            repeat,
                            tool_cpus,
                            origin,
                            tick,
                        )
                    )
                    done_s += args.duration
                    progress.update(task, completed=done_s)
    return runs


def main(argv: list[str] | None = None) -> int:
    # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C, so that launched apps,
    # which run in a session of their own, are stopped on the way out.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _: sys.exit(128 + number))
    args = parse_args(argv)
    # A terminal sets the width; in a log or pipe, wide enough for the table.
    console = Console(width=None if sys.stdout.isatty() else 150)
    try:
        return compare(args, console)
    except TargetError as error:
        console.print(f"[red]compare.py: {error}[/red]")
        return EXIT_TARGET
    except loadtools.LoadToolError as error:
        console.print(f"[red]compare.py: {error}[/red]")
        return EXIT_LOAD_TOOL
    except KeyboardInterrupt:
        console.print("compare.py: interrupted; no report written")
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
