"""What one counted run records (compare/measure.py makes it): its level, the app's
counters and polls, and the figures derived from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from compare import loadtools

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
    # Where the CPU figures were read: "status", the apps' own /status at the window's
    # edges; "outside", the idle run's, the kernel's CPU clock of each of the apps'
    # processes read by the runner, with no request to them during the window.
    cpu_read: Literal["status", "outside"] = "status"
    # The machine's steal time in the window, as a share of all its cores' time: the
    # hypervisor running others on these cores (None where the kernel does not say).
    steal_share: float | None = None
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
