"""The kernel's side of a window of requests, for each process of the stack: its context
switches, read from /proc before and after, and its system calls, counted by strace.

    before = context_switches(pids)
    ...                                   # the requests
    switched = switches_since(before, context_switches(pids))
    with SystemCalls(pids) as calls:      # another window: strace's stops switch contexts
        ...                               # the requests
    calls.counts                          # {pid: {"epoll_wait": 200, ...}}

Context switches are those of the threads alive at the end (a thread that ended in the
window takes its own with it). strace needs to trace the processes: root, or the same
user where ptrace is allowed; it stops each at every system call, so its window is kept
apart from the one whose context switches are read.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ATTACH_WITHIN_S = 30.0


class KernelSideError(RuntimeError):
    """strace is missing, or could not trace a process."""


def context_switches(pids: list[int]) -> dict[int, dict[int, tuple[int, int]]]:
    """Per process, per live thread: (voluntary, involuntary) context switches so far."""
    found: dict[int, dict[int, tuple[int, int]]] = {}
    for pid in pids:
        threads = {}
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            fields = {}
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "voluntary_ctxt_switches" in fields:
                threads[int(status.parent.name)] = (
                    int(fields["voluntary_ctxt_switches"]),
                    int(fields["nonvoluntary_ctxt_switches"]),
                )
        found[pid] = threads
    return found


def switches_since(
    before: dict[int, dict[int, tuple[int, int]]], after: dict[int, dict[int, tuple[int, int]]]
) -> dict[int, tuple[int, int]]:
    """Per process: (voluntary, involuntary) switches between the two readings, of the
    threads alive at the second (a thread born in between counts from zero)."""
    since = {}
    for pid, threads in after.items():
        voluntary = involuntary = 0
        for tid, (v, i) in threads.items():
            v0, i0 = before.get(pid, {}).get(tid, (0, 0))
            voluntary += v - v0
            involuntary += i - i0
        since[pid] = (voluntary, involuntary)
    return since


def strace_summary(text: str) -> dict[str, int]:
    """strace -c's table: calls per system call (its total line left out)."""
    counts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


class SystemCalls:
    """strace -c -f on each process (its threads included) while the block runs."""

    def __init__(self, pids: list[int]):
        if shutil.which("strace") is None:
            raise KernelSideError("strace is not on PATH (Debian: apt-get install strace)")
        self.pids = pids
        self.counts: dict[int, dict[str, int]] = {}
        self.folder = Path(tempfile.mkdtemp(prefix="strace-"))
        self.traces: dict[int, subprocess.Popen] = {}

    def __enter__(self) -> SystemCalls:
        try:
            for pid in self.pids:
                self.traces[pid] = subprocess.Popen(
                    ["strace", "-c", "-f", "-o", str(self.folder / str(pid)), "-p", str(pid)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                self.wait_attached(pid)
        except BaseException:
            self.stop()
            raise
        time.sleep(0.2)  # every thread of the last one attached too
        return self

    def wait_attached(self, pid: int) -> None:
        trace = self.traces[pid]
        assert trace.stderr is not None
        ready, _, _ = select.select([trace.stderr], [], [], ATTACH_WITHIN_S)
        line = trace.stderr.readline() if ready else "no word from strace"
        if f"Process {pid} attached" not in line:  # "strace: Process N attached", or why not
            raise KernelSideError(f"strace could not trace process {pid}: {line.strip()}")

    def __exit__(self, *_) -> None:
        self.stop()
        for pid in self.pids:
            with contextlib.suppress(OSError):
                self.counts[pid] = strace_summary((self.folder / str(pid)).read_text())
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop(self) -> None:
        for trace in self.traces.values():
            with contextlib.suppress(ProcessLookupError):
                trace.send_signal(signal.SIGINT)  # detach, and write the table
        for trace in self.traces.values():
            try:
                trace.wait(30)
            except subprocess.TimeoutExpired:
                trace.kill()
                trace.wait()
            if trace.stderr:
                trace.stderr.close()
