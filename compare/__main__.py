"""Loads the Flask and the FastAPI app identically and reports their CPU and RAM cost side by side.

    ./compare.sh --launch                               # start both apps here, full report
    ./compare.sh --launch --rate 1000                   # both apps at 1,000 req/s: equal work
    ./compare.sh --launch --scenarios hello --connections 16,32,64,128,256,512   # a sweep
    ./compare.sh --launch --workers 1,2,4                # a worker sweep
    ./compare.sh --launch --scenarios db,queries,fortunes,updates   # against PostgreSQL
    ./compare.sh --launch --scenarios db,queries --pool-size 2,4,8  # a pool-size sweep
    ./compare.sh --flask http://127.0.0.1:8080 --fastapi http://127.0.0.1:8081

For every scenario and level it runs the load tool (wrk, ab or hey; openloop at
a fixed --rate) against Flask, then FastAPI, then Flask again..., on cores of
its own where there are two or more, reads each app's /status just before and
after every run and polls it during the run. It prints a table of medians with
their min-max, and writes report.json, report.md and PNG charts to --out
(default results/<timestamp>/).

Exit codes: `./compare.sh --help` lists them, from compare/cli.py's EXIT_CODES.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from compare import cli, loadtools, pinning, report
from compare.cli import (
    DATABASE_SCENARIOS,
    EXIT_DONE,
    EXIT_ERRORS,
    EXIT_LOAD_TOOL,
    EXIT_SIGNAL_BASE,
    EXIT_TARGET,
    Plan,
)
from compare.run import Level, Run, load_argv, measure, run_load
from compare.statistics import error_rate, summarize_runs
from compare.targets import APPS, TargetError, check_targets, status
from metrics.schema import Snapshot
from serve.config import HOW_TO_GET_POSTGRES, ConfigError, read_database
from serve.launch import LaunchError, launch


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(
    plan: Plan,
    urls: dict[str, str],
    greetings: dict[str, dict[str, Any]],
    statuses: dict[str, Snapshot],
    cores: pinning.Cores,
    launch_command: list[str] | None,
) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": psutil.cpu_count(),
            "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
        },
        "runner_python": platform.python_version(),
        "apps": {
            app: {
                "url": urls[app],
                "framework_version": greetings[app]["framework_version"],
                "python_version": greetings[app]["python_version"],
                "server": greetings[app]["server"],
                "server_processes": statuses[app].server.names if statuses[app].server else [],
                "workers": statuses[app].process.workers,
                "database": statuses[app].database.model_dump(
                    include={"counted", "pool_size", "pools"}
                )
                if statuses[app].database
                else None,
                "cpu_affinity": statuses[app].system.cpu_affinity,
                "cgroup": statuses[app].system.cgroup.model_dump()
                if statuses[app].system.cgroup
                else None,
            }
            for app in APPS
        },
        "load_tool": loadtools.version(plan.load_tool),
        "pinning": cores.sentence,
        "launched_with": launch_command,
        "settings": {
            "scenarios": {name: plan.path(name) for name in plan.scenarios},
            "connections": plan.connections,
            "rate": plan.rate,
            "workers": plan.workers,
            "pool_sizes": plan.pool_sizes,
            "duration_s": plan.duration_s,
            "warmup_s": plan.warmup_s,
            "repeats": plan.repeats,
            "poll_s": plan.poll_s,
            "max_error_rate": plan.max_error_rate,
        },
        "command": [sys.executable, "-m", "compare", *sys.argv[1:]],
    }


def levels(plan: Plan, workers: int, pool_size: int | None = None) -> list[Level]:
    return [
        Level(
            scenario=scenario,
            workers=workers,
            connections=connections,
            rate=rate,
            pool_size=pool_size,
        )
        for scenario in plan.scenarios
        for rate in plan.rate or [None]
        for connections in plan.connections
    ]


def launches(plan: Plan) -> list[tuple[int, int | None, dict[str, str]]]:
    """With --launch: each (workers, pool size) level, and the settings it is launched with.

    Without a database scenario no database is started: it would only idle beside the apps.
    """
    found = []
    for workers in plan.workers:
        for pool_size in plan.pool_sizes or [None]:
            env = {"WORKERS": str(workers)}
            if pool_size:
                env["DATABASE_POOL_SIZE"] = str(pool_size)
            if not plan.uses_database and "DATABASE_URL" not in os.environ:
                env["DATABASE"] = "none"
            found.append((workers, pool_size, env))
    return found


def require_database(plan: Plan) -> None:
    """With --launch and a database scenario: refuse in one line where there is none."""
    if plan.launch and plan.uses_database:
        try:
            chosen = read_database(dict(os.environ))[0]
        except ConfigError as error:
            raise TargetError(f"the database scenarios: {error}") from None
        if chosen == "none":
            asked = ",".join(name for name in plan.scenarios if name in DATABASE_SCENARIOS)
            raise TargetError(
                f"the database scenarios ({asked}) need a database, and there is none here:"
                f" {HOW_TO_GET_POSTGRES}"
            )


class Comparison:
    """Every warm-up and counted run, Flask and FastAPI alternating, with a live progress bar."""

    def __init__(self, plan: Plan, origin: float):
        self.plan, self.origin = plan, origin
        self.runs: list[Run] = []
        per_level_s = len(APPS) * (plan.warmup_s + plan.repeats * plan.duration_s)
        steps = len(levels(plan, 1)) * (len(launches(plan)) if plan.launch else 1)
        self.total_s = steps * per_level_s
        self.done_s = 0.0

    def execute(
        self,
        progress: Progress,
        task,
        client: httpx2.Client,
        urls: dict[str, str],
        workers: int,
        tool_cores: list[int],
        pool_size: int | None = None,
    ) -> None:
        plan = self.plan
        for level in levels(plan, workers, pool_size):
            name = f"{level.scenario} w={workers} " + (
                f"{level.rate:g}/s" if level.rate else f"c={level.connections}"
            )
            if pool_size:
                name += f" pool={pool_size}"
            if plan.warmup_s:
                for app in APPS:
                    progress.update(task, description=f"{name} warm-up {app}")
                    argv = load_argv(plan, urls[app], level, plan.warmup_s, tool_cores)
                    run_load(argv, plan.load_tool, plan.warmup_s)
                    self.done_s += plan.warmup_s
                    progress.update(task, completed=self.done_s)
            for repeat in range(1, plan.repeats + 1):
                for app in APPS:
                    progress.update(task, description=f"{name} run {repeat}/{plan.repeats} {app}")
                    started = time.monotonic()

                    def tick(started=started, base=self.done_s):
                        elapsed_s = min(plan.duration_s, time.monotonic() - started)
                        progress.update(task, completed=base + elapsed_s)

                    self.runs.append(
                        measure(
                            client,
                            plan,
                            app,
                            urls[app],
                            level,
                            repeat,
                            tool_cores,
                            self.origin,
                            tick,
                        )
                    )
                    self.done_s += plan.duration_s
                    progress.update(task, completed=self.done_s)


def compare(plan: Plan, console: Console) -> int:
    loadtools.require(plan.load_tool)
    require_database(plan)
    origin = time.monotonic()
    runner_start = time.process_time()
    comparison = Comparison(plan, origin)
    env: dict[str, Any] = {}
    console.print(
        f"compare: {comparison.total_s / 60:.1f} min of load ({comparison.total_s:g} s), plus"
        f" {'a launch of the apps per --workers level and ' if plan.launch else ''}a few"
        " seconds per run for /status"
    )
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    ]
    with (
        httpx2.Client(timeout=10) as client,
        Progress(*columns, console=console, refresh_per_second=2, transient=True) as progress,
    ):
        task = progress.add_task("starting", total=comparison.total_s)
        if plan.launch:
            cores = pinning.for_launch(plan.pin)
            levels_launched = launches(plan)
            for workers, pool_size, launch_env in levels_launched:
                name = f"up-w{workers}" + (f"-pool{pool_size}" if pool_size else "")
                log = plan.out / ("up.log" if len(levels_launched) == 1 else f"{name}.log")
                with launch(log, launch_env, cores.taskset()) as apps:
                    greetings = check_targets(client, apps.urls, plan.uses_database)
                    statuses = {app: status(client, url) for app, url in apps.urls.items()}
                    env = env or environment(plan, apps.urls, greetings, statuses, cores, apps.argv)
                    tool_cores = cores.tool or pinning.our_cores()
                    comparison.execute(
                        progress, task, client, apps.urls, workers, tool_cores, pool_size
                    )
        else:
            urls = {"flask": plan.flask_url, "fastapi": plan.fastapi_url}
            greetings = check_targets(client, urls, plan.uses_database)
            statuses = {app: status(client, url) for app, url in urls.items()}
            cores = pinning.for_targets(plan.pin, statuses)
            env = environment(plan, urls, greetings, statuses, cores, None)
            tool_cores = cores.tool or pinning.our_cores()
            workers = statuses["flask"].process.workers
            comparison.execute(progress, task, client, urls, workers, tool_cores)
    runs = comparison.runs
    env["runner_cpu_s"] = round(time.process_time() - runner_start, 3)
    env["wall_s"] = round(time.monotonic() - origin, 1)
    rows = summarize_runs(runs)
    bad = [r for r in runs if error_rate(r) > plan.max_error_rate]
    paths = report.write(plan.out, env, runs, rows)
    report.print_table(console, env, rows, runs)
    console.print(f"\nreport: {', '.join(str(p) for p in paths)}")
    if bad:
        for run in bad:
            console.print(
                f"[red]{run.app} {report.level_label(run.level)} run {run.repeat}:"
                f" {run.load.errors} errors and {run.load.non_2xx} non-2xx of"
                f" {run.load.requests + run.load.errors} ({error_rate(run):.1%}, over"
                f" --max-error-rate {plan.max_error_rate:.1%})[/red]"
            )
        return EXIT_ERRORS
    return EXIT_DONE


def main(argv: list[str] | None = None) -> int:
    # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C, so that launched apps,
    # which run in a session of their own, are stopped on the way out.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _: sys.exit(EXIT_SIGNAL_BASE + number))
    plan = cli.parse(argv)
    # A terminal sets the width; in a log or pipe, wide enough for the table.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        return compare(plan, console)
    except (TargetError, LaunchError) as error:
        console.print(f"[red]compare: {error}[/red]")
        return EXIT_TARGET
    except loadtools.LoadToolError as error:
        console.print(f"[red]compare: {error}[/red]")
        return EXIT_LOAD_TOOL
    except KeyboardInterrupt:
        console.print("compare: interrupted; no report written")
        return EXIT_SIGNAL_BASE + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
