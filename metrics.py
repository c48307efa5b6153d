"""The figures both apps report: a background sampler, its ring buffer and the schema.

A Sampler takes a Snapshot of system and process figures every METRICS_INTERVAL
seconds (default 10) into a ring buffer of METRICS_SLOTS (default 60), so that
/stats covers the last ten minutes; /status is a fresh Snapshot taken on demand.

    sampler = start_sampler()          # once per process; idempotent, fork-safe
    sampler.status().process.rss_mb    # a figure measured now
    sampler.stats(last=6).summary      # min, max and avg of the last six samples

Every CPU percentage is computed from cumulative counters over a window of known
length (`cpu_window_s`), never from psutil's shared `cpu_percent()` reference, so
that /status readers and the sampler cannot disturb each other.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field, create_model

# The METRICS_* settings and their rules have one home, serving's configuration, which
# start.sh runs with a bare python3 before it builds anything.
from serve.config import MAX_SLOTS, ConfigError, MetricsConfig  # noqa: F401 (re-exported)

log = logging.getLogger("metrics")

MB = 1024 * 1024
# The first sample comes this soon after start, so /stats is not empty for a
# whole interval and its CPU figures cover a real window instead of psutil's 0.0.
FIRST_SAMPLE_S = 1.0
# /status measures CPU against the newest reference at least this old.
MIN_STATUS_WINDOW_S = 1.0
# No CPU percentage is measured over less than this.
SHORTEST_WINDOW_S = 0.1
# The processes serving the app are looked for again after this long, or at once
# when one of them is gone.
ROLES_TTL_S = 1.0
# Whether this kernel lists each thread's children in /proc (CONFIG_PROC_CHILDREN).
HAS_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
# NGINX Unit's own processes beside the apps' prototypes, by title.
UNIT_SERVER_TITLES = ("unit: controller", "unit: router")
# cgroup v1 reports "no limit" as a huge page-aligned number.
CGROUP_V1_UNLIMITED = 2**60
# Keys of a sample that are identifiers or labels, not figures to summarise.
NOT_FIGURES = frozenset({"timestamp", "time", "pid", "pids", "version", "cpu_affinity"})


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


class Snapshot(BaseModel):
    timestamp: float
    time: datetime
    cpu_window_s: float = Field(description="the window the CPU percentages cover")
    system: SystemFigures
    process: ProcessFigures
    server: ServerFigures | None = Field(description="null where no server forked the app")


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


def _title(pid: int) -> str:
    """A process's command line as one string; "" for a zombie or a process gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """The pids of a process's children, from the kernel's own per-thread lists.

    psutil's children() reads every process on the machine to find them; these
    files name them directly (Linux 3.5 and later, CONFIG_PROC_CHILDREN).
    """
    if not HAS_PROC_CHILDREN:
        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process(pid).children()]
        return []
    pids = []
    with contextlib.suppress(OSError):  # the process is gone
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as kids:
                pids += [int(child) for child in kids.read().split()]  # (a thread may end)
    return pids


def is_worker_of(title: str, parent_title: str) -> bool:
    """Whether a process titled `title` is one of several workers of `parent_title`.

    Fork-based servers (granian, gunicorn) give workers the master's command
    line; NGINX Unit forks `unit: "<app>" application` processes from the
    app's `unit: "<app>" prototype`.
    """
    if title == parent_title:
        return True
    return title.endswith('" application') and parent_title == (
        title.removesuffix(" application") + " prototype"
    )


@dataclass(frozen=True)
class Roles:
    """The processes that serve this app, as seen from one of its workers."""

    workers: tuple[psutil.Process, ...]  # this process first
    parent: psutil.Process | None  # the master or prototype that forks and reaps the workers
    server: tuple[psutil.Process, ...]  # the server's own processes, the parent first
    names: tuple[str, ...]  # their titles


def find_roles(pid: int) -> Roles:
    """The workers and server processes around `pid` (a lone process: just itself)."""
    me = psutil.Process(pid)
    title = _title(pid)
    try:
        parent = psutil.Process(me.ppid())
    except psutil.Error:
        return Roles((me,), None, (), ())
    parent_title = _title(parent.pid)
    if not is_worker_of(title, parent_title):
        return Roles((me,), None, (), ())
    workers, server = [me], [parent]
    names = [parent_title if parent_title.startswith("unit: ") else "master"]
    for child in _children(parent.pid):
        if child != pid and _title(child) == title:
            with contextlib.suppress(psutil.NoSuchProcess):
                workers.append(psutil.Process(child))
    if parent_title.endswith('" prototype'):  # Unit: main above it, controller and router beside
        with contextlib.suppress(psutil.Error):
            main = psutil.Process(parent.ppid())
            server.append(main)
            names.append(_title(main.pid).partition(" [")[0])
            for child in _children(main.pid):
                if (child_title := _title(child)) in UNIT_SERVER_TITLES:
                    server.append(psutil.Process(child))
                    names.append(child_title)
    return Roles(tuple(workers), parent, tuple(server), tuple(names))


_roles_seen: tuple[int, float, Roles | None] = (0, 0.0, None)  # (pid, when, roles)


def current_roles() -> Roles:
    """find_roles(this process), found again after ROLES_TTL_S or when one is gone."""
    global _roles_seen
    pid, when, roles = _roles_seen
    now = time.monotonic()
    if roles is None or pid != os.getpid() or now - when > ROLES_TTL_S:
        roles = find_roles(os.getpid())
        _roles_seen = (os.getpid(), now, roles)
    return roles


def forget_roles() -> None:
    """Look for the processes again at the next reading: one of them is gone."""
    global _roles_seen
    _roles_seen = (0, 0.0, None)


@dataclass(frozen=True)
class CgroupDirs:
    """Where this process's cgroup figures live: found once, read on every snapshot."""

    version: int
    memory: tuple[Path, ...]  # the memory cgroup and each one above it
    cpu: tuple[Path, ...]  # likewise for cpu: a limit anywhere above applies


@functools.cache
def find_cgroup(sys_root: Path, proc_cgroup: Path) -> CgroupDirs | None:
    """This process's cgroup directories under sys_root (v2, else v1), or None."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path.lstrip("/")
    if (sys_root / "cgroup.controllers").exists():
        dirs = _up_to_root(sys_root, paths.get("", ""))
        return CgroupDirs(2, dirs, dirs)
    if "memory" in paths or "cpu" in paths:
        cpu_root = next(
            (sys_root / n for n in ("cpu", "cpu,cpuacct") if (sys_root / n).is_dir()),
            sys_root / "cpu",
        )
        return CgroupDirs(
            1,
            _up_to_root(sys_root / "memory", paths.get("memory", "")),
            _up_to_root(cpu_root, paths.get("cpu", "")),
        )
    return None


def _up_to_root(root: Path, path: str) -> tuple[Path, ...]:
    own = root / path
    # Inside a container without its own cgroup namespace, /proc/self/cgroup
    # names the host's path, but the container's cgroup is mounted at the root.
    if not (path and own.is_dir()):
        return (root,)
    return (own, *[parent for parent in own.parents if parent == root or root in parent.parents])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _tightest(limits: list[float]) -> float | None:
    return min(limits) if limits else None


def read_cgroup(
    sys_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> Cgroup | None:
    """The memory limit and usage and CPU quota of this process's cgroup (v2 or v1)."""
    dirs = find_cgroup(sys_root, proc_cgroup)
    if dirs is None:
        return None
    memory_limits, cpu_limits = [], []
    if dirs.version == 2:
        for directory in dirs.memory:
            memory_max = _read(directory / "memory.max")
            if memory_max not in (None, "max"):
                memory_limits.append(int(memory_max) / MB)
            cpu_max = _read(directory / "cpu.max")
            if cpu_max and not cpu_max.startswith("max"):
                quota, period = cpu_max.split()
                cpu_limits.append(int(quota) / int(period))
        usage = _read(dirs.memory[0] / "memory.current")
    else:
        for directory in dirs.memory:
            limit = _read(directory / "memory.limit_in_bytes")
            if limit and int(limit) < CGROUP_V1_UNLIMITED:
                memory_limits.append(int(limit) / MB)
        for directory in dirs.cpu:
            quota = _read(directory / "cpu.cfs_quota_us")
            period = _read(directory / "cpu.cfs_period_us")
            if quota and period and int(quota) > 0:
                cpu_limits.append(int(quota) / int(period))
        usage = _read(dirs.memory[0] / "memory.usage_in_bytes")
    return Cgroup(
        version=dirs.version,
        memory_limit_mb=_tightest(memory_limits),
        memory_usage_mb=round(int(usage) / MB, 2) if usage else None,
        cpu_quota_cores=_tightest(cpu_limits),
    )


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


def usable_cores(affinity: list[int], cgroup: Cgroup | None) -> float:
    """The most cores the app can keep busy: its affinity, or its CPU quota if tighter."""
    quota = cgroup.cpu_quota_cores if cgroup else None
    return min(len(affinity), quota) if quota else float(len(affinity))


def cpu_percent(cpu_s: float, window_s: float, limit: float) -> float:
    """CPU seconds over a window as % of one core, never over what `limit` cores can give.

    The kernel counts CPU time in clock ticks (10 ms), so a busy app's counters can run
    a tick ahead of a short window; that tick is all the bound ever removes.
    """
    return round(min(100 * cpu_s / window_s, 100 * limit), 2)


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


def _server_figures(
    roles: Roles, cpu_s: float, reference: CpuReading, window_s: float, limit: float
) -> ServerFigures | None:
    if not roles.server:
        return None
    rss = 0
    for process in roles.server:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += process.memory_info().rss
    return ServerFigures(
        pids=[process.pid for process in roles.server],
        names=list(roles.names),
        cpu_percent=cpu_percent(cpu_s - reference.server_s, window_s, limit),
        cpu_time_s=round(cpu_s, 3),
        rss_mb=round(rss / MB, 2),
    )


def take_snapshot(
    reference: CpuReading | None, roles: Roles | None = None
) -> tuple[Snapshot | None, CpuReading]:
    """A Snapshot with CPU figures over the window since `reference`, and the new reading.

    Without a reference (the very first call) there is no window yet: only the
    reading comes back.
    """
    roles = roles or current_roles()
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
            cpu_time_s=round(reading.app_s, 3),
            **_worker_figures(roles.workers),
        ),
        server=_server_figures(roles, reading.server_s, reference, window_s, limit),
    )
    return snapshot, reading


FigurePath = tuple[str, ...]


def figures(row: dict[str, Any]) -> dict[FigurePath, float | int | None]:
    """The numeric figures of a dumped snapshot by their path, None where a figure or
    a whole block is null; identifiers and labels (NOT_FIGURES) left out."""
    found: dict[FigurePath, float | int | None] = {}

    def walk(block: dict[str, Any], path: FigurePath) -> None:
        for key, value in block.items():
            if key in NOT_FIGURES:
                continue
            if isinstance(value, dict):
                walk(value, (*path, key))
            elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
                found[(*path, key)] = value

    walk(row, ())
    return found


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """min, max and avg of every numeric figure of `rows` (dumped snapshots), nested alike."""
    columns: dict[FigurePath, list[float | int]] = {}
    for row in rows:
        for path, value in figures(row).items():
            columns.setdefault(path, []).extend([] if value is None else [value])
    return summarize_columns(columns)


def summarize_columns(
    columns: dict[FigurePath, list[float | int]], integers: frozenset[FigurePath] = frozenset()
) -> dict[str, Any]:
    """min, max and avg of each column of figures, nested by path; a column with no
    values (its figure, or its block, null in every row) is null. The `integers` get
    integer min and max."""
    summary: dict[str, Any] = {}
    for path, values in columns.items():
        *parents, key = path
        block = summary
        for parent in parents:
            if block.get(parent) is None:  # a block null so far, or not met yet
                block[parent] = {}
            block = block[parent]
        if not values:
            block.setdefault(key, None)
            continue
        low, high = min(values), max(values)
        if path in integers:
            low, high = int(low), int(high)
        block[key] = {"min": low, "max": high, "avg": round(fmean(values), 3)}
    return summary


Row = tuple[bytes, tuple[FigurePath, ...], array]  # a sample's JSON, its figures' paths and values


class RingBuffer:
    """The newest `slots` samples, each kept as its JSON and its figures only: a
    fraction of a Snapshot's memory, and /stats needs no serialising."""

    def __init__(self, slots: int):
        self._rows: deque[Row] = deque(maxlen=slots)
        # The figures' paths, one tuple shared by every sample that has them: they
        # change only where a block is null in some samples and not in others.
        self._layouts: dict[tuple[FigurePath, ...], tuple[FigurePath, ...]] = {}
        # The paths of integer figures: their min and max stay integers.
        self._integers: frozenset[FigurePath] = frozenset()

    def append(self, snapshot: Snapshot) -> None:
        found = figures(snapshot.model_dump())
        layout = self._layouts.setdefault(tuple(found), tuple(found))
        integers = {path for path, value in found.items() if isinstance(value, int)}
        if not integers <= self._integers:
            self._integers |= integers
        values = array("d", [math.nan if v is None else v for v in found.values()])
        self._rows.append((snapshot.model_dump_json().encode(), layout, values))

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def newest(self, last: int | None = None) -> list[Row]:
        """The newest `last` rows (all by default), oldest first; the caller holds a lock."""
        rows = list(self._rows)
        return rows[-last:] if last else rows

    def summary(self, rows: list[Row]) -> dict[str, Any] | None:
        """summarize() of `rows` (from newest()), None for no rows."""
        if not rows:
            return None
        columns: dict[FigurePath, list[float]] = {}
        for layout, group in itertools.groupby(rows, key=lambda row: row[1]):
            for path, column in zip(
                layout, zip(*(row[2] for row in group), strict=True), strict=True
            ):
                # NaN stands for null, and is the one value not equal to itself.
                columns.setdefault(path, []).extend([v for v in column if v == v])
        return summarize_columns(columns, self._integers)


class Sampler:
    """Takes a Snapshot every `interval_s` into a ring buffer of `slots`, in a daemon thread."""

    def __init__(self, config: MetricsConfig):
        self.config = config
        self._lock = threading.Lock()
        self._samples = RingBuffer(config.slots)
        # The last two CPU readings: the sampler's window starts at the newest;
        # /status may need the one before when the newest is too recent.
        self._references: deque[CpuReading] = deque(maxlen=2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._fork_hook = False

    def start(self) -> Sampler:
        """Start the thread in this process, unless it already runs here."""
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return self
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
            if not self._fork_hook:
                os.register_at_fork(after_in_child=self._after_fork)
                self._fork_hook = True
        self._sample_once()  # the baseline reading
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)

    def _after_fork(self) -> None:
        # A forked child has no sampler thread, a copy of the parent's samples
        # and maybe a lock held by a thread that no longer exists: start afresh.
        if self._pid is None:
            return
        self._lock = threading.Lock()
        self._samples.clear()
        self._references.clear()
        self._thread = None
        self.start()

    def _run(self) -> None:
        interval_s = self.config.interval_s
        deadline = time.monotonic() + min(FIRST_SAMPLE_S, interval_s)
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            self._sample_once()
            # Deadlines follow a fixed grid, so the work of sampling adds no drift;
            # after a stall (suspend, overload) missed ticks are skipped, not bunched.
            deadline += interval_s
            behind_s = time.monotonic() - deadline
            if behind_s > 0:
                deadline += (behind_s // interval_s + 1) * interval_s

    def _sample_once(self) -> None:
        with self._lock:
            reference = self._references[-1] if self._references else None
        try:
            snapshot, reading = take_snapshot(reference)
        except Exception:  # the sampler must never take the app down
            log.exception("metrics: a sample failed; the sampler goes on")
            return
        with self._lock:
            if snapshot is not None:
                self._samples.append(snapshot)
            self._references.append(reading)

    def status(self) -> Snapshot:
        """A fresh Snapshot, its CPU window ending now; the sampler's state is not touched."""
        with self._lock:
            references = list(self._references)
        now = time.monotonic()
        old_enough = [r for r in references if now - r.t_mono >= MIN_STATUS_WINDOW_S]
        reference = old_enough[-1] if old_enough else (references[0] if references else None)
        if reference is None:  # never started, or psutil failed at start
            _, reference = take_snapshot(None)
        age_s = time.monotonic() - reference.t_mono
        if age_s < SHORTEST_WINDOW_S:
            # Only in the first moments after start: a window of a few microseconds
            # would give noise, so wait until it is long enough to mean something.
            time.sleep(SHORTEST_WINDOW_S - age_s)
        snapshot, _ = take_snapshot(reference)
        assert snapshot is not None
        return snapshot

    def samples(self, last: int | None = None) -> list[Snapshot]:
        """A consistent copy of the newest `last` samples (all by default), oldest first."""
        with self._lock:
            rows = self._samples.newest(last)
        return [Snapshot.model_validate_json(sample_json) for sample_json, _, _ in rows]

    def stats(self, last: int | None = None) -> Stats:
        """The newest `last` samples (all by default) with their summary."""
        return Stats.model_validate_json(self.stats_json(last))

    def stats_json(self, last: int | None = None) -> bytes:
        """stats(last) as JSON, made without parsing or serialising a sample: /stats of a
        full buffer at MAX_SLOTS stays small and quick."""
        with self._lock:
            rows = self._samples.newest(last)
        head = Stats(
            interval_s=self.config.interval_s,
            slots=self.config.slots,
            window_s=round((last or self.config.slots) * self.config.interval_s, 3),
            count=len(rows),
            samples=[],
            summary=self._samples.summary(rows),
        ).model_dump_json()
        # The samples are JSON already: put them in the place of the empty list.
        before, empty, after = head.encode().partition(b'"samples":[]')
        assert empty, head
        samples = b",".join(sample_json for sample_json, _, _ in rows)
        return b"".join([before, b'"samples":[', samples, b"]", after])


_sampler: Sampler | None = None
_sampler_lock = threading.Lock()


def start_sampler() -> Sampler:
    """The process's one Sampler, configured from the environment and running."""
    global _sampler
    with _sampler_lock:
        if _sampler is None:
            _sampler = Sampler(MetricsConfig.from_env())
        return _sampler.start()
