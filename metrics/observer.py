"""The observer's own cost: CPU seconds the workers spend measuring themselves.

Every snapshot (the sampler's, and each /status) runs psutil and reads
smaps_rollup inside the worker it measures, and /stats copies the buffer there:
that CPU is in the app's own figures. Each piece of that work is timed with its
thread's CPU clock (time.thread_time), so a wait for the GIL does not count.

A worker knows only its own figure. The workers of one server process (granian's
master, Unit's prototype) share theirs through one small file each, in a
directory of the kernel's tmpfs /dev/shm named after that parent:

    /dev/shm/flask-vs-fastapi-observer-<parent pid>-<parent start time>/<worker pid>

Each file holds the worker's cumulative seconds, written after every timed piece
of work (one pwrite), so any worker can sum them all, those of workers that
exited included. Directories of parents that are gone are removed when a worker
opens its own file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from metrics.processes import Roles

SHARED_ROOT = Path("/dev/shm")
PREFIX = "flask-vs-fastapi-observer-"
# The figure is written twice: a reader that catches a write half done sees two values.
RECORD = struct.Struct("<2d")


def _parent_dir(parent: psutil.Process) -> Path:
    return SHARED_ROOT / f"{PREFIX}{parent.pid}-{parent.create_time():.2f}"


def _read_record(path: str) -> float:
    """A worker's published seconds; 0 while its file is still empty."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(3):
                data = os.pread(fd, RECORD.size, 0)
                if len(data) < RECORD.size:
                    return 0.0
                first, second = RECORD.unpack(data)
                if first == second:
                    return first
        finally:
            os.close(fd)
    return 0.0


def _remove_stale_dirs() -> None:
    """Remove the directories of parents that are no longer running."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(SHARED_ROOT):
            if not entry.name.startswith(PREFIX):
                continue
            pid, _, started = entry.name.removeprefix(PREFIX).partition("-")
            try:
                alive = f"{psutil.Process(int(pid)).create_time():.2f}" == started
            except (ValueError, psutil.Error):
                alive = False
            if not alive:
                shutil.rmtree(entry.path, ignore_errors=True)


class ObserverCost:
    """This worker's observing CPU seconds, published for its fellow workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._own_s = 0.0
        self._parent: int | None = None  # the pid whose directory this worker joined
        self._dir: Path | None = None
        self._fd: int | None = None  # this worker's own file, open for writing

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Counts the CPU time this thread spends in the block."""
        started = time.thread_time()
        try:
            yield
        finally:
            self._add(time.thread_time() - started)

    def _add(self, seconds: float) -> None:
        with self._lock:
            self._own_s += seconds
            self._publish()

    def _publish(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.pwrite(self._fd, RECORD.pack(self._own_s, self._own_s), 0)

    def join(self, roles: Roles) -> None:
        """Publish this worker's figure beside its fellows' (once per parent; a lone
        process has no fellows)."""
        if roles.parent is not None:
            with self._lock:
                self._join(roles.parent)

    def _join(self, parent: psutil.Process) -> None:
        if self._parent == parent.pid:
            return
        if self._fd is not None:
            os.close(self._fd)
        self._parent, self._dir, self._fd = parent.pid, None, None
        try:
            directory = _parent_dir(parent)
            if not directory.is_dir():
                _remove_stale_dirs()
                directory.mkdir(exist_ok=True)
            self._fd = os.open(directory / str(os.getpid()), os.O_WRONLY | os.O_CREAT, 0o644)
        except (OSError, psutil.Error):
            return  # no shared figures: total_s says null
        self._dir = directory
        self._publish()

    def total_s(self, roles: Roles) -> float | None:
        """The observing CPU seconds of all of the app's workers, exited ones included;
        None where this worker cannot read its fellows' (no writable /dev/shm)."""
        with self._lock:
            if roles.parent is None:  # a lone process: its own figure is the app's
                return round(self._own_s, 6)
            self._join(roles.parent)
            if self._dir is None:
                return None
            own, directory = self._own_s, self._dir
        total = own
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if entry.name != str(os.getpid()):
                    total += _read_record(entry.path)
        return round(total, 6)
