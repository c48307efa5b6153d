"""The contract between the apps and the runner: what /status and /stats answer.

The apps answer with these models and the runner (compare/) reads them back, so
this module imports neither psutil nor the sampler: `import metrics.schema`
costs pydantic alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

MB = 1024 * 1024  # the unit of every *_mb figure (MiB)


class Cgroup(BaseModel):
    """The limits the kernel enforces on this process's cgroup (null: no limit)."""

    version: int
    memory_limit_mb: float | None
    memory_usage_mb: float | None
    cpu_quota_cores: float | None


class SystemFigures(BaseModel):
    cpu_percent: float = Field(description="busy share of all cores, 0-100")
    cpu_count: int
    cpu_affinity: list[int] = Field(description="the cores this app may run on")
    cpu_usable_cores: float = Field(
        description="the most cores the app can use: its affinity, or its cgroup quota if"
        " tighter; no CPU % of the app exceeds 100 times this"
    )
    memory_percent: float
    memory_used_mb: float
    memory_available_mb: float
    memory_total_mb: float
    cgroup: Cgroup | None


class ProcessFigures(BaseModel):
    pid: int = Field(description="the process that answered")
    workers: int
    pids: list[int]
    cpu_percent: float = Field(description="of one core, summed over workers, as top shows it")
    cpu_time_s: float = Field(
        description="cumulative user+system seconds of the workers, those that exited"
        " included: it never decreases"
    )
    rss_mb: float
    vms_mb: float
    uss_mb: float | None = Field(description="null where the kernel denies it")
    pss_mb: float | None = Field(description="shared pages split among their users")
    num_threads: int


class ServerFigures(BaseModel):
    """The server's own processes around the workers: granian's master; NGINX Unit's
    main, controller and router, and the app's prototype."""

    pids: list[int]
    names: list[str]
    cpu_percent: float
    cpu_time_s: float
    rss_mb: float


class DatabaseFigures(BaseModel):
    """The database the app queries: its pool, and where it runs beside the apps (the
    PostgreSQL that up.sh started, which both apps share) its processes, the postmaster
    and its children; their figures are null while it is down, and never counted against
    DATABASE_URL's server."""

    counted: bool = Field(description="false against DATABASE_URL: its cost is not counted")
    pool_size: int = Field(description="connections per worker")
    pools: int = Field(
        description="pools per worker, the connections split evenly: one per event loop"
    )
    processes: int | None = None
    pids: list[int] = Field(default_factory=list)
    cpu_time_s: float | None = Field(
        None,
        description="cumulative user+system seconds of the postmaster and its children,"
        " those that ended included",
    )
    rss_mb: float | None = Field(None, description="summed: shared memory counted in each")
    pss_mb: float | None = Field(None, description="null where the kernel denies it")


class Snapshot(BaseModel):
    timestamp: float
    time: datetime
    cpu_window_s: float = Field(description="the window the CPU percentages cover")
    system: SystemFigures
    process: ProcessFigures
    server: ServerFigures | None = Field(description="null where no server forked the app")
    database: DatabaseFigures | None = Field(None, description="null without a database")


class Stats(BaseModel):
    interval_s: float
    slots: int
    window_s: float = Field(description="the span the requested slots cover")
    count: int
    samples: list[Snapshot]
    summary: dict[str, Any] | None = Field(description="min, max and avg of every figure")


def stats_query(slots: int) -> type[BaseModel]:
    """The query model of /stats: `last` may ask for 1..slots samples."""
    return create_model(
        "StatsQuery",
        __config__=ConfigDict(extra="forbid"),
        last=(int | None, Field(None, ge=1, le=slots)),
    )


def cpu_percent(cpu_s: float, window_s: float, limit: float) -> float:
    """CPU seconds over a window as % of one core, never over what `limit` cores can give.

    Every CPU % of a Snapshot is this of two readings of its counters; the runner
    applies it to two snapshots in turn, so that both measure CPU the same way.
    The kernel counts CPU time in clock ticks (10 ms), so a busy app's counters can run
    a tick ahead of a short window; that tick is all the bound ever removes.
    """
    return round(min(100 * cpu_s / window_s, 100 * limit), 2)
