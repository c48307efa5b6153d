"""Linux's CPU clock of a whole process, in nanoseconds, which any user may read: the apps'
sampler reads their workers' CPU by it (metrics/cpu.py), and the runner an idle app's from
outside the app (compare/measure.py). No psutil: the runner imports this."""

from __future__ import annotations


def cpu_clock_id(pid: int) -> int:
    """The id of Linux's CPU clock of a whole process: MAKE_PROCESS_CPUCLOCK(pid,
    CPUCLOCK_SCHED), the scheduler's runtime of its whole thread group."""
    return ((~pid) << 3) | 2
