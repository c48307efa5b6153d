"""The right answer to each scenario's request, so that a count or a load is of right
answers only: two apps that give the same wrong answer are not alike.

    >>> primes = Answer(200, "application/json", b'{"n":10,"primes":4}')
    >>> problem("cpu", "/cpu?n=10", "flask", primes)       # right: None
    >>> problem("json", "/json", "flask", Answer(503, "application/json", b"{}"))
    'GET /json answered 503, not 200'
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import TypeAdapter, ValidationError

import database
import workloads

WORLDS = TypeAdapter(list[database.World])
# The random numbers TechEmpower's world table holds (database.py makes them so).
NUMBERS = range(1, 10_001)


@dataclass(frozen=True)
class Answer:
    """One response as read off the connection."""

    status: int
    content_type: str | None
    body: bytes


@functools.cache
def primes(n: int) -> int:
    return workloads.count_primes(n)


@functools.cache
def fortunes_page() -> bytes:
    return database.fortunes_page(list(database.FORTUNES)).encode()


def worlds_problem(body: bytes, n: int | None) -> str | None:
    """What is wrong with a list of n worlds (n None: one world alone, as /db gives it)."""
    try:
        if n is None:
            worlds = [database.World.model_validate_json(body)]
        else:
            worlds = WORLDS.validate_json(body)
    except ValidationError as error:
        what = "a world" if n is None else "a list of worlds"
        return f"not {what}: {error.errors()[0]['msg']}"
    if n is not None and len(worlds) != n:
        return f"{len(worlds)} worlds, not {n}"
    for world in worlds:
        if world.id not in range(1, database.WORLD_ROWS + 1) or world.randomNumber not in NUMBERS:
            return f"a world that is not in the table: {world}"
    return None


def body_problem(scenario: str, query: dict[str, str], framework: str, body: bytes) -> str | None:
    """What is wrong with a 200's body for `scenario`, or None."""
    if scenario == "fortunes":
        return None if body == fortunes_page() else "not the fortunes page"
    if scenario in ("db", "queries", "updates"):
        return worlds_problem(body, None if scenario == "db" else int(query.get("n", 1)))
    try:
        found: Any = json.loads(body)
    except ValueError:
        return "not JSON"
    if scenario == "hello":
        if not isinstance(found, dict) or found.get("framework") != framework:
            return f"not {framework}'s greeting"
        try:
            workloads.Greeting.model_validate(found)
        except ValidationError:
            return "not a greeting"
        return None
    expected: dict[str, Any] = {
        "json": lambda: workloads.items().model_dump(mode="json"),
        "io": lambda: {"ms": int(query.get("ms", workloads.IO_MS))},
        "cpu": lambda: {"n": (n := int(query.get("n", workloads.CPU_N))), "primes": primes(n)},
    }[scenario]()
    return None if found == expected else f"not the expected {scenario} answer"


def problem(scenario: str, target: str, framework: str, answer: Answer) -> str | None:
    """What is wrong with `answer` to `GET target` of `scenario` from `framework`'s app (its
    status, type or body), in a few words, or None where it is right."""
    if answer.status != 200:
        return f"GET {target} answered {answer.status}, not 200"
    media = "text/html" if scenario == "fortunes" else "application/json"
    if (answer.content_type or "").split(";")[0].strip() != media:
        return f"GET {target} answered {answer.content_type!r}, not {media}"
    query = dict(parse_qsl(urlsplit(target).query))
    found = body_problem(scenario, query, framework, answer.body)
    return f"GET {target}: {found}" if found else None
