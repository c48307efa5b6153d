"""A Snapshot: the system's, the workers' and the server's figures, with CPU % over a window.

The window runs from the reading given; the very first call has none to give:

    _, reading = take_snapshot(None)              # the first reading: no window yet
    snapshot, reading = take_snapshot(reading)    # the figures since that reading
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import psutil

from metrics.cgroup import read_cgroup
from metrics.cpu import CpuReading, read_cpu
from metrics.database import database_figures
from metrics.observer import ObserverCost
from metrics.processes import Roles, current_roles, forget_roles
from metrics.schema import (
    MB,
    Cgroup,
    ProcessFigures,
    ServerFigures,
    Snapshot,
    SystemFigures,
    cpu_percent,
)


def usable_cores(affinity: list[int], cgroup: Cgroup | None) -> float:
    """The most cores the app can keep busy: its affinity, or its CPU quota if tighter."""
    quota = cgroup.cpu_quota_cores if cgroup else None
    return min(len(affinity), quota) if quota else float(len(affinity))


def _worker_figures(workers: tuple[psutil.Process, ...]) -> dict[str, Any]:
    """Memory and threads summed over the workers still alive."""
    rss = vms = uss = pss = threads = 0
    full_known = True
    pids = []
    for worker in workers:
        try:
            try:
                full = worker.memory_full_info()
                uss += full.uss
                pss += full.pss
            except psutil.AccessDenied:
                full_known = False
                full = worker.memory_info()
            threads += worker.num_threads()
        except psutil.NoSuchProcess:
            forget_roles()
            continue
        rss += full.rss
        vms += full.vms
        pids.append(worker.pid)
    return {
        "workers": len(pids),
        "pids": sorted(pids),
        "rss_mb": round(rss / MB, 2),
        "vms_mb": round(vms / MB, 2),
        "uss_mb": round(uss / MB, 2) if full_known else None,
        "pss_mb": round(pss / MB, 2) if full_known else None,
        "num_threads": threads,
    }


def _memory(processes: tuple[psutil.Process, ...]) -> tuple[int, int | None]:
    """RSS and PSS bytes summed over the processes still alive; PSS None where the kernel
    denies it for any of them (another user's, or one that is not dumpable)."""
    rss, pss = 0, 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            try:
                full = process.memory_full_info()
                pss = None if pss is None else pss + full.pss
            except psutil.AccessDenied:
                full = process.memory_info()
                pss = None
            rss += full.rss
    return rss, pss


def _server_figures(
    roles: Roles, cpu_s: float, reference: CpuReading, window_s: float, limit: float
) -> ServerFigures | None:
    if not roles.server:
        return None
    own_rss, own_pss = _memory(roles.server)
    shared_rss, shared_pss = _memory(roles.shared)
    return ServerFigures(
        pids=[process.pid for process in (*roles.server, *roles.shared)],
        names=list(roles.names),
        cpu_percent=cpu_percent(cpu_s - reference.server_s, window_s, limit),
        cpu_time_s=round(cpu_s, 6),
        rss_mb=round((own_rss + shared_rss) / MB, 2),
        pss_mb=None if own_pss is None else round(own_pss / MB, 2),
        shared_pids=[process.pid for process in roles.shared],
        shared_pss_mb=None if shared_pss is None else round(shared_pss / MB, 2),
    )


def take_snapshot(
    reference: CpuReading | None,
    roles: Roles | None = None,
    observer: ObserverCost | None = None,
) -> tuple[Snapshot | None, CpuReading]:
    """A Snapshot with CPU figures over the window since `reference`, and the new reading.

    Without a reference (the very first call) there is no window yet: only the
    reading comes back. The observer's cost is that of the sampler's `observer`
    (None without one).
    """
    roles = roles or current_roles()
    if observer:
        observer.join(roles)
    reading = read_cpu(roles)
    if reference is None:
        return None, reading
    window_s = reading.t_mono - reference.t_mono
    cgroup = read_cgroup()
    affinity = sorted(os.sched_getaffinity(0))
    limit = usable_cores(affinity, cgroup)
    system_total_s = reading.system_total_s - reference.system_total_s
    system_busy_s = reading.system_busy_s - reference.system_busy_s
    system_percent = 100 * system_busy_s / system_total_s if system_total_s > 0 else 0.0
    memory = psutil.virtual_memory()
    snapshot = Snapshot(
        timestamp=round(reading.wall, 3),
        time=datetime.fromtimestamp(reading.wall, UTC),
        cpu_window_s=round(window_s, 3),
        system=SystemFigures(
            cpu_percent=round(system_percent, 2),
            cpu_count=psutil.cpu_count() or 1,
            cpu_affinity=affinity,
            cpu_usable_cores=limit,
            memory_percent=memory.percent,
            memory_used_mb=round(memory.used / MB, 2),
            memory_available_mb=round(memory.available / MB, 2),
            memory_total_mb=round(memory.total / MB, 2),
            cgroup=cgroup,
        ),
        process=ProcessFigures(
            pid=os.getpid(),
            cpu_percent=cpu_percent(reading.app_s - reference.app_s, window_s, limit),
            cpu_time_s=round(reading.app_s, 6),
            observer_cpu_s=observer.total_s(roles) if observer else None,
            **_worker_figures(roles.workers),
        ),
        server=_server_figures(roles, reading.server_s, reference, window_s, limit),
        database=database_figures(),
    )
    return snapshot, reading
