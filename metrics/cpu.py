"""CPU counters: the system's, the workers' (live and reaped) and the server's, read together.

Two readings make a window; every CPU percentage is computed over one, never from
psutil's shared `cpu_percent()` reference, so that /status readers and the
sampler cannot disturb each other.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import psutil

from metrics.processes import Roles, forget_roles


@dataclass(frozen=True)
class CpuReading:
    """Cumulative CPU counters, all read at the instant `t_mono`; two of them make a window."""

    t_mono: float
    wall: float  # the same instant on the wall clock
    system_busy_s: float
    system_total_s: float
    app_s: float  # the workers, live and exited: never decreases
    server_s: float


def _system_cpu_s() -> tuple[float, float]:
    """Busy and total CPU seconds of all cores since boot."""
    times = psutil.cpu_times()
    total = sum(times)
    # On Linux guest time is already counted in user time (as psutil does).
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _reaped_s(parent: psutil.Process | None) -> float:
    """CPU seconds of the parent's children that exited and were reaped: dead workers."""
    if parent is None:
        return 0.0
    times = parent.cpu_times()
    return times.children_user + times.children_system


def read_cpu(roles: Roles) -> CpuReading:
    """Every CPU counter, with the instant they were read at.

    The instant is the middle of the reads, which take well under a millisecond
    unless the thread is preempted; a window between two readings is then exact to
    within half of each read's span, not to the wait before a later clock read.
    A worker reaped during the reads would be counted twice or not at all, so the
    reads are repeated until the parent's reaped total holds still.
    """
    started, wall = time.monotonic(), time.time()
    busy, total = _system_cpu_s()
    reaped = _reaped_s(roles.parent)
    for _ in range(3):
        live = 0.0
        for worker in roles.workers:
            try:
                live += _cpu_s(worker)
            except psutil.NoSuchProcess:
                forget_roles()
        reaped_after = _reaped_s(roles.parent)
        if reaped_after == reaped:
            break
        reaped = reaped_after
    server = 0.0
    for process in roles.server:
        with contextlib.suppress(psutil.NoSuchProcess):
            server += _cpu_s(process)
    middle = (started + time.monotonic()) / 2
    return CpuReading(middle, wall + (middle - started), busy, total, live + reaped, server)
