"""Parsers of wrk, ab and hey, on outputs captured from real runs against these apps."""

import subprocess
from pathlib import Path

import pytest

from compare import loadtools
from compare.floor import trivial_server
from compare.loadtools import LoadToolError, parse_output
from compare.schedule import due_offsets

CAPTURED = Path(__file__).parent / "captured"


def captured(name: str) -> str:
    return (CAPTURED / f"{name}.txt").read_text()


def test_wrk_success():
    result = parse_output("wrk", captured("wrk_ok"))
    assert (result.requests, result.duration_s) == (5312, 2.0)
    assert result.requests_per_s == pytest.approx(2656.0)
    assert (result.errors, result.non_2xx) == (0, 0)
    assert (result.latency_p50_ms, result.latency_p90_ms, result.latency_p99_ms) == (
        2.93,
        4.73,
        10.72,
    )


def test_wrk_non_2xx_responses_are_counted():
    result = parse_output("wrk", captured("wrk_non2xx"))
    assert result.requests == result.non_2xx == 8161
    assert result.errors == 0


def test_wrk_socket_timeouts_are_errors_and_microseconds_are_read():
    result = parse_output("wrk", captured("wrk_timeout"))
    assert result.errors == 4
    assert result.duration_s == 3.01
    assert result.latency_p50_ms == 0.0


def test_wrk_refused_connection_is_a_load_tool_error():
    with pytest.raises(LoadToolError, match=r"(?s)wrk printed no result.*Connection refused"):
        parse_output("wrk", captured("wrk_refused"))


def test_ab_success():
    result = parse_output("ab", captured("ab_ok"))
    assert (result.requests, result.duration_s) == (7050, 2.0)
    assert result.requests_per_s == pytest.approx(3525.0)
    assert (result.errors, result.non_2xx) == (0, 0)
    assert (result.latency_p50_ms, result.latency_p90_ms, result.latency_p99_ms) == (2, 3, 3)


def test_ab_non_2xx_responses_are_counted():
    result = parse_output("ab", captured("ab_non2xx"))
    assert result.requests == result.non_2xx == 15551


def test_ab_length_differences_are_not_errors():
    text = captured("ab_length_failures")
    assert "Length: 518" in text
    assert parse_output("ab", text).errors == 0


def test_ab_refused_connection_is_a_load_tool_error():
    with pytest.raises(LoadToolError, match="Connection refused"):
        parse_output("ab", captured("ab_refused"))


def test_hey_success():
    result = parse_output("hey", captured("hey_ok"))
    assert (result.requests, result.duration_s) == (7612, 2.0022)
    assert result.requests_per_s == pytest.approx(7612 / 2.0022)
    assert (result.errors, result.non_2xx) == (0, 0)
    assert result.latency_p50_ms == pytest.approx(2.0)
    assert result.latency_p99_ms == pytest.approx(3.8)


def test_hey_non_2xx_responses_are_counted():
    result = parse_output("hey", captured("hey_non2xx"))
    assert result.requests == result.non_2xx == 16710


def test_hey_connection_errors_are_errors_not_requests():
    result = parse_output("hey", captured("hey_refused"))
    assert result.requests == 0
    assert result.errors == 35107
    assert result.requests_per_s == 0  # hey itself claims 35088 per second
    assert result.latency_p50_ms is None


@pytest.mark.parametrize(
    ("tool", "duration_flag", "connections_flag"),
    [
        ("wrk", "--duration=7s", "--connections=32"),
        ("ab", "-t7", "-c32"),
        ("hey", "-z=7s", "-c=32"),
    ],
)
def test_commands_run_for_the_duration_at_the_connections(tool, duration_flag, connections_flag):
    argv = loadtools.command(tool, "http://localhost/json", 32, 7, threads=2)
    assert argv[0] == tool and argv[-1] == "http://localhost/json"
    assert duration_flag in argv and connections_flag in argv


def test_openloop_runs_with_its_arrivals_and_seed_and_every_figure_is_read():
    with trivial_server() as url:
        argv = loadtools.command(loadtools.OPEN_LOOP, url, 8, 1, 1, rate=50, seed=3)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "--arrivals=poisson" in argv and "--seed=3" in argv
    result = parse_output(loadtools.OPEN_LOOP, done.stdout)
    scheduled = len(due_offsets(50, 1, "poisson", 3))
    assert (result.arrivals, result.seed, result.requests, result.errors) == (
        "poisson",
        3,
        scheduled,
        0,
    )
    assert result.rate_scheduled == scheduled and result.rate_sent > 0
    assert result.errors_by_kind == {}
    assert result.generator_missed is (result.rate_sent < 0.98 * result.rate_scheduled)
    assert result.generator_cpu_s > 0
    assert result.latency_min_ms <= result.latency_p999_ms <= result.latency_max_ms
    uniform = loadtools.command(loadtools.OPEN_LOOP, url, 8, 1.5, 1, rate=50, arrivals="uniform")
    assert "--arrivals=uniform" in uniform and "--duration=1.5" in uniform
    assert not any(arg.startswith("--seed") for arg in uniform)


def test_closed_loop_tools_leave_the_open_loop_figures_empty():
    result = parse_output("wrk", captured("wrk_ok"))
    assert (result.latency_p999_ms, result.arrivals, result.generator_missed) == (None, None, None)


def test_missing_tool_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LoadToolError, match="apt-get install apache2-utils"):
        loadtools.require("ab")
