"""Loads the Flask and the FastAPI app identically and estimates what FastAPI costs against
Flask, in CPU and RAM, each figure a ratio with its 95% confidence interval.

    ./compare.sh --launch                               # the default: about 12 minutes
    ./compare.sh --launch --scenarios hello,json,io,cpu --repeats 8   # more, and longer
    ./compare.sh --launch --same-app flask              # A/A: Flask against itself
    ./compare.sh --launch --style plain                 # the plain baselines (baselines/)
    ./compare.sh --launch --rate 500,1000               # open-loop runs at these rates
    ./compare.sh --launch --connections 16,32,64,128    # a closed-loop connection sweep
    ./compare.sh --launch --workers 1,2,4                # a worker sweep
    ./compare.sh --launch --scenarios db,queries,fortunes,updates   # against PostgreSQL
    ./compare.sh --launch --scenarios db,queries --pool-size 2,4,8  # a pool-size sweep
    ./compare.sh --flask http://127.0.0.1:8080 --fastapi http://127.0.0.1:8081

Each repeat launches both apps anew (--launch) and runs them idle, then per scenario
at saturation (closed loop: capacity) and at the same fixed rates (open loop), the two
apps taking turns in ABBA order (compare/procedure.py). From each repeat it fits each
app's CPU against the requests it served (compare/figures.py), and across the repeats
it estimates each figure with its interval (compare/statistics.py). It prints the
headline estimates and writes report.json, report.md and PNG charts to --out (default
results/<timestamp>/).

Exit codes: `./compare.sh --help` lists them, from compare/exits.py's EXIT_CODES.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from compare import cli, instructions, loadtools, pinning, pool, whole_counts
from compare.exits import EXIT_DONE, EXIT_ERRORS, EXIT_LOAD_TOOL, EXIT_SIGNAL_BASE, EXIT_TARGET
from compare.numbers import number
from compare.plan import DATABASE_SCENARIOS, Plan
from compare.procedure import Procedure, planned_seconds
from compare.run import Run
from compare.targets import APPS, TargetError, check_targets, status
from metrics.schema import Snapshot
from serve.conf import load_conf
from serve.database_config import HOW_TO_GET_POSTGRES, read_database
from serve.launch import LaunchError, launch
from serve.settings import ConfigError

PIPE_PROGRESS_S = 30  # the longest a pipe waits for a progress line


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
        "names": plan.names,
        "same_app": plan.same_app,
        "style": plan.style,
        "repeats": {
            "count": plan.repeats,
            "launches": plan.launch,
            # per launch: the app in FLASK_PORT's place (placed())
            **(
                {"first_place": [placed(r)["flask"] for r in range(1, plan.repeats + 1)]}
                if plan.launch
                else {}
            ),
        },
        "apps": {
            app: {
                "url": urls[app],
                "framework": greetings[app]["framework"],
                "file": served_file(plan, greetings[app]["framework"]),
                "style": plan.styles[app],
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
        "load_tool": loadtools.version(plan.tool),
        "open_loop_tool": loadtools.version(loadtools.OPEN_LOOP),
        "pinning": cores.sentence,
        "launched_with": launch_command,
        "settings": {
            "scenarios": {name: plan.path(name) for name in plan.scenarios},
            "connections": plan.connections,
            "fractions": plan.fractions,
            "rates": plan.rates,
            "arrivals": plan.arrivals,
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


def served_file(plan: Plan, framework: str) -> str:
    """The file of the app of `framework` that the comparison ran: the project's, or the
    baseline of --style."""
    if plan.style != "project":
        return f"baselines/{framework}-{plan.style}.py"
    return load_conf(cli.ROOT / "conf.json")["applications"][framework]["module"] + ".py"


def placed(repeat: int) -> dict[str, str]:
    """Which app up.sh serves in each of its two places in launch `repeat`: FLASK_PORT's
    (its server started first, its Unit application listed first) and FASTAPI_PORT's.
    Every second launch swaps them, so that a difference between the places, if any, is
    noise in the intervals and not read as one between the apps (12 A/A launches of
    Flask without the swap hinted at one, undecided; 24 with it showed none:
    docs/aa-calibration.txt)."""
    order = APPS if repeat % 2 else (APPS[1], APPS[0])
    return dict(zip(APPS, order, strict=True))


def apps_env(plan: Plan, repeat: int = 1) -> tuple[dict[str, str], dict[str, str]]:
    """up.sh's APPS for launch `repeat`, and the framework each port then serves: each
    app (or, for an A/A comparison, one app twice; with --style, the baselines of
    baselines/observed/) in its place of placed(repeat)."""
    conf = load_conf(cli.ROOT / "conf.json")["applications"]

    def target(app: str) -> str:
        if plan.style != "project":
            return f"baselines.observed.{app}_{plan.style}"
        served = conf[plan.same_app or app]
        return f"{served['module']}:{served['callable']}"

    places = placed(repeat)
    frameworks = {port: plan.same_app or app for port, app in places.items()}
    return {"APPS": ",".join(target(app) for app in places.values())}, frameworks


def launches(plan: Plan, served: dict[str, str]) -> list[tuple[int, int | None, dict[str, str]]]:
    """With --launch: each (workers, pool size) level, and the settings up.sh gets for it,
    `served` (apps_env's APPS) among them.

    Without a database scenario no database is started: it would only idle beside the apps.
    """
    found = []
    for workers in plan.workers:
        for pool_size in plan.pool_sizes or [None]:
            env = {"WORKERS": str(workers), **served}
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


def flagged(runs: list[Run], plan: Plan) -> list[str]:
    """What the reader must know of the runs: those that missed their rate or had errors,
    a worker replaced, or a load tool that may have been the bottleneck; and the observer."""
    lines = []
    for flag, what in [
        ("rate_missed", "answered under 98% of their scheduled rate: flagged, and counted"),
        ("workers_changed", "saw a worker replaced"),
        (
            "tool_bound",
            "kept the load tool >= 90% busy, or openloop sent short of its rate:"
            " their req/s and latency may be the tool's",
        ),
    ]:
        marked = [r for r in runs if getattr(r, flag)]
        if marked:
            lines.append(f"{len(marked)} of {len(runs)} runs {what}")
    lines += steal_said(runs)
    erred = [r for r in runs if r.error_rate > plan.max_error_rate]
    for run in erred:
        lines.append(
            f"{plan.names[run.app]} repeat {run.repeat} {run.level.scenario} {run.level.kind}"
            f" {number(run.level.rate or run.level.connections)}: {run.load.errors} errors and"
            f" {run.load.non_2xx} non-2xx of {run.load.requests + run.load.errors}"
            f" ({run.error_rate:.1%}, over --max-error-rate {plan.max_error_rate:.1%})"
        )
    return lines


# A pair of runs (both apps at one level in one launch) whose steal differs by more than
# this is flagged: steal moves a run's figures (in a 24-launch A/A batch on the project's
# 2-core virtual machine, the steal difference within a pair correlated with the pair's
# CPU-per-request log ratio, r = 0.47 over 192 open-loop pairs), and pairing removes only
# what both runs of a pair share. There, a loaded run lost 1-44% of the machine's time to
# steal (median 9%), an idle one under 2%; within a pair the median difference was 1.5
# points, and 4 pairs of 264 differed by more than 10.
STEAL_APART = 0.10


def steal_said(runs: list[Run]) -> list[str]:
    """The machine's steal time in the runs, and the pairs whose two runs lost unlike shares."""
    kinds: dict[str, list[float]] = {}
    pairs: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.steal_share is not None:
            kinds.setdefault(run.level.kind, []).append(run.steal_share)
            pairs.setdefault((run.repeat, run.level), []).append(run)
    if not kinds:
        return []
    medians = ", ".join(f"{kind} {statistics.median(v):.1%}" for kind, v in kinds.items())
    lines = [f"Steal (the machine's time its hypervisor gave to others), the median run: {medians}"]
    apart = [
        pair
        for pair in pairs.values()
        if len(pair) == 2 and abs(pair[0].steal_share - pair[1].steal_share) > STEAL_APART  # type: ignore[operator]
    ]
    if apart:
        lines.append(
            f"{len(apart)} of {len(pairs)} pairs of runs lost shares of the machine's time to"
            f" steal more than {STEAL_APART:.0%} apart: their ratio may be the neighbours' ("
            + ", ".join(f"repeat {a.repeat} runs {a.order} and {b.order}" for a, b in apart)
            + ")"
        )
    return lines


def observer(runs: list[Run]) -> dict[str, float | None]:
    """The observer's share of the apps' CPU: at idle, where it is most of it, and under load."""
    # Where the apps report no observer, every share is None; an idle run that spent no
    # CPU at all (read from outside, a quiet app can) has no share either.
    reported = [r for r in runs if r.observer_cpu_s is not None]
    idle = [r.observer_share for r in reported if r.level.kind == "idle"]
    loaded = [r.observer_share for r in reported if r.level.kind != "idle"]
    idle_known = [share for share in idle if share is not None]
    return {
        "idle_median_share": statistics.median(idle_known) if idle_known else None,
        "loaded_max_share": max(loaded) if len(reported) == len(runs) and loaded else None,
    }


def compare(plan: Plan, console: Console) -> int:
    loadtools.require(plan.tool)
    require_database(plan)
    origin = time.monotonic()
    runner_start = time.process_time()
    load_s, rest_s = planned_seconds(plan)
    total_s = load_s + rest_s
    console.print(
        f"compare: about {f'{total_s / 60:.0f} min' if total_s >= 90 else f'{total_s:.0f} s'}:"
        f" {load_s:,.0f} s of load and about {rest_s:,.0f} s of"
        f" {'launches, ' if plan.launch else ''}/status and set-up"
    )
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    ]
    env: dict[str, Any] = {}
    with (
        httpx2.Client(timeout=10) as client,
        Progress(*columns, console=console, refresh_per_second=2, transient=True) as progress,
    ):
        task = progress.add_task("starting", total=load_s)
        said = {"step": "", "at": 0.0}

        def advance(seconds: float, description: str) -> None:
            progress.update(
                task, advance=seconds, **({"description": description} if description else {})
            )
            # In a pipe or a log no bar is drawn: a line for each step instead, and at least
            # every PIPE_PROGRESS_S, with how far along the load is and the time left.
            step = progress.tasks[0].description
            now = time.monotonic()
            if console.is_terminal or (step == said["step"] and now - said["at"] < PIPE_PROGRESS_S):
                return
            done = progress.tasks[0].completed / load_s if load_s else 0.0
            elapsed = now - origin
            left = elapsed / done - elapsed if done > 0.01 else total_s - elapsed
            console.print(
                f"compare: {done:4.0%} {step} (about {max(left, 0) / 60:.0f} min left)",
                highlight=False,
            )
            said.update(step=step, at=now)

        procedure = Procedure(plan, origin, advance)
        if plan.launch:
            cores = pinning.for_launch(plan.pin)
            tool_cores = cores.tool or pinning.our_cores()
            for repeat in range(1, plan.repeats + 1):
                served, frameworks = apps_env(plan, repeat)
                for workers, pool_size, launch_env in launches(plan, served):
                    pool = f"-pool{pool_size}" if pool_size else ""
                    log = plan.out / "launches" / f"up-{repeat}-w{workers}{pool}.log"
                    advance(0.0, f"repeat {repeat}/{plan.repeats}: launching both apps")
                    apps = launch(log, launch_env, cores.taskset(), frameworks=frameworks)
                    # Not `with`: a stop (SIGTERM, Ctrl-C) that lands in Launch.__enter__,
                    # as the apps have just come up, would skip Launch.__exit__.
                    try:
                        urls = {app: apps.urls[port] for port, app in placed(repeat).items()}
                        greetings = check_targets(client, urls, plan.same_app, plan.uses_database)
                        statuses = {app: status(client, url) for app, url in urls.items()}
                        env = env or environment(plan, urls, greetings, statuses, cores, apps.argv)
                        procedure.repeat(
                            repeat,
                            client,
                            urls,
                            (workers, pool_size),
                            (cores.apps, tool_cores),
                        )
                    finally:
                        apps.stop()
        else:
            urls = {"flask": plan.flask_url, "fastapi": plan.fastapi_url}
            greetings = check_targets(client, urls, plan.same_app, plan.uses_database)
            statuses = {app: status(client, url) for app, url in urls.items()}
            cores = pinning.for_targets(plan.pin, statuses)
            env = environment(plan, urls, greetings, statuses, cores, None)
            tool_cores = cores.tool or pinning.our_cores()
            app_cores = sorted({c for s in statuses.values() for c in s.system.cpu_affinity})
            workers = statuses["flask"].process.workers
            for repeat in range(1, plan.repeats + 1):
                procedure.repeat(repeat, client, urls, (workers, None), (app_cores, tool_cores))
    runs = procedure.runs
    env["runner_cpu_s"] = round(time.process_time() - runner_start, 3)
    env["wall_s"] = round(time.monotonic() - origin, 1)
    env["seed"] = procedure.seed
    env["observer"] = observer(runs)
    shared = ["the load tool and the apps shared cores: latency and req/s then measure both"]
    env["notes"] = [
        *(shared if env["pinning"].startswith("shared") else []),
        *procedure.notes,
        *flagged(runs, plan),
    ]
    from compare import report  # matplotlib's: imported once there is a report to write

    targets = {name: plan.path(name) for name in plan.scenarios}
    counted = report.framework_counts(
        instructions.committed(),
        targets,
        {app: (env["apps"][app]["framework"], plan.style) for app in APPS},
    )
    whole = whole_counts.for_report(whole_counts.committed(), targets, plan.style)
    data = report.assemble(runs, plan.scenarios, plan.names, procedure.floors, counted, whole)
    paths = report.write(plan.out, env, data, runs)
    report.print_table(console, env, data)
    console.print(f"\nreport: {', '.join(str(p) for p in paths)}")
    if any(run.error_rate > plan.max_error_rate for run in runs):
        return EXIT_ERRORS
    return EXIT_DONE


def main(argv: list[str] | None = None) -> int:
    # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C, so that launched apps,
    # which run in a session of their own, are stopped on the way out.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _: sys.exit(EXIT_SIGNAL_BASE + number))
    # Ctrl-C too, even where SIGINT came in ignored (a job started with & by a
    # non-interactive shell, as CI scripts do): Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plan = cli.parse(argv)
    # A terminal sets the width; in a log or pipe, wide enough for the table.
    console = Console(width=None if sys.stdout.isatty() else 160)
    # Failures go to stderr, as the flags' errors do: a pipe or a log keeps them apart.
    errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    if plan.sources:  # checked by cli.parse: alike, and readable
        paths = pool.pool(plan.sources, plan.out, console)
        console.print(f"\nreport: {', '.join(str(p) for p in paths)}")
        return EXIT_DONE
    try:
        return compare(plan, console)
    except (TargetError, LaunchError) as error:
        errors.print(f"[red]compare: {error}[/red]")
        return EXIT_TARGET
    except loadtools.LoadToolError as error:
        errors.print(f"[red]compare: {error}[/red]")
        return EXIT_LOAD_TOOL
    except KeyboardInterrupt:
        errors.print("compare: interrupted; no report written")
        return EXIT_SIGNAL_BASE + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
