"""Every script meets --help and bad flags the same way: --help is its usage on
stdout with exit 0; a bad flag or a missing value is named on stderr, with exit 2,
before anything is installed, built or started."""

import os
import signal
import subprocess

import pytest
from conftest import ROOT

SCRIPTS = ["start.sh", "up.sh", "compare.sh", "test.sh"]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    """script with args; its whole process group is killed if it outlives the timeout
    (test.sh, wrongly accepting a flag, would run the suite again)."""
    process = subprocess.Popen(
        [str(ROOT / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("script", SCRIPTS)
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
    ],
)
def test_a_bad_flag_is_named_on_stderr_with_exit_2(script, args, named):
    result = run(script, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    # One line says what is wrong, and names the flag: the one line a reader needs.
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr
