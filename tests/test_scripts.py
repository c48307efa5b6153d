"""Every script meets --help and bad flags the same way: --help is its usage on
stdout with exit 0; a bad flag or a missing value is named on stderr, with exit 2,
before anything is installed, built or started. The benchmarks too, and a failure of
theirs once the flags are read (a launch up.sh refuses) is one line, not a traceback."""

import importlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import psutil
import pytest
from conftest import ROOT

SCRIPTS = ["start.sh", "up.sh", "compare.sh", "test.sh"]
BENCHMARKS = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py"))
# A flag's value may be 0 where 0 means something; every other numeric value is refused
# at 0 as at -1, nan, inf and text.
ZERO_MEANS = {
    ("aa_calibration.py", "--seed"): "a seed like any other",
    ("connections.py", "--idle"): "the slow-header connections alone",
    ("connections.py", "--slow"): "the silent connections alone",
    ("instructions.py", "--io-ms"): "/io?ms=0, the route without asyncio's timer",
    ("sampler_cost.py", "--callgrind"): "no callgrind",
    ("whole_request.py", "--io-ms"): "/io?ms=0, the route without asyncio's timer",
}


def benchmark(script: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{script.removesuffix('.py')}")


def typed_flags(script: str) -> list[str]:
    """The benchmark's flags whose value a reader checks: all but choices, paths and text."""
    actions = benchmark(script).flags()._actions
    return [a.option_strings[0] for a in actions if a.type not in (None, str, Path)]


TYPED_FLAGS = [(script, flag) for script in BENCHMARKS for flag in typed_flags(script)]


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """script (a benchmark by its file name) with args; its whole process group is killed
    if it outlives the timeout (test.sh, wrongly accepting a flag, would run the suite
    again; a benchmark would launch the apps, or run on)."""
    if script in BENCHMARKS:
        command = [sys.executable, str(ROOT / "benchmarks" / script)]
    else:
        command = [str(ROOT / script)]
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("script", SCRIPTS + BENCHMARKS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_usage_on_stdout_and_exit_0(script, flag):
    result = run(script, flag)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower() or f"./{script}" in result.stdout
    assert len(result.stdout.splitlines()) >= 5


@pytest.mark.parametrize(
    ("script", "args", "named"),
    [
        ("start.sh", ["--frobnicate"], "--frobnicate"),
        ("start.sh", ["--cpus"], "--cpus"),
        ("up.sh", ["--frobnicate"], "--frobnicate"),
        ("up.sh", ["granian"], "granian"),
        ("compare.sh", ["--frobnicate"], "--frobnicate"),
        ("compare.sh", ["--duration"], "--duration"),
        ("test.sh", ["--frobnicate"], "--frobnicate"),
        ("test.sh", ["-k"], "-k"),
        ("test.sh", ["tests/no_such_test.py"], "tests/no_such_test.py"),
        *[(script, ["--frobnicate"], "--frobnicate") for script in BENCHMARKS],
        ("openloop_capacity.py", ["--rates", "2000,1000"], "--rates must ascend"),
        # The first numeric flag of each, through its real command line.
        *[
            (script, [typed_flags(script)[0], "nan"], typed_flags(script)[0])
            for script in BENCHMARKS
        ],
    ],
)
def test_a_bad_flag_is_named_on_stderr_with_exit_2(script, args, named):
    result = run(script, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    # One line says what is wrong, and names the flag: the one line a reader needs.
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr


@pytest.mark.parametrize(("script", "flag"), TYPED_FLAGS)
def test_a_benchmark_refuses_a_bad_value_in_one_line_naming_the_flag(script, flag, capsys):
    """In parse(), the first thing main() does: before anything is started."""
    refused = ["-1", "nan", "inf", "x"] + ([] if (script, flag) in ZERO_MEANS else ["0"])
    for value in refused:
        with pytest.raises(SystemExit) as exit_info:
            benchmark(script).parse([flag, value])
        out, err = capsys.readouterr()
        assert exit_info.value.code == 2, (value, err)
        assert out == ""
        assert len(err.splitlines()) == 1, err
        assert flag in err, (value, err)


@pytest.mark.parametrize(("script", "flag"), TYPED_FLAGS)
def test_every_benchmark_default_passes_its_own_reader(script, flag):
    action = next(a for a in benchmark(script).flags()._actions if flag in a.option_strings)
    if action.default is not None:
        action.type(str(action.default))


@pytest.mark.parametrize(("script", "flag"), ZERO_MEANS)
def test_a_benchmark_takes_0_where_it_means_something(script, flag):
    args = benchmark(script).parse([flag, "0"])
    assert vars(args)[flag.removeprefix("--").replace("-", "_")] == 0


@pytest.mark.parametrize("script", ["respawn.py", "database_outage.py"])
def test_a_launch_refused_ends_a_benchmark_in_one_line_not_a_traceback(script):
    """up.sh's refusal (respawn.py: a LaunchError) or serving's own, in the benchmark
    (database_outage.py: a ConfigError, before PostgreSQL starts), said in one line."""
    result = run(script, env={"METRICS_INTERVAL": "0"})
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"{script}: ")


def test_ctrl_c_stops_a_benchmark_and_the_apps_it_launched_in_one_line():
    benchmark = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "respawn.py"), "--kills", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert "worker(s) per app" in benchmark.stdout.readline()  # the apps serve
        (up,) = psutil.Process(benchmark.pid).children()
        ports = [int(up.environ()[name]) for name in ("FLASK_PORT", "FASTAPI_PORT")]
        benchmark.send_signal(signal.SIGINT)
        _, stderr = benchmark.communicate(timeout=60)
    finally:
        os.killpg(benchmark.pid, signal.SIGKILL) if benchmark.poll() is None else None
    assert benchmark.returncode == 130, stderr
    assert stderr == "respawn.py: interrupted\n"
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
