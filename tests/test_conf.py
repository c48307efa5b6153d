"""conf.json, the real one, against Unit's rules that matter here; and how up.sh adapts it
for Unit (serve.conf reads it, serve.unit renders it)."""

import copy
import json
import os
import subprocess

import pytest
from conftest import ROOT

from serve import unit
from serve.conf import load_conf, problems
from serve.config import Config


@pytest.fixture
def conf():
    return load_conf(ROOT / "conf.json")


def test_the_real_conf_json_keeps_every_rule(conf):
    assert problems(conf) == []


def test_listeners_pass_8080_to_flask_and_8081_to_fastapi(conf):
    assert conf["listeners"] == {
        "*:8080": {"pass": "applications/flask"},
        "*:8081": {"pass": "applications/fastapi"},
    }


def test_both_apps_get_the_same_processes_and_threads(conf):
    flask, fastapi = conf["applications"]["flask"], conf["applications"]["fastapi"]
    assert (flask["processes"], flask["threads"]) == (fastapi["processes"], fastapi["threads"])
    assert (flask["protocol"], fastapi["protocol"]) == ("wsgi", "asgi")
    assert (flask["module"], fastapi["module"]) == ("flask-wsgi", "fastapi-asgi")


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (
            lambda c: (
                c["listeners"]["*:8080"].update(pass_="x")
                or c["listeners"]["*:8080"].update({"pass": "applications/django"})
            ),
            "which is no application",
        ),
        (
            lambda c: c["applications"]["flask"].update(module="flask_wsgi"),
            "flask_wsgi.py does not exist",
        ),
        (
            lambda c: c["applications"]["flask"].update(protocol="asgi"),
            "flask-wsgi:app is a wsgi app",
        ),
        (
            lambda c: c["applications"]["fastapi"].update(protocol="wsgi"),
            "fastapi-asgi:app is a asgi app",
        ),
        (lambda c: c["applications"]["fastapi"].update(threads=8), "unequal threads"),
        (lambda c: c["applications"]["flask"].update(processes=2), "unequal processes"),
        (lambda c: c["applications"]["flask"].pop("limits"), "no limits.timeout"),
        (lambda c: c["applications"]["flask"].update(type="php"), "is not 'python 3'"),
        (lambda c: c.pop("settings"), "settings.http.header_read_timeout is None"),
        (lambda c: c["settings"]["http"].update(send_timeout="10"), "send_timeout is '10'"),
        (lambda c: c["settings"]["http"].update(body_read_timeout=0), "body_read_timeout is 0"),
        (lambda c: c["settings"]["http"].update(idle_timeout=180), "idle_timeout is 180"),
        (
            lambda c: c["settings"]["http"].update(idle_timeout=6),
            "header_read_timeout and idle_timeout differ",
        ),
    ],
)
def test_a_broken_conf_is_caught(conf, break_it, says):
    broken = copy.deepcopy(conf)
    break_it(broken)
    assert any(says in problem for problem in problems(broken)), problems(broken)


def test_idle_and_slow_connections_are_closed_within_seconds(conf):
    # What the README promises: conf.json's timeouts, which granian shares.
    assert conf["settings"]["http"] == {
        "header_read_timeout": 5,
        "body_read_timeout": 5,
        "send_timeout": 10,
        "idle_timeout": 5,
    }
    assert unit.render(conf, Config.from_env({}), {})["settings"] == conf["settings"]


def test_render_moves_listeners_apps_and_settings_to_this_host(conf):
    environ = {
        "HOST": "127.0.0.1",
        "FLASK_PORT": "9001",
        "FASTAPI_PORT": "9002",
        "WORKERS": "2",
        "THREADS": "3",
        "METRICS_INTERVAL": "0.5",
    }
    config = Config.from_env(environ)
    rendered = unit.render(conf, config, {**config.passed_on, "DATABASE_URL": "host=/x"})
    assert rendered["listeners"] == {
        "127.0.0.1:9001": {"pass": "applications/flask"},
        "127.0.0.1:9002": {"pass": "applications/fastapi"},
    }
    for app in rendered["applications"].values():
        assert app["path"] == str(ROOT)
        assert (app["processes"], app["threads"]) == (2, 3)
        # conf.json's, then what serve passes on; an ASGI app learns its event loops.
        loops = {"ASGI_EVENT_LOOPS": "3"} if app["protocol"] == "asgi" else {}
        assert app["environment"] == {
            "DATABASE_POOL_SIZE": "4",
            "METRICS_INTERVAL": "0.5",
            "DATABASE_URL": "host=/x",
            **loops,
        }
        if (ROOT / ".venv/bin/python").exists():
            assert app["home"] == str(ROOT / ".venv")
    assert problems(rendered, import_apps=False) == []


def test_render_serves_one_module_twice_as_two_applications_named_for_their_ports(conf):
    rendered = unit.render(conf, Config.from_env({"APPS": "flask-wsgi,flask-wsgi"}), {})
    assert set(rendered["applications"]) == {"flask", "fastapi"}
    for app in rendered["applications"].values():
        assert (app["module"], app["callable"], app["protocol"]) == ("flask-wsgi", "app", "wsgi")
    assert problems(rendered, import_apps=False) == []


def test_render_keeps_the_containers_defaults_when_nothing_is_set(conf):
    rendered = unit.render(conf, Config.from_env({"HOST": "0.0.0.0"}), {})
    assert set(rendered["listeners"]) == {"*:8080", "*:8081"}
    flask, fastapi = rendered["applications"]["flask"], rendered["applications"]["fastapi"]
    assert flask["processes"] == conf["applications"]["flask"]["processes"]
    assert flask["environment"] == conf["applications"]["flask"]["environment"]
    threads = str(conf["applications"]["fastapi"]["threads"])
    assert fastapi["environment"] == {**flask["environment"], "ASGI_EVENT_LOOPS": threads}


def test_an_unreadable_conf_stops_up_sh_with_a_message(tmp_path):
    (tmp_path / "conf.json").write_text("{not json")
    result = subprocess.run(
        [str(ROOT / "up.sh")],
        env={**os.environ, "SERVER": "granian", "UNIT_CONF": str(tmp_path / "conf.json")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"cannot read {tmp_path / 'conf.json'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_conf_without_a_usable_header_timeout_stops_up_sh_under_granian(conf, tmp_path):
    from test_serve import run_up  # granian on free ports

    conf["settings"]["http"]["header_read_timeout"] = 2.5
    (tmp_path / "conf.json").write_text(json.dumps(conf))
    result = run_up(UNIT_CONF=str(tmp_path / "conf.json"))
    assert result.returncode != 0
    assert "settings.http.header_read_timeout is 2.5, not 1-60 s" in result.stderr
    assert "serves Flask" not in result.stdout
