"""openloop's floor: the trivial server, and openloop run against it on given cores."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx2
import psutil
import pytest
from conftest import ROOT

from compare.floor import TRIVIAL_SERVER, measure_floor, trivial_server
from compare.schedule import due_offsets

CORES = sorted(os.sched_getaffinity(0))


def serves_trivially(process: psutil.Process) -> bool:
    """Whether a child of this test is the trivial server: not one that has exited since
    it was listed, or a zombie an earlier test left unreaped."""
    try:
        return str(TRIVIAL_SERVER) in " ".join(process.cmdline())
    except psutil.Error:
        return False


def test_the_trivial_server_answers_each_request_with_a_keep_alive_200_on_its_cores():
    with trivial_server([CORES[0]]) as url:
        port = urlsplit(url).port
        (server,) = [p for p in psutil.Process().children() if serves_trivially(p)]
        assert server.cpu_affinity() == [CORES[0]]
        with httpx2.Client() as client:
            answers = [client.get(url) for _ in range(3)]
        assert [(a.status_code, a.text) for a in answers] == [(200, "ok")] * 3
        # Two heads in one write (pipelined): two answers, in order, on one connection.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            received = b""
            while received.count(b"HTTP/1.1 200 OK") < 2:
                chunk = raw.recv(4096)
                assert chunk, "the trivial server closed the connection"
                received += chunk
    assert not server.is_running()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_the_floor_is_openloop_against_the_trivial_server_at_the_rate():
    floor = measure_floor(200, 1, seed=5, server_cores=[CORES[0]], tool_cores=[CORES[-1]])
    scheduled = len(due_offsets(200, 1, "poisson", 5))
    assert (floor.arrivals, floor.seed) == ("poisson", 5)
    assert floor.requests == scheduled and floor.errors == 0 and floor.non_2xx == 0
    assert floor.rate_scheduled == pytest.approx(scheduled, abs=0.01)
    latencies = [
        floor.latency_min_ms,
        floor.latency_p50_ms,
        floor.latency_p90_ms,
        floor.latency_p99_ms,
        floor.latency_p999_ms,
        floor.latency_max_ms,
    ]
    assert latencies[0] > 0
    assert latencies == sorted(latencies)
    assert isinstance(floor.generator_missed, bool)
    assert floor.generator_cpu_s > 0


def test_the_floor_takes_even_arrivals_too():
    floor = measure_floor(100, 1, arrivals="uniform")
    assert (floor.arrivals, floor.seed, floor.requests, floor.errors) == ("uniform", None, 100, 0)


def test_the_command_prints_one_row_per_rate():
    done = subprocess.run(
        [sys.executable, "-m", "compare.floor", "--rate", "50,100", "--duration", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == [
        "rate", "arrivals", "seed", "sent/s", "p50", "p90", "p99", "p99.9", "max", "missed",
    ]  # fmt: skip
    assert [row.split()[:2] for row in rows] == [["50", "poisson"], ["100", "poisson"]]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rate", "0"], "argument --rate: each rate must be more than 0"),
        (["--rate", "100000"], "argument --rate: each rate must be more than 0 and at most"),
        (["--rate", "100", "--duration", "0"], "argument --duration: must be more than 0"),
        (["--rate", "0.5", "--duration", "1"], "argument --rate: each rate x --duration"),
        (["--rate", "100", "--arrivals", "uniform", "--seed", "1"], "argument --seed: only"),
        (["--rate", "100", "--tool-cores", "one"], "argument --tool-cores: not a list"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, says):
    done = subprocess.run(
        [sys.executable, "-m", "compare.floor", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert says in done.stderr.splitlines()[-1]
