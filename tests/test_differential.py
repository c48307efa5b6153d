"""Both apps served for real, sent the same raw requests, must answer alike.

Hundreds of requests are generated from the endpoints, the methods, the boundary
values of every parameter and malformed values (raw bytes, repeated keys, odd
paths), written byte for byte to a socket (no HTTP client normalises them), and
each pair of answers is compared on status, the headers that matter and the JSON
body. Only the figures that legitimately differ (pids, framework names and
versions, timings, measurements) are normalised away.

Where the server answers before the app (a request line it cannot parse, a URL or
headers too long), both ports get the same server-made answer, which is also
accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass

import pytest
from conftest import needs_postgres

SLOTS = 5  # so that /stats?last= has both of its bounds in reach

# Endpoints with their valid queries (cheap ones: /io waits at most 5 ms, /cpu counts
# below at most 100000) and invalid ones; /io?ms=10000 and /cpu?n=1000000 are valid
# bounds, left out because they take seconds: the parity test covers their neighbours.
VALID = {
    "/": [""],
    "/status": [""],
    "/stats": ["", "last=1", f"last={SLOTS}", "last=01"],
    "/json": [""],
    "/io": ["", "ms=0", "ms=5", "ms=1&ms=2"],
    "/cpu": ["", "n=2", "n=3", "n=100000", "n=5&n=7"],
    "/db": [""],
    "/queries": ["", "n=1", "n=500", "n=3&n=2"],
    "/fortunes": [""],
    "/updates": ["", "n=1", "n=500", "n=3&n=2"],
}
DATABASE_PATHS = ("/db", "/queries", "/fortunes", "/updates")
PARAMETER = {"/stats": "last", "/io": "ms", "/cpu": "n", "/queries": "n", "/updates": "n"}
OUT_OF_RANGE = {
    "/stats": ["0", "-1", str(SLOTS + 1)],
    "/io": ["-1", "10001"],
    "/cpu": ["1", "0"],
    "/queries": ["0", "-1", "501"],
    "/updates": ["0", "501"],
}
# Values no parameter accepts, as they would arrive in a query string.
MALFORMED = [
    "",
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "1_0",
    "+1",
    "%201",
    "1%20",
    "99999999999999999999999",
    "%FF",  # invalid UTF-8, percent-encoded
    "%C3%A9",  # é, percent-encoded
    "\xe9".encode().decode("latin-1"),  # é as raw UTF-8 bytes
    "\xff",  # a raw byte that is not UTF-8
    "\u0665".encode().decode("latin-1"),  # ARABIC-INDIC DIGIT FIVE, raw
    "1;2",
    "1%00",
    "[1]",
]
OTHER_QUERIES = [
    "x=1",
    "x=1&x=2",
    "x",
    "=1",
    "&",
    "x=%FF",
    "%FF=1",
    "\xe9".encode().decode("latin-1") + "=1",
]
ODD_PATHS = [
    "/nope",
    "/stats/",
    "//status",
    "/status/",
    "/STATUS",
    "/status%2F",
    "/%73tatus",
    "/./status",
    "/json;x=1",
    "/db/",
    "/Fortunes",
    "/" + "a" * 300,
    "/\xe9".encode().decode("latin-1"),
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "Head", "FOO"]


def targets(paths=VALID) -> list[str]:
    """Every request target (path and query) the differential test sends to `paths`."""
    found = []
    for path, queries in VALID.items():
        if path not in paths:
            continue
        found += [path + (f"?{q}" if q else "") for q in queries]
        found += [f"{path}?{q}" for q in OTHER_QUERIES]
        if name := PARAMETER.get(path):
            found += [f"{path}?{name}={v}" for v in OUT_OF_RANGE[path] + MALFORMED]
            found += [f"{path}?{name}", f"{path}?{name}=1&x=1", f"{path}?{name}=x&{name}=1"]
    if paths is not VALID:
        return found
    return found + ODD_PATHS + ["/?", "/status?", "/json?&", "status", "*"]


def requests(paths=VALID) -> list[tuple[str, bytes]]:
    """(name, raw request) pairs: every method on every target, plus malformed framing;
    only targets on `paths` (no framing) where those are given."""
    built = []
    for target in targets(paths):
        methods = METHODS if target.partition("?")[2] in ("", "x=1") else ["GET", "HEAD", "POST"]
        for method in methods:
            built.append((f"{method} {target}", raw(method, target)))
    if paths is not VALID:
        return _unique(built)
    built += [
        ("HTTP/1.0 request", raw("GET", "/json", version="HTTP/1.0")),
        ("absolute-form target", raw("GET", "http://127.0.0.1/json")),
        ("POST with a body", raw("POST", "/json", body=b'{"a": 1}')),
        ("GET with a body", raw("GET", "/cpu?n=10", body=b"x" * 100)),
        ("a long Host label", raw("GET", "/", host="a" * 64 + ".example")),
        ("an over-long Host label", raw("GET", "/", host="a" * 300)),
        ("a Host with a port", raw("GET", "/io?ms=1", host="example.com:99")),
        ("no Host", raw("GET", "/json", host=None)),
        ("a non-ASCII Host", raw("GET", "/json", host="\xe9.example")),
        ("a 9000-byte target", raw("GET", "/io?ms=1&x=" + "y" * 9000)),
        ("a 20000-byte header", raw("GET", "/json", extra=b"X-Big: " + b"z" * 20000 + b"\r\n")),
        ("a header without a colon", raw("GET", "/json", extra=b"Broken header\r\n")),
        ("a request line without a version", b"GET /json\r\n\r\n"),
        ("an empty request line", b"\r\n\r\nGET /json HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ("lowercase header names", raw("GET", "/status", extra=b"accept: */*\r\n")),
        ("Expect: 100-continue", raw("POST", "/json", extra=b"Expect: 100-continue\r\n")),
    ]
    return _unique(built)


def _unique(built: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """`built` without a request sent twice (a value may come from two lists)."""
    names: dict[bytes, str] = {}
    for name, request in built:
        names.setdefault(request, name)
    return [(name, request) for request, name in names.items()]


def raw(
    method: str,
    target: str,
    version: str = "HTTP/1.1",
    host: str | None = "127.0.0.1",
    body: bytes = b"",
    extra: bytes = b"",
) -> bytes:
    """A request exactly as written, one byte per character of its latin-1 text."""
    lines = f"{method} {target} {version}\r\n".encode("latin-1")
    if host is not None:
        lines += f"Host: {host}\r\n".encode("latin-1")
    if body:
        lines += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n".encode()
    return lines + extra + b"Connection: close\r\n\r\n" + body


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str]
    body: bytes


def send(port: int, request: bytes) -> Answer:
    """Write `request` to a fresh connection and read the answer until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    if not head:
        return Answer(None, {}, b"")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return Answer(int(status_line.split()[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    joined = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        joined, body = joined + body[:size], body[size + 2 :]
    return joined


# What two answers are compared on: these headers, when either has them...
COMPARED_HEADERS = ("allow", "content-type", "location")
# ...and whether they have these at all (their values follow from the body).
PRESENT_HEADERS = ("content-length", "transfer-encoding")
# Keys whose values differ between the two apps or two instants by nature.
VARYING_KEYS = {
    "message",
    "framework",
    "framework_version",
    "interface",
    "pid",
    "pids",
    "names",  # the server's processes: under Unit, each app's own prototype
    "timestamp",
    "time",
}


def normalised(value, figures: bool):
    """`value` with what legitimately differs replaced by its type: `figures` says
    whether every number is a measurement (/status, /stats)."""
    if isinstance(value, dict):
        return {
            key: type(item).__name__ if key in VARYING_KEYS else normalised(item, figures)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalised(item, figures) for item in value]
    if figures and isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return value


def is_world(value) -> bool:
    return isinstance(value, dict) and list(value) == ["id", "randomNumber"]


def comparable(answer: Answer) -> dict:
    """What of an answer must be the same from both apps."""
    body: object = answer.body
    if answer.headers.get("content-type") == "application/json" and answer.body:
        body = json.loads(answer.body)
        measured = isinstance(body, dict) and ("cpu_window_s" in body or "samples" in body)
        # Random rows of world: their numbers differ, their shape and count must not.
        drawn = is_world(body) or (isinstance(body, list) and all(map(is_world, body)))
        body = normalised(body, figures=measured or drawn)
    return {
        "status": answer.status,
        **{name: answer.headers.get(name) for name in COMPARED_HEADERS},
        **{f"has {name}": name in answer.headers for name in PRESENT_HEADERS},
        "body": body,
    }


def differences(served, built: list[tuple[str, bytes]] | None = None) -> list[str]:
    """Every request (of `built`, by default all) to which the two apps `served` answer
    differently, with what differs."""
    ports = {app: int(url.rsplit(":", 1)[1]) for app, url in served.urls.items()}
    # Both buffers full first, so that both /stats answers hold as many samples.
    deadline = time.monotonic() + 30
    for port in ports.values():
        while json.loads(send(port, raw("GET", "/stats")).body)["count"] < SLOTS:
            assert time.monotonic() < deadline, "the buffers did not fill within 30 s"
            time.sleep(0.1)
    found = []
    for name, request in built or requests():
        flask, fastapi = (comparable(send(port, request)) for port in ports.values())
        if flask != fastapi:
            differ = {
                key: (flask[key], fastapi[key]) for key in flask if flask[key] != fastapi[key]
            }
            found.append(f"{name!r}: (flask, fastapi) {differ}")
    return found


def test_the_generated_requests_cover_enough_ground():
    built = requests()
    assert len(built) >= 500
    assert len({request for _, request in built}) == len(built)  # no request twice
    methods = {request.split(b" ")[0] for _, request in built}
    assert {b"GET", b"HEAD", b"OPTIONS", b"get"} <= methods


def test_both_apps_answer_every_raw_request_alike_under_granian(served_factory):
    served = served_factory(METRICS_SLOTS=str(SLOTS), METRICS_INTERVAL="0.2")
    found = differences(served)
    assert not found, f"{len(found)} of {len(requests())} requests differ:\n" + "\n".join(found)


UNITD = os.environ.get("UNITD", "unitd")


@pytest.mark.unit
@pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)
def test_both_apps_answer_every_raw_request_alike_under_unit(served_factory):
    served = served_factory(
        SERVER="unit", UNITD=UNITD, METRICS_SLOTS=str(SLOTS), METRICS_INTERVAL="0.2"
    )
    found = differences(served)
    assert not found, f"{len(found)} of {len(requests())} requests differ:\n" + "\n".join(found)


DATABASE_REQUESTS = requests(DATABASE_PATHS)


@needs_postgres
def test_both_apps_answer_the_database_routes_alike_from_a_real_postgresql(served_factory):
    served = served_factory(DATABASE="postgres", METRICS_SLOTS=str(SLOTS), METRICS_INTERVAL="0.2")
    found = differences(served, DATABASE_REQUESTS)
    assert not found, f"{len(found)} of {len(DATABASE_REQUESTS)} differ:\n" + "\n".join(found)
    # Not the same 503 twice: the database answered.
    answer = send(int(served.urls["flask"].rsplit(":", 1)[1]), raw("GET", "/queries?n=500"))
    assert answer.status == 200 and len(json.loads(answer.body)) == 500


@pytest.mark.unit
@needs_postgres
@pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)
def test_both_apps_answer_the_database_routes_alike_under_unit(served_factory):
    served = served_factory(
        SERVER="unit",
        UNITD=UNITD,
        DATABASE="postgres",
        METRICS_SLOTS=str(SLOTS),
        METRICS_INTERVAL="0.2",
    )
    found = differences(served, DATABASE_REQUESTS)
    assert not found, f"{len(found)} of {len(DATABASE_REQUESTS)} differ:\n" + "\n".join(found)
