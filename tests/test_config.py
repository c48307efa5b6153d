"""serve/config.py: every setting read and checked once, an empty one refused like a bad one,
and start.sh's check of them run with a bare Python (the standard library only)."""

import json
import os
import pwd
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from serve.conf import load_conf, problems
from serve.config import Config
from serve.database_config import DatabaseConfig, postgres_bindir, read_postgres_user
from serve.exits import Exit
from serve.settings import MAX_SLOTS, METRICS_INTERVAL, SETTINGS, ConfigError, MetricsConfig


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
        ("APP_USER", "APP_USER='' is no user here"),
        ("APPS", "APPS='': '' is not module[:callable]"),
        ("DATABASE", "DATABASE='' is neither postgres nor none"),
        ("DATABASE_URL", "DATABASE_URL is empty"),
        ("DATABASE_POOL_SIZE", "DATABASE_POOL_SIZE='' is not a number of connections (1-100)"),
        ("POSTGRES_USER", "POSTGRES_USER=''"),
        ("UNITD", "UNITD is empty"),
        ("SERVER_PREFIX", "SERVER_PREFIX is empty"),
        ("READY_WITHIN_S", "READY_WITHIN_S='' is not a number of seconds (1-3600)"),
    ],
)
def test_an_empty_setting_is_refused_never_taken_for_the_default(name, says):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"SERVER": "granian", name: ""})
    assert str(refused.value).startswith(says)
    assert refused.value.code == Exit.BAD_SETTING


def test_every_setting_is_in_the_empty_setting_test():
    tested = test_an_empty_setting_is_refused_never_taken_for_the_default.pytestmark[0]
    assert {name for name, _ in tested.args[1]} == {setting.name for setting in SETTINGS}


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("   ", "SERVER_PREFIX is empty"),
        ("valgrind '--tool", 'SERVER_PREFIX="valgrind \'--tool" is no command'),
        ("no-such-command-here -x", "SERVER_PREFIX='no-such-command-here -x': no"),
    ],
)
def test_a_server_prefix_is_a_command_on_path(prefix, says):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"SERVER": "granian", "SERVER_PREFIX": prefix})
    assert str(refused.value).startswith(says)


def test_a_server_prefix_is_split_as_a_shell_would_its_command_found_on_path():
    config = Config.from_env({"SERVER": "granian", "SERVER_PREFIX": "env 'A=b c' B=d"})
    assert config.server_prefix == (shutil.which("env"), "A=b c", "B=d")
    assert Config.from_env({"SERVER": "granian"}).server_prefix == ()


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
        ({"DATABASE": "mysql"}, "DATABASE='mysql' is neither postgres nor none"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is empty"),
        ({"DATABASE": "none", "DATABASE_URL": "x"}, "DATABASE='none' and DATABASE_URL are both"),
        ({"DATABASE_POOL_SIZE": "101"}, "DATABASE_POOL_SIZE='101' is not a number of connections"),
    ],
)
def test_the_check_runs_on_a_bare_python_and_refuses_in_one_line(env, says):
    names = [
        "FLASK_PORT",
        "FASTAPI_PORT",
        "WORKERS",
        "THREADS",
        *(s.name for s in [METRICS_INTERVAL]),
        *("DATABASE", "DATABASE_URL", "DATABASE_POOL_SIZE"),
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


def test_the_apps_run_as_nobody_for_root_and_as_whoever_runs_up_sh_else(monkeypatch):
    nobody = pwd.getpwnam("nobody").pw_uid
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert Config.from_env({"SERVER": "granian"}).app_user == "nobody"
    assert Config.from_env({"SERVER": "granian", "APP_USER": "root"}).app_user == "root"
    monkeypatch.setattr(os, "getuid", lambda: nobody)
    assert Config.from_env({"SERVER": "granian"}).app_user == "nobody"
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"SERVER": "granian", "APP_USER": "root"})
    assert str(refused.value) == (
        "APP_USER='root': up.sh runs as nobody, and only root may run the apps as another user"
    )
    with pytest.raises(ConfigError, match="APP_USER='no-such-user' is no user here"):
        Config.from_env({"SERVER": "granian", "APP_USER": "no-such-user"})


def test_the_database_is_postgres_where_its_server_is_installed_else_none():
    config = Config.from_env({"SERVER": "granian"})
    installed = postgres_bindir()
    assert config.database == ("postgres" if installed else "none")
    assert config.postgres_bindir == installed
    if installed:
        assert all((installed / name).is_file() for name in ("initdb", "postgres"))
    assert Config.from_env({"SERVER": "granian", "DATABASE": "none"}).database == "none"
    named = Config.from_env({"SERVER": "granian", "DATABASE_URL": "host=/nowhere"})
    assert (named.database, named.database_url) == ("url", "host=/nowhere")


def test_the_pool_size_is_conf_jsons_else_the_threads(tmp_path):
    conf = load_conf(ROOT / "conf.json")
    pool = conf["applications"]["flask"]["environment"]["DATABASE_POOL_SIZE"]
    assert Config.from_env({"SERVER": "granian"}).pool_size == int(pool)
    given = Config.from_env({"SERVER": "granian", "DATABASE_POOL_SIZE": "7"})
    assert given.pool_size == 7
    for app in conf["applications"].values():
        del app["environment"]
    (tmp_path / "conf.json").write_text(json.dumps(conf))
    without = {"SERVER": "granian", "UNIT_CONF": str(tmp_path / "conf.json")}
    assert Config.from_env(without).pool_size == conf["applications"]["flask"]["threads"]
    assert Config.from_env({**without, "THREADS": "6"}).pool_size == 6
    assert DatabaseConfig.from_env({**without, "DATABASE_URL": "x"}).pool_size == 4


def test_a_conf_json_whose_apps_differ_in_their_environment_is_refused(tmp_path):
    conf = load_conf(ROOT / "conf.json")
    conf["applications"]["fastapi"]["environment"] = {"DATABASE_POOL_SIZE": "8"}
    assert any(found.startswith("unequal environment") for found in problems(conf))
    conf["applications"]["flask"]["environment"] = {"DATABASE_POOL_SIZE": "0"}
    conf["applications"]["fastapi"]["environment"] = {"DATABASE_POOL_SIZE": "0"}
    assert problems(conf) == [
        f"{app}: environment DATABASE_POOL_SIZE is '0', not a number of connections (1-100)"
        " as a string"
        for app in ("flask", "fastapi")
    ]


@pytest.mark.parametrize(("pool", "loops", "fits"), [(4, 4, True), (8, 4, True), (6, 4, False)])
def test_an_asgi_worker_splits_its_pool_evenly_over_its_event_loops(pool, loops, fits):
    environ = {"DATABASE_URL": "x", "DATABASE_POOL_SIZE": str(pool), "ASGI_EVENT_LOOPS": str(loops)}
    if fits:
        assert DatabaseConfig.from_env(environ).pool_size_per_loop == pool // loops
    else:
        with pytest.raises(ConfigError, match=f"give a multiple of {loops}"):
            DatabaseConfig.from_env(environ)


def test_postgresql_runs_as_an_unprivileged_user():
    me = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() != 0:
        assert read_postgres_user({}) == me
        with pytest.raises(ConfigError, match="only root can run PostgreSQL as another user"):
            read_postgres_user({"POSTGRES_USER": "root"})
        return
    with pytest.raises(ConfigError, match="POSTGRES_USER='root' is root, which PostgreSQL"):
        read_postgres_user({"POSTGRES_USER": "root"})
    with pytest.raises(ConfigError, match="POSTGRES_USER='no-such-user' is no user here"):
        read_postgres_user({"POSTGRES_USER": "no-such-user"})
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        with pytest.raises(ConfigError, match="POSTGRES_USER='postgres' is no user here"):
            read_postgres_user({})
    else:
        assert read_postgres_user({}) == "postgres"


def test_without_postgresqls_server_there_is_no_database_unless_one_is_asked(monkeypatch):
    # As on a host without postgresql-15: where its programs would be, there are none.
    monkeypatch.setattr("serve.database_config.postgres_bindir", lambda: None)
    assert Config.from_env({"SERVER": "granian"}).database == "none"
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"SERVER": "granian", "DATABASE": "postgres"})
    assert str(refused.value).startswith("DATABASE=postgres, but PostgreSQL's server")
    assert str(refused.value).endswith(
        "install PostgreSQL's server (Debian: apt-get install postgresql-15) or set DATABASE_URL"
    )
    named = Config.from_env({"SERVER": "granian", "DATABASE_URL": "host=/elsewhere"})
    assert named.database == "url"
