"""The database the app queries, as /status reports it: its pool, and where it runs beside
the apps (the PostgreSQL that up.sh started) its processes, the postmaster and its children
(backends and background workers), found from its socket's lock file, whose first line is
the postmaster's pid.

Both apps share that one server: like Unit's router, its CPU during a run is the loaded
app's only while the other app is idle. Against DATABASE_URL (another server, maybe
another machine's, maybe serving others) nothing is counted.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

import psutil

from metrics.cpu import process_cpu_s, reaped_s
from metrics.processes import children
from metrics.schema import MB, DatabaseFigures
from serve.database_config import DatabaseConfig

# PSS walks every page each process maps (PostgreSQL's shared buffers included): some
# 0.5 ms per process, too much for every /status that the comparison polls each second.
# Memory changes slowly, so it is read again after this long; CPU, cheap, on every call.
MEMORY_TTL_S = 5.0


@functools.cache
def database_config() -> DatabaseConfig:
    """The app's database settings: the same environment its pools were made from."""
    return DatabaseConfig.from_env()


def postmaster_pid(lock_file: Path) -> int | None:
    """The pid on the lock file's first line; None while the server is down."""
    try:
        with lock_file.open() as lock:
            return int(lock.readline())
    except (OSError, ValueError):
        return None


def _live_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process_cpu_s(process)
    return total


def cpu_s(processes: list[psutil.Process]) -> float:
    """CPU seconds of the server's processes (the postmaster first), those ended included:
    it never decreases while the server runs. Live ones are read from their CPU clocks, to
    the nanosecond, as the workers are (metrics.cpu); ended ones from the postmaster's
    reaped-children counters. A backend reaped during the reads would be counted twice
    or not at all, so they are repeated until the reaped total holds still."""
    postmaster = processes[0]
    reaped = reaped_s(postmaster)
    for _ in range(3):
        live = _live_s(processes)
        reaped_after = reaped_s(postmaster)
        if reaped_after == reaped:
            break
        reaped = reaped_after
    return live + reaped


_memory_seen: tuple[float, tuple[int, ...], float, float | None] | None = None


def memory_mb(processes: list[psutil.Process]) -> tuple[float, float | None]:
    """RSS and PSS (None where the kernel denies it) summed over the processes, read again
    after MEMORY_TTL_S or when the processes change."""
    global _memory_seen
    pids = tuple(process.pid for process in processes)
    now = time.monotonic()
    seen = _memory_seen
    if seen and seen[1] == pids and now - seen[0] < MEMORY_TTL_S:
        return seen[2], seen[3]
    rss = pss = 0
    pss_known = True
    for process in processes:
        try:
            try:
                memory = process.memory_full_info()
                pss += memory.pss
            except psutil.AccessDenied:  # another user's: the kernel shows its RSS only
                pss_known = False
                memory = process.memory_info()
        except psutil.NoSuchProcess:
            continue
        rss += memory.rss
    found = (round(rss / MB, 2), round(pss / MB, 2) if pss_known else None)
    _memory_seen = (now, pids, *found)
    return found


def database_figures() -> DatabaseFigures | None:
    """The database block of a Snapshot: None without a database."""
    config = database_config()
    if config.url is None:
        return None
    pool = {"pool_size": config.pool_size, "pools": config.event_loops}
    pid = postmaster_pid(config.lock_file) if config.lock_file else None
    if pid is None:
        return DatabaseFigures(counted=config.lock_file is not None, **pool)
    try:
        processes = [psutil.Process(pid)]
        for child in children(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                processes.append(psutil.Process(child))
        cpu_time_s = cpu_s(processes)
    except psutil.Error:  # the postmaster is gone: the server is down
        return DatabaseFigures(counted=True, **pool)
    rss_mb, pss_mb = memory_mb(processes)
    return DatabaseFigures(
        counted=True,
        **pool,
        processes=len(processes),
        pids=[process.pid for process in processes],
        cpu_time_s=round(cpu_time_s, 3),
        rss_mb=rss_mb,
        pss_mb=pss_mb,
    )
