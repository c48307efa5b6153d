"""One counted run: the load against one app (or none, idle), and what the app and its
server spent on it."""

from __future__ import annotations

import resource
import statistics
import subprocess
import threading
import time
from typing import Any, Literal

import httpx2
from pydantic import BaseModel, ConfigDict, computed_field

from compare import loadtools
from compare.plan import Plan
from compare.targets import TargetError, status
from metrics.schema import Snapshot, cpu_percent
from metrics.summary import summarize

# A load tool that kept this share of its cores busy may have been the bottleneck.
TOOL_BOUND_SHARE = 0.9
# A fixed-rate run whose app answered less than this share of the scheduled rate missed it.
RATE_TOLERANCE = 0.02


class Poll(BaseModel):
    """One reading of /status during a run."""

    t_s: float  # seconds since the comparison started
    timestamp: float  # the app's own clock, at the instant its counters were read
    cpu_time_s: float
    cpu_percent: float | None  # from cpu_time_s since the previous poll, over the app's clock
    server_cpu_percent: float | None
    rss_mb: float
    uss_mb: float | None
    pss_mb: float | None
    app_pss_mb: float | None  # the whole app's: workers and its own server processes
    system_cpu_percent: float
    system_memory_used_mb: float
    database_rss_mb: float | None = None
    database_pss_mb: float | None = None


class Level(BaseModel):
    """What the runs compared with each other have in common: both apps' runs of it, in
    every repeat."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["idle", "closed", "open"]  # no load; as fast as answered; at a fixed rate
    scenario: str | None  # None when idle: no request at all
    workers: int
    connections: int | None  # closed: the connections; open: the most the generator opens
    rate: float | None = None  # open: requests per second asked
    fraction: float | None = None  # open: the share of the lower capacity it was set from
    pool_size: int | None = None  # launched with these database connections per worker


class Run(BaseModel):
    """One counted run against one app, with what the app spent."""

    level: Level
    app: str  # the port's app: flask or fastapi
    repeat: int  # from 1; with --launch, each repeat is a launch of its own
    order: int  # its place among all the comparison's runs, from 1
    seed: int | None  # of the open-loop arrivals: both apps of a pair get the same
    command: list[str]
    load: loadtools.LoadResult
    window_s: float  # between the readings before and after, by the app's own clock
    cpu_s: float  # the workers' process.cpu_time_s after minus before
    server_cpu_s: float | None  # the server's own processes, likewise
    # The database's processes, likewise, where it runs beside the apps; None where there
    # is none, or against DATABASE_URL's (not counted). Both apps share it: its CPU is the
    # loaded app's because the other app is idle meanwhile.
    database_cpu_s: float | None = None
    database_rss_mb_peak: float | None = None
    database_pss_mb_peak: float | None = None
    observer_cpu_s: float | None  # what /status and the sampler spent in the workers
    cpu_percent_avg: float  # cpu_s over the window: exact
    total_cpu_percent_avg: float
    cpu_percent_peak: float | None  # highest over one poll gap
    rss_mb_before: float
    rss_mb_after: float
    rss_mb_avg: float
    rss_mb_peak: float
    uss_mb_avg: float | None
    uss_mb_peak: float | None
    pss_mb_avg: float | None
    pss_mb_peak: float | None
    app_pss_mb_peak: float | None  # workers and the server's processes of this app alone
    system_cpu_percent_avg: float
    system_memory_used_mb_avg: float
    workers: int
    workers_changed: bool  # a worker was replaced during the run
    cores_usable: float  # by the app, as its /status says: bounds every CPU %
    load_tool_cpu_s: float
    load_tool_cores: int
    load_tool_busy: float  # share of its cores the tool kept busy
    rate_reached: float | None  # with a fixed rate: responses per second
    runner_cpu_s: float
    polls: list[Poll]
    poll_failures: int  # polls unanswered within 5 s: they wait in the app's queue like any request
    stats_summary: dict[str, Any] | None  # the app's own /stats view of the window

    @computed_field
    @property
    def total_cpu_s(self) -> float:
        """The workers', the server's and, where it runs beside the apps, the database's
        CPU seconds."""
        return round(self.cpu_s + (self.server_cpu_s or 0.0) + (self.database_cpu_s or 0.0), 6)

    @computed_field
    @property
    def net_cpu_s(self) -> float:
        """total_cpu_s less the observer's own (where the apps report it): the app's cost."""
        return round(self.total_cpu_s - (self.observer_cpu_s or 0.0), 6)

    @computed_field
    @property
    def cpu_s_per_1k(self) -> float | None:
        return per_1k(self.cpu_s, self.load.requests)

    @computed_field
    @property
    def total_cpu_s_per_1k(self) -> float | None:
        return per_1k(self.total_cpu_s, self.load.requests)

    @computed_field
    @property
    def database_cpu_s_per_1k(self) -> float | None:
        return per_1k(self.database_cpu_s, self.load.requests)

    @computed_field
    @property
    def served_per_s(self) -> float:
        """Responses per second of the window: the x of the cost line."""
        return self.load.requests / self.window_s if self.window_s > 0 else 0.0

    @computed_field
    @property
    def net_cores(self) -> float:
        """net_cpu_s per second of the window (1.0: one core kept busy): its y."""
        return self.net_cpu_s / self.window_s if self.window_s > 0 else 0.0

    @computed_field
    @property
    def observer_share(self) -> float | None:
        """The observer's CPU as a share of the app's whole CPU in the window."""
        if self.observer_cpu_s is None or self.total_cpu_s <= 0:
            return None
        return round(self.observer_cpu_s / self.total_cpu_s, 4)

    @computed_field
    @property
    def error_rate(self) -> float:
        """The share of attempts that failed or answered outside 2xx (0 when idle; 1 with
        requests and no answer at all)."""
        attempts = self.load.requests + self.load.errors
        if self.level.kind == "idle":
            return 0.0
        return (self.load.errors + self.load.non_2xx) / attempts if attempts else 1.0

    @computed_field
    @property
    def rss_growth_mb(self) -> float:
        return round(self.rss_mb_after - self.rss_mb_before, 2)

    @computed_field
    @property
    def tool_bound(self) -> bool:
        """The tool kept TOOL_BOUND_SHARE of its cores busy, or sent late: req/s and
        latency may be the tool's."""
        return self.load_tool_busy >= TOOL_BOUND_SHARE or bool(self.load.generator_missed)

    @computed_field
    @property
    def rate_missed(self) -> bool:
        """The app answered less than the scheduled rate, by more than RATE_TOLERANCE."""
        if self.level.kind != "open" or self.rate_reached is None:
            return False
        scheduled = self.load.rate_scheduled or self.level.rate or 0.0
        return self.rate_reached < (1 - RATE_TOLERANCE) * scheduled


def per_1k(cpu_s: float | None, requests: int) -> float | None:
    """CPU-seconds per 1,000 responses; None without responses."""
    return round(cpu_s / requests * 1000, 5) if requests and cpu_s is not None else None


class Poller(threading.Thread):
    """Reads /status every `interval_s` until stopped; the runner's only work during a run."""

    def __init__(self, url: str, interval_s: float, origin: float, before: Snapshot, on_poll=None):
        super().__init__(daemon=True)
        self.url, self.interval_s, self.origin, self.on_poll = url, interval_s, origin, on_poll
        self.before = before
        self.polls: list[Poll] = []
        self.failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=5) as client:
            # The first poll one interval after `before`, not at once: a poll at once
            # would measure CPU over the few milliseconds since `before` was answered.
            deadline = time.monotonic() + self.interval_s
            previous = self.before
            while not self._done.wait(max(0.0, deadline - time.monotonic())):
                deadline += self.interval_s
                try:
                    snapshot = status(client, self.url)
                except TargetError:
                    self.failures += 1
                    continue
                self.polls.append(self._poll(previous, snapshot))
                previous = snapshot
                if self.on_poll:
                    self.on_poll()

    def _poll(self, previous: Snapshot, now: Snapshot) -> Poll:
        # The gap is timed by the app's own clock at the instant of each reading: under
        # load a /status answer may wait in the queue for a while after it.
        gap_s = now.timestamp - previous.timestamp
        limit = now.system.cpu_usable_cores
        cpu = server = None
        if gap_s > 0:
            cpu = cpu_percent(now.process.cpu_time_s - previous.process.cpu_time_s, gap_s, limit)
            if now.server and previous.server:
                server = cpu_percent(
                    now.server.cpu_time_s - previous.server.cpu_time_s, gap_s, limit
                )
        return Poll(
            t_s=round(time.monotonic() - self.origin, 3),
            timestamp=now.timestamp,
            cpu_time_s=now.process.cpu_time_s,
            cpu_percent=cpu,
            server_cpu_percent=server,
            rss_mb=now.process.rss_mb,
            uss_mb=now.process.uss_mb,
            pss_mb=now.process.pss_mb,
            app_pss_mb=now.app_pss_mb,
            system_cpu_percent=now.system.cpu_percent,
            system_memory_used_mb=now.system.memory_used_mb,
            database_rss_mb=now.database.rss_mb if now.database else None,
            database_pss_mb=now.database.pss_mb if now.database else None,
        )

    def stop(self) -> list[Poll]:
        self._done.set()
        self.join(10)
        return self.polls


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


def idle(duration_s: float) -> tuple[loadtools.LoadResult, float]:
    """No load for duration_s: what an idle run measures against."""
    time.sleep(duration_s)
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
    poller = Poller(url, plan.poll_s, origin, before, on_poll)
    poller.start()
    try:
        if level.kind == "idle":
            load, tool_cpu_s = idle(plan.duration_s)
        else:
            tool = loadtools.OPEN_LOOP if level.kind == "open" else plan.tool
            load, tool_cpu_s = run_load(argv, tool, plan.duration_s)
    finally:
        polls = poller.stop()
    after = status(client, url)
    # The app's own view: its sampler's samples taken during this run, summarised.
    stats = client.get(url + "/stats").json()
    in_run = [s for s in stats["samples"] if s["timestamp"] >= before.timestamp]
    window_s = after.timestamp - before.timestamp
    limit = after.system.cpu_usable_cores
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
        observer_cpu_s=_delta(after.process.observer_cpu_s, before.process.observer_cpu_s),
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
        poll_failures=poller.failures,
        stats_summary=summarize(in_run) if in_run else None,
    )
