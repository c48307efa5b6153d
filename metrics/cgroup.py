"""The limits the kernel enforces on this process's cgroup (v2, else v1): where to read
them is found once, the figures are read on every snapshot."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from metrics.schema import MB, Cgroup

# cgroup v1 reports "no limit" as a huge page-aligned number.
CGROUP_V1_UNLIMITED = 2**60


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
