"""One counted run: the load against one app (or none, idle), with /status read before
and after and polled between, and what the app and its server spent on it."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from dataclasses import dataclass

import httpx2
import psutil

from compare import loadtools
from compare.plan import Plan
from compare.poller import Poller
from compare.run import Level, Run
from compare.targets import status
from metrics.clock import cpu_clock_id
from metrics.schema import Snapshot, cpu_percent
from metrics.summary import summarize


def load_argv(
    plan: Plan,
    url: str,
    level: Level,
    duration_s: float,
    tool_cores: list[int],
    seed: int | None = None,
) -> list[str]:
    """The load tool's command line for a level (openloop at a rate, else --tool), pinned to
    tool_cores, one thread per core."""
    assert level.scenario is not None and level.connections is not None
    tool = loadtools.OPEN_LOOP if level.kind == "open" else plan.tool
    argv = loadtools.command(
        tool,
        url + plan.path(level.scenario),
        level.connections,
        duration_s,
        len(tool_cores),
        level.rate,
        plan.arrivals,
        seed if plan.arrivals == "poisson" else None,
    )
    return ["taskset", "-c", ",".join(map(str, tool_cores)), *argv]


def run_load(argv: list[str], tool: str, duration_s: float) -> tuple[loadtools.LoadResult, float]:
    """The tool's parsed result and the CPU seconds the tool itself used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        raise loadtools.LoadToolError(f"{' '.join(argv)} did not finish in time") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        parsed = loadtools.parse_output(tool, result.stdout + result.stderr)
    except loadtools.LoadToolError as error:
        raise loadtools.LoadToolError(
            f"{' '.join(argv)} exited {result.returncode}: {error}"
        ) from None
    return parsed, tool_cpu_s


def no_load(duration_s: float) -> tuple[loadtools.LoadResult, float]:
    """What an idle run of duration_s measures against: no request."""
    nothing = loadtools.LoadResult(
        requests=0,
        duration_s=duration_s,
        errors=0,
        non_2xx=0,
        latency_p50_ms=None,
        latency_p90_ms=None,
        latency_p99_ms=None,
    )
    return nothing, 0.0


def reached(load: loadtools.LoadResult, scheduled_s: float) -> float:
    """The rate an app kept up with: its answers over the scheduled span, stretched by as
    much as its last answers came later than its fastest answer took.

    A server that keeps up answers the last request one service time after it was due,
    and gets the asked rate; one that queued answers late, and gets the rate it served.
    """
    answering_s = load.duration_s - (load.latency_min_ms or 0.0) / 1000
    return round(load.requests / max(scheduled_s, answering_s), 1)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 6)


def _peak(values: list[float | None]) -> float | None:
    """The highest of the values known; None if none is."""
    known = [value for value in values if value is not None]
    return max(known) if known else None


def counted_difference(before: Snapshot, after: Snapshot) -> float | None:
    """The database's CPU seconds between two snapshots, where it is counted and ran all
    along (the same postmaster); None otherwise."""
    was, now = before.database, after.database
    if not (was and now and was.counted and now.counted):
        return None
    if was.cpu_time_s is None or now.cpu_time_s is None or was.pids[:1] != now.pids[:1]:
        return None
    return round(now.cpu_time_s - was.cpu_time_s, 6)


SETTLE_S = 0.5  # after a /status answer, before an idle window opens: its dispatch done
OTHERS_S = 1.0  # the most CPU seconds of exited workers an app's figure may hold beyond ours


def steal_s() -> tuple[float, float] | None:
    """The machine's steal time and its whole time so far, over all cores (None where the
    kernel gives no steal)."""
    times = psutil.cpu_times()
    steal = getattr(times, "steal", None)
    return None if steal is None else (steal, sum(times))


def steal_share(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 4)


def clocks(pids: list[int]) -> float | None:
    """These processes' CPU seconds so far, read from outside them: the kernel's CPU clock
    of each, in nanoseconds (metrics/cpu.py); None if one is gone or cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            total += time.clock_gettime(cpu_clock_id(pid))
        except OSError:
            return None
    return total


@dataclass
class Unwatched:
    """An idle window read from outside the apps: its length and each part's CPU seconds."""

    window_s: float
    cpu_s: float
    server_cpu_s: float | None
    database_cpu_s: float | None
    observer_cpu_s: float | None  # the sampler's in the window, as the apps count it


def parts(snapshot: Snapshot) -> dict[str, list[int]]:
    """The pids of the parts /status names that an idle window reads from outside: the
    workers and the server's processes. (The database's backends come and go on their
    own; its CPU is read from /status's edges, which no request to it moves.)"""
    found = {"cpu_s": list(snapshot.process.pids)}
    if snapshot.server:
        found["server_cpu_s"] = list(snapshot.server.pids)  # its shared ones included
    return found


def unwatched(
    client: httpx2.Client, url: str, before: Snapshot, duration_s: float
) -> tuple[Unwatched | None, Snapshot]:
    """No request for duration_s, the apps' CPU read from outside them at its edges, and
    the /status after (a settle apart from each edge: no answer's work inside). None where
    the processes /status named are not this machine's to read (another pid namespace,
    a container's), or one came or went: the window then falls back on /status's edges."""
    time.sleep(SETTLE_S)
    named = parts(before)
    start = {part: clocks(pids) for part, pids in named.items()}
    opened = time.monotonic()
    time.sleep(duration_s)
    end = {part: clocks(pids) for part, pids in named.items()}
    closed = time.monotonic()
    time.sleep(SETTLE_S)
    after = status(client, url)
    # The apps' observer counter between `before` and `after` holds the sampler's work in
    # the window and `before`'s own answer, which came before it: a second /status at
    # once measures one answer, to take off.
    again = status(client, url)
    counted = [s.process.observer_cpu_s for s in (before, after, again)]
    observer = (
        None
        if None in counted
        else round(max(0.0, (counted[1] - counted[0]) - (counted[2] - counted[1])), 6)  # type: ignore[operator]
    )
    if None in (*start.values(), *end.values()) or parts(after) != named:
        return None, after
    cpu = {part: round(end[part] - start[part], 6) for part in named}  # type: ignore[operator]
    # These are the apps' processes, not another namespace's with the same numbers: the
    # workers' clocks lie between the apps' own readings before and after (which also
    # count workers that exited: up to OTHERS_S of them before).
    if not (
        before.process.cpu_time_s - OTHERS_S <= start["cpu_s"]  # type: ignore[operator]
        and end["cpu_s"] <= after.process.cpu_time_s + 0.001  # type: ignore[operator]
    ):
        return None, after
    return (
        Unwatched(
            window_s=round(closed - opened, 6),
            cpu_s=cpu["cpu_s"],
            server_cpu_s=cpu.get("server_cpu_s"),
            database_cpu_s=counted_difference(before, after),
            observer_cpu_s=observer,
        ),
        after,
    )


def measure(
    client: httpx2.Client,
    plan: Plan,
    app: str,
    url: str,
    level: Level,
    where: tuple[int, int, int | None],
    tool_cores: list[int],
    origin: float,
    on_poll=None,
) -> Run:
    """One counted run (`where`: its repeat, its order and its arrivals' seed): /status
    before, the load (none when idle) with polls, /status and /stats after."""
    repeat, order, seed = where
    if level.kind == "idle":
        argv = []
    else:
        argv = load_argv(plan, url, level, plan.duration_s, tool_cores, seed)
    runner_before = time.process_time()
    before = status(client, url)
    stolen = steal_s()
    outside: Unwatched | None = None
    polls: list = []
    poller = None
    if level.kind == "idle":  # unwatched: no poll, its CPU read from outside the apps
        load, tool_cpu_s = no_load(plan.duration_s)
        outside, after = unwatched(client, url, before, plan.duration_s)
    else:
        poller = Poller(url, plan.poll_s, origin, before, on_poll)
        poller.start()
        try:
            tool = loadtools.OPEN_LOOP if level.kind == "open" else plan.tool
            load, tool_cpu_s = run_load(argv, tool, plan.duration_s)
        finally:
            polls = poller.stop()
        after = status(client, url)
    stolen_share = steal_share(stolen, steal_s())
    # The app's own view: its sampler's samples taken during this run, summarised.
    stats = client.get(url + "/stats").json()
    in_run = [s for s in stats["samples"] if s["timestamp"] >= before.timestamp]
    limit = after.system.cpu_usable_cores
    if outside:
        window_s, cpu_s = outside.window_s, outside.cpu_s
        server_cpu_s, database_cpu_s = outside.server_cpu_s, outside.database_cpu_s
    else:
        window_s = after.timestamp - before.timestamp
        cpu_s = round(after.process.cpu_time_s - before.process.cpu_time_s, 6)
        server_cpu_s = (
            round(after.server.cpu_time_s - before.server.cpu_time_s, 6)
            if after.server and before.server
            else None
        )
        database_cpu_s = counted_difference(before, after)
    total_cpu_s = cpu_s + (server_cpu_s or 0.0) + (database_cpu_s or 0.0)
    processes = (before.process, *polls, after.process)
    databases = [s.database for s in (before, after) if s.database]
    database_rss = [d.rss_mb for d in databases] + [p.database_rss_mb for p in polls]
    database_pss = [d.pss_mb for d in databases] + [p.database_pss_mb for p in polls]
    rss = [p.rss_mb for p in processes]
    uss = [p.uss_mb for p in processes if p.uss_mb is not None]
    pss = [p.pss_mb for p in processes if p.pss_mb is not None]
    whole = [before.app_pss_mb, *(p.app_pss_mb for p in polls), after.app_pss_mb]
    peaks = [p.cpu_percent for p in polls if p.cpu_percent is not None]
    busy = tool_cpu_s / (load.duration_s * len(tool_cores)) if load.duration_s else 0.0
    return Run(
        level=level,
        app=app,
        repeat=repeat,
        order=order,
        seed=seed if level.kind == "open" and plan.arrivals == "poisson" else None,
        command=argv,
        load=load,
        window_s=round(window_s, 6),
        cpu_s=cpu_s,
        server_cpu_s=server_cpu_s,
        database_cpu_s=database_cpu_s,
        database_rss_mb_peak=_peak(database_rss),
        database_pss_mb_peak=_peak(database_pss),
        observer_cpu_s=outside.observer_cpu_s
        if outside
        else _delta(after.process.observer_cpu_s, before.process.observer_cpu_s),
        cpu_percent_avg=cpu_percent(cpu_s, window_s, limit),
        total_cpu_percent_avg=cpu_percent(total_cpu_s, window_s, limit),
        cpu_percent_peak=max(peaks) if peaks else None,
        rss_mb_before=before.process.rss_mb,
        rss_mb_after=after.process.rss_mb,
        rss_mb_avg=_mean(rss),
        rss_mb_peak=max(rss),
        uss_mb_avg=_mean(uss),
        uss_mb_peak=max(uss) if uss else None,
        pss_mb_avg=_mean(pss),
        pss_mb_peak=max(pss) if pss else None,
        app_pss_mb_peak=None if None in whole else max(whole),
        system_cpu_percent_avg=_mean(
            [p.system_cpu_percent for p in polls] or [after.system.cpu_percent]
        ),
        system_memory_used_mb_avg=_mean(
            [p.system_memory_used_mb for p in polls] or [after.system.memory_used_mb]
        ),
        workers=after.process.workers,
        workers_changed=before.process.pids != after.process.pids,
        cores_usable=limit,
        load_tool_cpu_s=round(tool_cpu_s, 3),
        load_tool_cores=len(tool_cores),
        load_tool_busy=round(busy, 3),
        rate_reached=reached(load, plan.duration_s) if level.kind == "open" else None,
        runner_cpu_s=round(time.process_time() - runner_before, 3),
        polls=polls,
        poll_failures=poller.failures if poller else 0,
        cpu_read="outside" if outside else "status",
        steal_share=stolen_share,
        stats_summary=summarize(in_run) if in_run else None,
    )
