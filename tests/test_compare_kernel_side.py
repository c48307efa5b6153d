"""compare/kernel_side.py on a process of the test's own that does known work when told:
its context switches read from /proc, its system calls counted by strace."""

import shutil
import subprocess
import sys

import pytest

from compare.kernel_side import (
    KernelSideError,
    SystemCalls,
    context_switches,
    strace_summary,
    switches_since,
)

# Does nothing until a line comes; then `n` sleeps of 1 ms, or `n` getppid() calls, and
# says "done".
WORKER = """
import os, sys, time
for line in sys.stdin:
    what, n = line.split()
    for _ in range(int(n)):
        time.sleep(0.001) if what == "sleep" else os.getppid()
    print("done", flush=True)
"""


@pytest.fixture
def worker():
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    yield process
    process.kill()
    process.wait()


def ask(process: subprocess.Popen, what: str, n: int) -> None:
    process.stdin.write(f"{what} {n}\n")
    process.stdin.flush()
    assert process.stdout.readline() == "done\n"


def test_context_switches_count_a_processs_sleeps(worker):
    ask(worker, "sleep", 1)  # started, and waiting for the next line
    before = context_switches([worker.pid])
    ask(worker, "sleep", 200)
    ((voluntary, involuntary),) = switches_since(before, context_switches([worker.pid])).values()
    assert 200 <= voluntary < 400, voluntary  # each sleep, and the read of the next line
    assert involuntary >= 0


def test_a_thread_born_between_the_readings_counts_from_zero():
    before = {1: {10: (5, 1)}}
    after = {1: {10: (7, 1), 11: (3, 2)}}
    assert switches_since(before, after) == {1: (5, 2)}


def test_strace_tables_are_read_per_system_call():
    table = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000060           1        40           futex
 30.00    0.000030           1        20         3 epoll_wait
 10.00    0.000010          10         1           getppid
------ ----------- ----------- --------- --------- ----------------
100.00    0.000100           1        61         3 total
"""
    assert strace_summary(table) == {"futex": 40, "epoll_wait": 20, "getppid": 1}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not on PATH")
def test_system_calls_are_counted_while_the_block_runs_and_no_longer(worker):
    ask(worker, "getppid", 1)
    try:
        with SystemCalls([worker.pid]) as calls:
            ask(worker, "getppid", 500)
    except KernelSideError as error:  # ptrace not allowed here
        pytest.skip(str(error))
    ask(worker, "getppid", 500)  # after: not counted
    counted = calls.counts[worker.pid]
    assert counted["getppid"] == 500, counted
    assert counted.get("write", 0) >= 1  # its "done"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not on PATH")
def test_a_process_that_is_gone_cannot_be_traced():
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    with pytest.raises(KernelSideError, match="could not trace process"):
        SystemCalls([int(gone.stdout)]).__enter__()
