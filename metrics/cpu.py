"""CPU counters: the system's, the workers' (live and reaped) and the server's, read together.

Two readings make a window; every CPU percentage is computed over one, never from
psutil's shared `cpu_percent()` reference, so that /status readers and the
sampler cannot disturb each other.

A live process's CPU time is read from Linux's CPU clock of that process, in
nanoseconds: /proc/<pid>/stat (psutil's cpu_times) counts in 10 ms clock ticks,
which is 5-8% of a server's CPU in a short run at a low rate. The clock counts
every thread of the process, exited ones included, as the scheduler accounts
them (the same sum that /proc/<pid>/stat rounds down to ticks), and the kernel
lets any user read it: a worker running as `unit` reads Unit's main, run by root.
Where the kernel refuses the clock, psutil's ticks stand in. Workers that exited
are counted by their parent's reaped-children counters, which the kernel gives in
ticks only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass

import psutil

from metrics.clock import cpu_clock_id
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


def process_cpu_s(process: psutil.Process) -> float:
    """The process's CPU seconds so far, to the nanosecond where the kernel allows.

    psutil.NoSuchProcess where it is gone (the clock's EINVAL says only that it cannot
    be read, so psutil is asked which).
    """
    try:
        return time.clock_gettime(cpu_clock_id(process.pid))
    except OSError:
        times = process.cpu_times()
        return times.user + times.system


def reaped_s(parent: psutil.Process | None) -> float:
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

    The workers' total never decreases as this process sees it: when a worker is
    reaped, its nanosecond count moves into its parent's tick counts, which are
    rounded down, so the sum could step back by less than two ticks; it holds at its
    highest until it has caught up.
    """
    started, wall = time.monotonic(), time.time()
    busy, total = _system_cpu_s()
    reaped = reaped_s(roles.parent)
    for _ in range(3):
        live = 0.0
        for worker in roles.workers:
            try:
                live += process_cpu_s(worker)
            except psutil.NoSuchProcess:
                forget_roles()
        reaped_after = reaped_s(roles.parent)
        if reaped_after == reaped:
            break
        reaped = reaped_after
    server = 0.0
    for process in (*roles.server, *roles.shared):
        with contextlib.suppress(psutil.NoSuchProcess):
            server += process_cpu_s(process)
    middle = (started + time.monotonic()) / 2
    owner = (roles.parent or roles.workers[0]).pid  # whose workers these are
    return CpuReading(
        middle,
        wall + (middle - started),
        busy,
        total,
        _highest(("app", owner), live + reaped),
        _highest(("server", owner), server),
    )


_highest_seen: dict[tuple[str, int], float] = {}
_highest_lock = threading.Lock()


def _forget_highest() -> None:
    """In a forked child: what its parent read is not its own to hold."""
    global _highest_lock
    _highest_lock = threading.Lock()
    _highest_seen.clear()


os.register_at_fork(after_in_child=_forget_highest)


def _highest(counter: tuple[str, int], value: float) -> float:
    """`value`, or the highest this process has read of `counter` if that is higher."""
    with _highest_lock:
        value = max(value, _highest_seen.get(counter, 0.0))
        _highest_seen[counter] = value
    return value
