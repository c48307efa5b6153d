"""serve/config.py: every setting read and checked once, an empty one refused like a bad one,
and start.sh's check of them run with a bare Python (the standard library only)."""

import subprocess
import sys

import pytest
from conftest import ROOT

from serve.config import (
    MAX_SLOTS,
    METRICS_INTERVAL,
    SETTINGS,
    Config,
    ConfigError,
    MetricsConfig,
)
from serve.exits import Exit


def bare_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """python -S -s -E: no site-packages, no PYTHON* variables: the standard library only."""
    return subprocess.run(
        [sys.executable, "-S", "-s", "-E", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_defaults_are_conf_jsons_and_the_listed_ones():
    config = Config.from_env({"SERVER": "granian"})
    app = config.conf["applications"]["flask"]
    assert (config.workers, config.threads) == (app["processes"], app["threads"])
    assert (config.host, config.ports) == ("127.0.0.1", {"flask": 8080, "fastapi": 8081})
    assert config.venv == ROOT / ".venv"
    assert config.metrics == MetricsConfig(interval_s=10.0, slots=60)
    assert config.passed_on == {}


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("SERVER", "SERVER='' is neither unit nor granian"),
        ("VENV", "VENV='' is no virtualenv (it has no bin/python)"),
        ("HOST", "HOST is empty"),
        ("FLASK_PORT", "FLASK_PORT='' is not a port number (1-65535)"),
        ("FASTAPI_PORT", "FASTAPI_PORT='' is not a port number (1-65535)"),
        ("WORKERS", "WORKERS='' is not a number of processes (1-64)"),
        ("THREADS", "THREADS='' is not a number of threads (1-256)"),
        ("METRICS_INTERVAL", "invalid metrics setting: METRICS_INTERVAL='': Input should be"),
        ("METRICS_SLOTS", "invalid metrics setting: METRICS_SLOTS='': Input should be"),
        ("UNIT_CONF", "UNIT_CONF is empty"),
        ("APPS", "APPS='': '' is not module[:callable]"),
    ],
)
def test_an_empty_setting_is_refused_never_taken_for_the_default(name, says):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"SERVER": "granian", name: ""})
    assert str(refused.value).startswith(says)
    assert refused.value.code == Exit.BAD_SETTING


def test_apps_are_conf_jsons_by_default_and_any_module_of_the_project_by_apps():
    conf_apps = Config.from_env({"SERVER": "granian"}).conf["applications"]
    default = Config.from_env({"SERVER": "granian"}).apps
    for app, served in default.items():
        assert (served.module, served.callable) == (
            conf_apps[app]["module"],
            conf_apps[app]["callable"],
        )
        assert (served.interface, served.framework) == (conf_apps[app]["protocol"], app)
    twice = Config.from_env({"SERVER": "granian", "APPS": "fastapi-asgi,fastapi-asgi:app"}).apps
    assert twice["flask"] == twice["fastapi"] == default["fastapi"]
    assert [served.title for served in twice.values()] == ["FastAPI", "FastAPI"]


def test_an_app_conf_json_does_not_describe_is_asked_its_interface_by_importing_it():
    # workloads is a module of the project; its app-like callables are not apps.
    with pytest.raises(ConfigError, match="workloads:count_primes cannot be served: it takes no"):
        Config.from_env({"SERVER": "granian", "APPS": "flask-wsgi,workloads:count_primes"})


def test_every_setting_has_a_meaning_and_a_default_to_show():
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.meaning and (setting.default or setting.default_words), setting.name


def test_a_metrics_config_made_in_code_keeps_the_same_rules():
    assert MetricsConfig(interval_s=0.5, slots=MAX_SLOTS).slots == MAX_SLOTS
    with pytest.raises(ConfigError, match=r"greater than or equal to 0\.1"):
        MetricsConfig(interval_s=0.05)
    with pytest.raises(ConfigError, match=f"less than or equal to {MAX_SLOTS}"):
        MetricsConfig(slots=MAX_SLOTS + 1)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"METRICS_INTERVAL": "0"}, "Input should be greater than or equal to 0.1"),
        ({"WORKERS": "65"}, "WORKERS='65' is not a number of processes (1-64)"),
        ({"FLASK_PORT": "9", "FASTAPI_PORT": "9"}, "FLASK_PORT and FASTAPI_PORT are both 9"),
    ],
)
def test_the_check_runs_on_a_bare_python_and_refuses_in_one_line(env, says):
    names = [
        "FLASK_PORT",
        "FASTAPI_PORT",
        "WORKERS",
        "THREADS",
        *(s.name for s in [METRICS_INTERVAL]),
    ]
    result = bare_python("-m", "serve.config", "--check", *names, **env)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert says in line


def test_the_check_passes_good_and_unset_settings():
    result = bare_python(
        "-m", "serve.config", "--check", "FLASK_PORT", "WORKERS", "METRICS_SLOTS", WORKERS="3"
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_check_says_only_what_it_checks():
    # A setting start.sh does not name is not checked: the container has its own.
    result = bare_python("-m", "serve.config", "--check", "WORKERS", THREADS="many")
    assert result.returncode == 0
