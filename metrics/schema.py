"""The contract between the apps and the runner: what /status and /stats answer.

The apps answer with these models and the runner (compare/) reads them back, so
this module imports neither psutil nor the sampler: `import metrics.schema`
costs pydantic alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, create_model

MB = 1024 * 1024  # the unit of every *_mb figure (MiB)


class Cgroup(BaseModel):
    """The limits the kernel enforces on this process's cgroup (null: no limit)."""

    version: int = Field(description="the cgroup version found: 2 or 1")
    memory_limit_mb: float | None = Field(description="the tightest memory limit on the way up")
    memory_usage_mb: float | None = Field(
        description="the cgroup's memory in use: inside a container, the container's, where"
        " psutil's memory figures are the host's"
    )
    cpu_quota_cores: float | None = Field(
        description="the tightest CPU quota on the way up, in cores (1.5: one and a half)"
    )


class SystemFigures(BaseModel):
    cpu_percent: float = Field(description="busy share of all cores, 0-100")
    cpu_count: int = Field(description="logical cores of the machine")
    cpu_affinity: list[int] = Field(
        description="the cores this app may run on (a container's --cpuset-cpus, taskset)"
    )
    cpu_usable_cores: float = Field(
        description="the most cores the app can use: its affinity, or its cgroup quota if"
        " tighter; no CPU % of the app exceeds 100 times this"
    )
    memory_percent: float = Field(description="the machine's memory in use, 0-100")
    memory_used_mb: float
    memory_available_mb: float
    memory_total_mb: float
    cgroup: Cgroup | None = Field(description="null where there are no cgroups")


class ProcessFigures(BaseModel):
    pid: int = Field(description="the process that answered")
    workers: int = Field(description="the app's live worker processes: the figures sum them")
    pids: list[int]
    cpu_percent: float = Field(
        description="of one core, summed over workers, as top shows it: 100 is one core busy"
    )
    cpu_time_s: float = Field(
        description="cumulative CPU seconds of the workers, those that exited included: it"
        " never decreases. Live workers to the microsecond (Linux's per-process CPU clock),"
        " exited ones in the kernel's 10 ms ticks"
    )
    observer_cpu_s: float | None = Field(
        description="the part of cpu_time_s the workers spent observing themselves:"
        " cumulative CPU seconds of their sampler threads' snapshots and of answering"
        " /status and /stats (the snapshot or the buffer's JSON; not the framework's"
        " routing around it), each timed with its thread's CPU clock, summed over every"
        " worker of the app, those that exited included; null where the workers cannot"
        " share their figures (no writable /dev/shm)"
    )
    rss_mb: float = Field(description="resident memory, shared pages counted once per worker")
    vms_mb: float
    uss_mb: float | None = Field(
        description="memory unique to the workers (what stopping them frees); null where the"
        " kernel denies it"
    )
    pss_mb: float | None = Field(
        description="the workers' proportional set size: shared pages split among their"
        " users; null where the kernel denies it"
    )
    num_threads: int


class ServerFigures(BaseModel):
    """The server's own processes around the workers: granian's master; NGINX Unit's
    main, controller and router, and the app's prototype."""

    pids: list[int] = Field(description="all of them: this app's own, then shared_pids")
    names: list[str] = Field(description="their titles, in the order of pids")
    cpu_percent: float = Field(
        description="Unit's router parses HTTP for both apps: its CPU is this app's only while"
        " the other app is idle, as in ./compare.sh, which loads one at a time"
    )
    cpu_time_s: float = Field(
        description="cumulative CPU seconds of all of them, to the microsecond (Linux's"
        " per-process CPU clock): it never decreases"
    )
    rss_mb: float = Field(description="of all of them")
    pss_mb: float | None = Field(
        description="PSS of the server's processes that serve this app alone (granian's"
        " master; Unit's prototype of this app); null where the kernel denies it: in the"
        " Unit image the prototype changed user from root, which leaves it unreadable to"
        " the app's own user"
    )
    shared_pids: list[int] = Field(
        description="the server's processes that serve both apps (Unit's main, controller"
        " and router); none under granian"
    )
    shared_pss_mb: float | None = Field(
        description="their PSS together, which neither app owns alone; 0 where there are"
        " none, null where the kernel denies it (in the Unit image: main runs as root, the"
        " others changed user from root)"
    )


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
    processes: int | None = Field(None, description="the postmaster and its children")
    pids: list[int] = Field(
        default_factory=list,
        description="the postmaster (the first line of its socket's lock file) first, then"
        " its children: backends and background processes",
    )
    cpu_time_s: float | None = Field(
        None,
        description="cumulative CPU seconds of them all, backends that ended included, to the"
        " microsecond where the kernel allows: it never decreases while the server runs",
    )
    rss_mb: float | None = Field(None, description="summed: shared buffers counted in each")
    pss_mb: float | None = Field(
        None,
        description="read at most every 5 s; null where the kernel denies it: in the Unit"
        " image the apps run as unit, PostgreSQL as postgres",
    )


class Snapshot(BaseModel):
    timestamp: float = Field(description="when the CPU counters were read: unix seconds")
    time: datetime = Field(description="the same instant, ISO 8601 in UTC")
    cpu_window_s: float = Field(
        description="the window every CPU percentage covers: since the sampler's previous"
        " sample, or for /status the newest sample at least 1 s old"
    )
    system: SystemFigures
    process: ProcessFigures
    server: ServerFigures | None = Field(description="null where no server forked the app")
    database: DatabaseFigures | None = Field(None, description="null without a database")

    @computed_field(
        description="the PSS of the whole app: its workers and the server's processes that"
        " serve it alone (process.pss_mb + server.pss_mb; server.shared_pss_mb not in it);"
        " null where the kernel denies either"
    )
    @property
    def app_pss_mb(self) -> float | None:
        own = self.process.pss_mb
        server = self.server.pss_mb if self.server else 0.0
        return None if own is None or server is None else round(own + server, 2)


class Stats(BaseModel):
    interval_s: float = Field(description="seconds between samples (METRICS_INTERVAL)")
    slots: int = Field(description="samples the buffer keeps (METRICS_SLOTS)")
    window_s: float = Field(description="the span the requested slots cover")
    count: int = Field(description="samples in this answer, so far")
    samples: list[Snapshot] = Field(description="oldest first")
    summary: dict[str, Any] | None = Field(
        description="min, max and avg of every numeric figure of the samples, nested as they"
        " are (identifiers such as pid left out); null while there are none"
    )


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
