"""Where the apps and the load tool run: the cores each gets (--pin, --no-pin)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from compare.targets import TargetError
from metrics.schema import Snapshot


@dataclass(frozen=True)
class Cores:
    """The cores of the launched apps and of the load tool (None: not pinned), and why."""

    apps: list[int] | None
    tool: list[int] | None
    sentence: str

    def taskset(self) -> list[str]:
        """The command prefix that runs the launched apps on their cores (none: not pinned)."""
        return ["taskset", "-c", ",".join(map(str, self.apps))] if self.apps else []


def our_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def for_launch(pin: bool | None) -> Cores:
    """Separate cores for the apps launched here and for the load tool, where there are two.

    The apps get the larger half: one core against one on a 2-core machine.
    """
    cores = our_cores()
    if pin is False:
        return Cores(None, None, f"shared (--no-pin): apps and load tool on cores {cores}")
    if len(cores) < 2:
        if pin:
            raise TargetError(f"--pin needs at least 2 cores; this process may use {cores}")
        return Cores(None, None, f"shared: only core {cores} is usable here")
    split = len(cores) - len(cores) // 2
    apps, tool = cores[:split], cores[split:]
    return Cores(apps, tool, f"load tool on cores {tool}, apps on cores {apps}")


def for_targets(pin: bool | None, statuses: dict[str, Snapshot]) -> Cores:
    """The load tool on the cores the running apps may not use, as their /status says."""
    cores = our_cores()
    if pin is False:
        return Cores(None, None, f"shared (--no-pin): the load tool on cores {cores}")
    app_cores = sorted({c for s in statuses.values() for c in s.system.cpu_affinity})
    free = [core for core in cores if core not in app_cores]
    if not free:
        advice = "give the apps fewer, e.g. ./start.sh --cpuset 0"
        if pin:
            raise TargetError(
                f"--pin: the apps may run on cores {app_cores}, every core this process may"
                f" use; {advice}"
            )
        return Cores(
            None,
            None,
            f"shared: the apps may run on cores {app_cores}, as may the load tool; {advice}",
        )
    return Cores(None, free, f"load tool on cores {free}, apps on their own cores {app_cores}")
