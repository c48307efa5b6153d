"""Which processes serve this app: its fellow workers, and the server's own processes.

Found from the kernel's process tree and titles, as a worker sees them: granian's
master and its workers; NGINX Unit's main, controller and router, the app's
prototype and its `application` processes.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil

# The processes serving the app are looked for again after this long, or at once
# when one of them is gone.
ROLES_TTL_S = 1.0
# Whether this kernel lists each thread's children in /proc (CONFIG_PROC_CHILDREN).
HAS_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
# NGINX Unit's own processes beside the apps' prototypes, by title.
UNIT_SERVER_TITLES = ("unit: controller", "unit: router")


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
    # The server's processes that serve this app alone: granian's master (one per app),
    # NGINX Unit's prototype of this app. Both are the parent.
    server: tuple[psutil.Process, ...]
    # The server's processes that serve both apps: NGINX Unit's main, controller, router.
    shared: tuple[psutil.Process, ...]
    names: tuple[str, ...]  # the titles of server, then shared


def find_roles(pid: int) -> Roles:
    """The workers and server processes around `pid` (a lone process: just itself)."""
    me = psutil.Process(pid)
    title = _title(pid)
    try:
        parent = psutil.Process(me.ppid())
    except psutil.Error:
        return Roles((me,), None, (), (), ())
    parent_title = _title(parent.pid)
    if not is_worker_of(title, parent_title):
        return Roles((me,), None, (), (), ())
    workers, shared = [me], []
    names = [parent_title if parent_title.startswith("unit: ") else "master"]
    for child in _children(parent.pid):
        if child != pid and _title(child) == title:
            with contextlib.suppress(psutil.NoSuchProcess):
                workers.append(psutil.Process(child))
    if parent_title.endswith('" prototype'):  # Unit: main above it, controller and router beside
        with contextlib.suppress(psutil.Error):
            main = psutil.Process(parent.ppid())
            shared.append(main)
            names.append(_title(main.pid).partition(" [")[0])
            for child in _children(main.pid):
                if (child_title := _title(child)) in UNIT_SERVER_TITLES:
                    shared.append(psutil.Process(child))
                    names.append(child_title)
    return Roles(tuple(workers), parent, (parent,), tuple(shared), tuple(names))


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
