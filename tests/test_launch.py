"""serve.launch: both apps started under ./up.sh, and nothing left once stopped."""

import httpx2
import psutil
import pytest

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
