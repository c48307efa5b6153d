"""Both apps through their frameworks' test clients: every endpoint, every error, and parity."""

import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import database
import metrics.sampler
import workloads
from metrics.stats_body import LARGE_BYTES_PER_S, LargeAnswers, StatsBusy

ROOT = Path(__file__).resolve().parent.parent

# Every endpoint and every error case, with the status docs/endpoints.md gives it: both apps
# must answer each one so, and alike.
CASES = [
    ("GET", "/", 200),
    ("GET", "/status", 200),
    ("GET", "/stats", 200),
    ("GET", "/stats?last=1", 200),
    ("GET", "/json", 200),
    ("GET", "/io", 200),
    ("GET", "/io?ms=0", 200),
    ("GET", "/io?ms=5", 200),
    ("GET", "/cpu", 200),
    ("GET", "/cpu?n=1000", 200),
    ("GET", "/cpu?n=2", 200),
    ("GET", "/nope", 404),
    ("GET", "/stats/", 404),
    ("POST", "/", 405),
    ("POST", "/status", 405),
    ("DELETE", "/stats", 405),
    ("PUT", "/cpu?n=5", 405),
    ("GET", "/stats?last=0", 422),
    ("GET", "/stats?last=-1", 422),
    ("GET", "/stats?last=61", 422),
    ("GET", "/stats?last=abc", 422),
    ("GET", "/stats?last=", 422),
    ("GET", "/stats?lats=3", 422),
    ("GET", "/io?ms=-1", 422),
    ("GET", "/io?ms=2001", 422),
    ("GET", "/io?ms=1.5", 422),
    ("GET", "/io?ms=ten", 422),
    ("GET", "/io?ms=1&ms=x", 422),
    ("GET", "/io?seconds=1", 422),
    ("GET", "/cpu?n=1", 422),
    ("GET", "/cpu?n=1000001", 422),
    ("GET", "/cpu?n=1e3", 422),
    ("GET", "/cpu?n=5&extra=1", 422),
    ("GET", "/?x=1", 422),
    ("GET", "/status?x=1", 422),
    ("GET", "/json?x=1", 422),
    ("GET", "/json?x=1&x=2", 422),
    ("GET", "/io?ms=%FF", 422),
    ("OPTIONS", "/status", 405),
    ("PATCH", "/nope", 404),
    # The database routes: validated first, then (no database here) 503.
    ("GET", "/db", 503),
    ("GET", "/queries", 503),
    ("GET", "/queries?n=20", 503),
    ("GET", "/fortunes", 503),
    ("GET", "/updates?n=5", 503),
    ("GET", "/queries?n=0", 422),
    ("GET", "/queries?n=501", 422),
    ("GET", "/queries?n=abc", 422),
    ("GET", "/updates?n=-1", 422),
    ("GET", "/updates?n=1.5", 422),
    ("GET", "/updates?count=3", 422),
    ("GET", "/db?x=1", 422),
    ("GET", "/fortunes?n=1", 422),
    ("POST", "/db", 405),
]

# Figures that differ between two processes or two instants; their shape must still match.
VARYING = {"/", "/status", "/stats", "/stats?last=1"}


@pytest.fixture(scope="module")
def clients(flask_module, fastapi_module):
    # FastAPI's client runs the app's lifespan, as a server does: it makes the pool.
    with TestClient(fastapi_module.app) as fastapi_client:
        yield {"flask": flask_module.app.test_client(), "fastapi": fastapi_client}


def call(clients, framework, method, path):
    """(status, JSON body, headers) of one request through the app's test client."""
    if framework == "flask":
        response = clients["flask"].open(path, method=method)
        return response.status_code, response.get_json(), response.headers
    response = clients["fastapi"].request(method, path)
    return response.status_code, response.json(), response.headers


def shape(value):
    """The keys and types of a JSON value, with the values left out."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize(("method", "path", "status"), CASES)
def test_both_apps_answer_alike(clients, method, path, status):
    flask_status, flask_body, flask_headers = call(clients, "flask", method, path)
    fastapi_status, fastapi_body, fastapi_headers = call(clients, "fastapi", method, path)
    assert flask_status == fastapi_status == status
    assert flask_headers["content-type"] == fastapi_headers["content-type"] == "application/json"
    assert shape(flask_body) == shape(fastapi_body)
    assert list(flask_body) == list(fastapi_body)  # same keys in the same order
    if path not in VARYING:
        assert flask_body == fastapi_body
    if flask_status >= 400:
        assert "detail" in flask_body


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_greeting_names_framework_interface_and_pid(clients, framework):
    status, body, _ = call(clients, framework, "GET", "/")
    assert status == 200
    assert body == {
        "message": f"Hello from {'Flask' if framework == 'flask' else 'FastAPI'}",
        "framework": framework,
        "framework_version": version(framework),
        "interface": "wsgi" if framework == "flask" else "asgi",
        "python_version": platform.python_version(),
        "pid": os.getpid(),
    }


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_workloads_return_their_results(clients, framework):
    assert call(clients, framework, "GET", "/cpu?n=10000")[1] == {"n": 10000, "primes": 1229}
    assert call(clients, framework, "GET", "/io?ms=3")[1] == {"ms": 3}
    items = call(clients, framework, "GET", "/json")[1]
    assert items == workloads.items().model_dump()
    assert items["count"] == len(items["items"]) == workloads.ITEM_COUNT


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_bad_query_value_says_which_parameter_and_why(clients, framework):
    status, body, _ = call(clients, framework, "GET", "/io?ms=99999")
    assert status == 422
    [error] = body["detail"]
    assert error["loc"] == ["query", "ms"]
    assert error["input"] == "99999"
    assert "less than or equal to 2000" in error["msg"]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_unknown_query_parameter_is_rejected_not_ignored(clients, framework):
    status, body, _ = call(clients, framework, "GET", "/io?sleep=5")
    assert status == 422
    assert body["detail"][0]["type"] == "extra_forbidden"
    assert body["detail"][0]["loc"] == ["query", "sleep"]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_wrong_method_is_405_with_allow_header(clients, framework, method):
    status, body, headers = call(clients, framework, method, "/stats")
    assert (status, body) == (405, {"detail": "Method Not Allowed"})
    assert headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_head_is_get_without_a_body(clients, framework):
    get = clients[framework].get("/json")
    head = clients[framework].head("/json")
    body = head.data if framework == "flask" else head.content
    assert (head.status_code, body) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"] != "0"


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
@pytest.mark.parametrize("path", ["/", "/status", "/json"])
def test_routes_without_parameters_refuse_any(clients, framework, path):
    status, body, _ = call(clients, framework, "GET", path + "?x=1&x=2")
    assert status == 422
    assert body["detail"][0]["loc"] == ["query", "x"]
    assert body["detail"][0]["input"] == ["1", "2"]  # a repeated unknown key shows every value


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_stats_describes_its_window(clients, framework):
    status, body, _ = call(clients, framework, "GET", "/stats?last=3")
    assert status == 200
    assert body["slots"] == 60 and body["interval_s"] == 10.0
    assert body["window_s"] == 30.0
    assert body["count"] == len(body["samples"]) <= 3


def test_fastapi_describes_the_api_in_openapi(clients):
    spec = clients["fastapi"].get("/openapi.json").json()
    assert set(spec["paths"]) == {
        *("/", "/status", "/stats", "/json", "/io", "/cpu"),
        *("/db", "/queries", "/fortunes", "/updates"),
    }
    queries = {p["name"]: p["schema"] for p in spec["paths"]["/queries"]["get"]["parameters"]}
    assert (queries["n"]["minimum"], queries["n"]["maximum"]) == (1, database.MAX_ROWS)
    io_params = {p["name"]: p["schema"] for p in spec["paths"]["/io"]["get"]["parameters"]}
    assert io_params["ms"]["maximum"] == workloads.IO_MAX_MS == 2000


@pytest.mark.parametrize("module", ["flask-wsgi", "fastapi-asgi"])
@pytest.mark.parametrize(("name", "value"), [("METRICS_INTERVAL", "1_0"), ("METRICS_SLOTS", "1.0")])
def test_app_refuses_a_setting_that_is_not_plain_decimal_at_import(module, name, value):
    imported = subprocess.run(
        [sys.executable, "-c", f"import importlib; importlib.import_module({module!r})"],
        cwd=ROOT,
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode != 0
    assert f"invalid metrics setting: {name}={value!r}: Input should be a plain decimal" in (
        imported.stderr
    )


@pytest.mark.parametrize(("path", "method"), [("/status", "status"), ("/stats", "stats_body")])
def test_fastapi_answers_others_while_a_snapshot_or_stats_is_made(
    fastapi_module, monkeypatch, path, method
):
    # The sampler's call hangs until released: were it made on the event loop, no
    # other request could be answered meanwhile.
    release, called = threading.Event(), threading.Event()
    made = getattr(fastapi_module.sampler, method)

    def hanging(*args):
        called.set()
        assert release.wait(30)
        return made(*args)

    monkeypatch.setattr(fastapi_module.sampler, method, hanging)
    with TestClient(fastapi_module.app) as client:
        slow = concurrent.futures.ThreadPoolExecutor(1)
        answer = slow.submit(client.get, path)
        try:
            assert called.wait(30)
            assert client.get("/json").status_code == 200
            assert not answer.done()
        finally:
            release.set()
            slow.shutdown()
        assert answer.result().status_code == 200


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_stats_is_sent_with_its_length(clients, framework):
    response = clients[framework].get("/stats")
    body = response.data if framework == "flask" else response.content
    assert int(response.headers["content-length"]) == len(body) > 0
    assert json.loads(body)["samples"]


def test_a_large_stats_answer_waits_its_turn_alike(
    clients, flask_module, fastapi_module, monkeypatch
):
    # Every answer counts as large here, and the worker's turn is taken for an hour.
    monkeypatch.setattr(metrics.sampler, "LARGE_BYTES", 0)
    answers = {}
    for framework, module in (("flask", flask_module), ("fastapi", fastapi_module)):
        taken = LargeAnswers()
        taken.take(3600 * LARGE_BYTES_PER_S)
        monkeypatch.setattr(module.sampler, "_large_answers", taken)
        answers[framework] = call(clients, framework, "GET", "/stats")
        assert answers[framework][1] == {"detail": StatsBusy.detail}
        assert answers[framework][2]["retry-after"] == "3600"
        monkeypatch.setattr(module.sampler, "_large_answers", LargeAnswers())  # its turn
        assert call(clients, framework, "GET", "/stats")[0] == 200
    assert answers["flask"][0] == answers["fastapi"][0] == 503


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize("path", ["/", "/json?x=1", "/nope"])
def test_a_request_for_a_websocket_is_refused_with_403_and_nothing_more(
    clients, framework, method, path
):
    headers = {"Upgrade": "WebSocket", "Connection": "Upgrade"}
    if framework == "flask":
        response = clients["flask"].open(path, method=method, headers=headers)
        body = response.data
    else:
        response = clients["fastapi"].request(method, path, headers=headers)
        body = response.content
    assert (response.status_code, body) == (403, b"")
    assert "content-type" not in response.headers


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
@pytest.mark.parametrize("upgrade", ["h2c", "TLS/1.0", "websocket, h2c"])
def test_any_other_upgrade_is_ignored(clients, framework, upgrade):
    headers = {"Upgrade": upgrade, "Connection": "Upgrade"}
    response = clients[framework].get("/json", headers=headers)
    assert response.status_code == 200
    assert (response.get_json() if framework == "flask" else response.json())["count"] == 20


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
@pytest.mark.parametrize("n", ["0", "501"])
def test_an_out_of_range_n_is_refused_not_clamped(clients, framework, n):
    # TechEmpower clamps n to 1-500; this project refuses it, as it does every bad value.
    status, body, _ = call(clients, framework, "GET", f"/queries?n={n}")
    assert status == 422
    [error] = body["detail"]
    assert error["loc"] == ["query", "n"] and error["input"] == n


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_without_a_database_the_database_routes_say_how_to_get_one(clients, framework):
    for path in ("/db", "/queries?n=3", "/fortunes", "/updates?n=3"):
        status, body, _ = call(clients, framework, "GET", path)
        assert (status, body) == (503, {"detail": database.NO_DATABASE})
    assert "apt-get install postgresql-15" in database.NO_DATABASE


@pytest.mark.parametrize("module", ["flask-wsgi", "fastapi-asgi"])
@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL is empty"),
        ({"DATABASE_URL": "x", "DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE='0' is not"),
        (
            {"DATABASE_URL": "x", "DATABASE_POOL_SIZE": "2", "ASGI_EVENT_LOOPS": "4"},
            "DATABASE_POOL_SIZE=2 cannot be split evenly over the 4 event loops",
        ),
    ],
)
def test_app_refuses_a_bad_database_setting_when_it_makes_its_pool(module, env, says):
    # Flask makes its pool at import; FastAPI in its lifespan, which a client runs.
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, fastapi.testclient as t;"
            f" m = importlib.import_module({module!r});"
            " t.TestClient(m.app).__enter__() if hasattr(m.app, 'router') else None",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode != 0
    assert says in imported.stderr
