"""compare/answers.py: each scenario's right answer passes, and a wrong one of any kind is
named: a status, a type, a body that is some other route's or off by one, even where both
apps would give it alike."""

import json

import pytest

import database
import workloads
from compare.answers import Answer, problem

JSON = "application/json"


def answer(body: object, status: int = 200, content_type: str = JSON) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, content_type, raw)


def greeting(framework: str) -> dict:
    return {
        "message": f"Hello from {framework}",
        "framework": framework,
        "framework_version": "1.0",
        "interface": "wsgi",
        "python_version": "3.11.7",
        "pid": 42,
    }


FORTUNES_PAGE = database.fortunes_page(list(database.FORTUNES)).encode()
RIGHT = [
    ("hello", "/", "flask", answer(greeting("flask"))),
    ("hello", "/", "fastapi", answer(greeting("fastapi"))),
    ("json", "/json", "flask", answer(workloads.items().model_dump(mode="json"))),
    ("io", "/io?ms=10", "flask", answer({"ms": 10})),
    ("io", "/io", "fastapi", answer({"ms": workloads.IO_MS})),
    ("cpu", "/cpu?n=100", "flask", answer({"n": 100, "primes": 25})),
    ("db", "/db", "flask", answer({"id": 1, "randomNumber": 10_000})),
    ("queries", "/queries?n=2", "flask", answer([{"id": 3, "randomNumber": 4}] * 2)),
    ("updates", "/updates?n=1", "fastapi", answer([{"id": 10_000, "randomNumber": 1}])),
    (
        "fortunes",
        "/fortunes",
        "flask",
        answer(FORTUNES_PAGE, content_type="text/html; charset=utf-8"),
    ),
]


@pytest.mark.parametrize(("scenario", "target", "framework", "given"), RIGHT)
def test_the_right_answer_passes(scenario, target, framework, given):
    assert problem(scenario, target, framework, given) is None


@pytest.mark.parametrize(
    ("scenario", "target", "framework", "given", "says"),
    [
        ("json", "/json", "flask", answer({"detail": "x"}, status=503), "answered 503, not 200"),
        ("json", "/json", "flask", answer({}, status=201), "answered 201, not 200"),
        ("json", "/json", "flask", answer({}, content_type="text/plain"), "not application/json"),
        ("hello", "/", "flask", answer(greeting("fastapi")), "not flask's greeting"),
        ("hello", "/", "flask", answer({**greeting("flask"), "pid": "x"}), "not a greeting"),
        ("hello", "/", "flask", answer(b"<html>"), "not JSON"),
        ("json", "/json", "flask", answer({"count": 20, "items": []}), "not the expected json"),
        ("io", "/io?ms=10", "flask", answer({"ms": 9}), "not the expected io"),
        ("cpu", "/cpu?n=100", "flask", answer({"n": 100, "primes": 24}), "not the expected cpu"),
        ("db", "/db", "flask", answer({"id": 0, "randomNumber": 5}), "not in the table"),
        ("db", "/db", "flask", answer({"id": 1}), "not a world: Field required"),
        (
            "queries",
            "/queries",
            "flask",
            answer({"id": 1, "randomNumber": 1}),
            "not a list of worlds",
        ),
        (
            "queries",
            "/queries?n=3",
            "flask",
            answer([{"id": 1, "randomNumber": 1}] * 2),
            "2 worlds, not 3",
        ),
        ("updates", "/updates", "flask", answer([]), "0 worlds, not 1"),
        (
            "fortunes",
            "/fortunes",
            "flask",
            answer(FORTUNES_PAGE[:-1], content_type="text/html"),
            "not the fortunes page",
        ),
        ("fortunes", "/fortunes", "flask", answer(FORTUNES_PAGE), "not text/html"),
    ],
)
def test_a_wrong_answer_is_named(scenario, target, framework, given, says):
    found = problem(scenario, target, framework, given)
    assert found is not None and says in found, found
    assert found.startswith(f"GET {target}")
