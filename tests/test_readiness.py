"""serve/readiness.py: both apps serve once each answers / as itself and /status with 200.
It runs on a bare Python, as the images' HEALTHCHECK and start.sh on a host run it."""

from test_config import bare_python

from serve.ports import free_ports
from serve.readiness import ask_both


def test_both_apps_served_are_ready_by_their_ports_or_their_settings(served_factory):
    served = served_factory()
    flask, fastapi = (str(served.ports[app]) for app in ("flask", "fastapi"))
    assert [a.ready for a in ask_both("127.0.0.1", served.ports)] == [True, True]
    given = bare_python("-m", "serve.readiness", "127.0.0.1", flask, fastapi)
    assert (given.returncode, given.stdout, given.stderr) == (0, "", "")
    # As in the image: HOST 0.0.0.0 is reached at 127.0.0.1, the ports are the settings.
    settings = bare_python(
        "-m", "serve.readiness", HOST="0.0.0.0", FLASK_PORT=flask, FASTAPI_PORT=fastapi
    )
    assert (settings.returncode, settings.stderr) == (0, "")


def test_a_port_nothing_answers_on_is_not_ready_and_says_why():
    ports = dict(zip(("flask", "fastapi"), free_ports(2), strict=True))
    result = bare_python("-m", "serve.readiness", "127.0.0.1", *map(str, ports.values()))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Flask does not answer on port {ports['flask']} yet: [Errno 111] Connection refused",
        f"FastAPI does not answer on port {ports['fastapi']} yet: [Errno 111] Connection refused",
    ]


def test_an_app_on_the_other_apps_port_is_not_ready(served_factory):
    served = served_factory()
    swapped = {"flask": served.ports["fastapi"], "fastapi": served.ports["flask"]}
    answers = ask_both("127.0.0.1", swapped)
    assert [a.ready for a in answers] == [False, False]
    assert answers[0].why == f"port {swapped['flask']} answers GET / with 200, not as Flask"
    assert not any(a.broken for a in answers)  # another app there is no failed app


def test_a_port_serving_another_framework_is_ready_where_that_is_what_it_serves(served_factory):
    served = served_factory()
    both_flask = {"flask": served.ports["flask"], "fastapi": served.ports["flask"]}
    assert [a.ready for a in ask_both("127.0.0.1", both_flask)] == [True, False]
    told = ask_both("127.0.0.1", both_flask, frameworks={"fastapi": "flask"})
    assert [a.ready for a in told] == [True, True]
