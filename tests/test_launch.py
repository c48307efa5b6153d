"""serve.launch: both apps started under ./up.sh, and nothing left once stopped."""

import contextlib
import signal
import subprocess
import sys

import httpx2
import psutil
import pytest
from conftest import ROOT

from serve.launch import LaunchError, launch


def test_launch_returns_once_both_apps_answer_and_stop_leaves_nothing(tmp_path):
    apps = launch(tmp_path / "up.log", {"SERVER": "granian"})
    try:
        greetings = {app: httpx2.get(url + "/").json() for app, url in apps.urls.items()}
        tree = apps.tree()
    finally:
        code = apps.stop()
    assert {app: g["framework"] for app, g in greetings.items()} == {
        "flask": "flask",
        "fastapi": "fastapi",
    }
    assert code == 0
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_up_sh_failing_is_an_error_carrying_its_log_and_its_reason_in_one_line(tmp_path):
    with pytest.raises(LaunchError) as error:
        launch(tmp_path / "up.log", {"SERVER": "bogus"})
    assert "./up.sh exited with 2" in str(error.value)
    assert "SERVER='bogus' is neither unit nor granian" in str(error.value)
    assert error.value.reason == (
        "./up.sh exited with 2: SERVER='bogus' is neither unit nor granian"
        f" (log: {tmp_path / 'up.log'})"
    )


LAUNCHER = """
import sys
from pathlib import Path
from serve.launch import launch
apps = launch(Path(sys.argv[1]), {"SERVER": "granian"})
print(apps.process.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_launcher_that_dies_takes_its_apps_with_it(tmp_path, signum):
    """A benchmark or compare killed outright (SIGKILL, or a SIGTERM it does not catch)
    runs no `finally`: up.sh must still stop, and its servers with it."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "up.log")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        up = psutil.Process(int(launcher.stdout.readline()))
        tree = [up, *up.children(recursive=True)]
        assert len(tree) > 2, "up.sh and its servers"
    finally:
        launcher.send_signal(signum)
        launcher.wait(10)
    _, alive = psutil.wait_procs(tree, timeout=30)
    for process in alive:  # nothing outlives the test, even when it fails
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert alive == [], (tmp_path / "up.log").read_text()
