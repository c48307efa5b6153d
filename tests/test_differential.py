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
import posixpath
import re
import shutil
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

import pytest
from conftest import needs_postgres

SLOTS = 5  # so that /stats?last= has both of its bounds in reach

# Endpoints with their valid queries, the bounds included (/io?ms=2000 waits 2 s, the
# longest any request takes), and invalid ones.
VALID = {
    "/": [""],
    "/status": [""],
    "/stats": ["", "last=1", f"last={SLOTS}", "last=01"],
    "/json": [""],
    "/io": ["", "ms=0", "ms=5", "ms=1&ms=2", "ms=2000"],
    "/cpu": ["", "n=2", "n=3", "n=100000", "n=1000000", "n=5&n=7"],
    "/db": [""],
    "/queries": ["", "n=1", "n=500", "n=3&n=2"],
    "/fortunes": [""],
    "/updates": ["", "n=1", "n=500", "n=3&n=2"],
}
DATABASE_PATHS = ("/db", "/queries", "/fortunes", "/updates")
PARAMETER = {"/stats": "last", "/io": "ms", "/cpu": "n", "/queries": "n", "/updates": "n"}
OUT_OF_RANGE = {
    "/stats": ["0", "-1", str(SLOTS + 1)],
    "/io": ["-1", "2001"],
    "/cpu": ["1", "0", "1000001"],
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
    built += [(name, request) for name, request, _, _ in UPGRADES]
    return _unique(built)


def _unique(built: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """`built` without a request sent twice (a value may come from two lists)."""
    names: dict[bytes, str] = {}
    for name, request in built:
        names.setdefault(request, name)
    return [(name, request) for request, name in names.items()]


# The answers docs/endpoints.md gives each generated request, worked out from it alone,
# not from either app: each pair must be this, as well as alike.
BOUNDS = {
    "/stats": (1, SLOTS),
    "/io": (0, 2000),
    "/cpu": (2, 1_000_000),
    "/queries": (1, 500),
    "/updates": (1, 500),
}
# What pydantic reads as an integer from a query: ASCII digits, a sign, underscores between
# digits, spaces around ("+1", " 1", "1_0"); no decimals, exponents or other scripts' digits.
INTEGER = re.compile(r"\s*[+-]?\d+(_\d+)*\s*", re.ASCII)
# The framing requests' answers: (under granian, under Unit).
FRAMING = {
    "HTTP/1.0 request": (200, 200),
    "absolute-form target": (200, 400),
    "POST with a body": (405, 405),
    "GET with a body": (200, 200),
    "a long Host label": (200, 200),
    "an over-long Host label": (200, 200),
    "a Host with a port": (200, 200),
    "no Host": (200, 200),
    "a non-ASCII Host": (200, 200),
    "a 9000-byte target": (422, 431),  # its x= is an unknown parameter; Unit's limit is 8 KiB
    "a 20000-byte header": (200, 431),
    "a header without a colon": (400, 400),
    "a request line without a version": (400, 400),
    "an empty request line": (200, 200),
    "lowercase header names": (200, 200),
    "Expect: 100-continue": (405, 405),
}


def utf8(text: str) -> bool:
    try:
        text.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def expected_status(method: str, target: str, server: str, database: bool) -> int:
    """What docs/endpoints.md says `method target` gets under `server`, with a database or
    without (its routes' valid requests then get 503)."""
    path, _, query = target.partition("?")
    if server == "unit":
        if method != method.upper() or not target.startswith("/"):
            return 400  # Unit's own answer
        # Unit merges slashes and removes dot segments: //status and /./status are /status.
        trailing = "/" if path.endswith("/") and path != "/" else ""
        path = posixpath.normpath(re.sub("/+", "/", path)) + trailing
    elif not utf8(target):
        return 400  # granian's own answer to a byte that is not UTF-8
    path = unquote_to_bytes(path).decode("utf-8", "replace")
    if path not in VALID:
        return 404
    if method not in ("GET", "HEAD"):
        return 405
    values = {}  # a repeated parameter counts by its last value
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        values[unquote(key, errors="replace")] = unquote(value, errors="replace")
    name = PARAMETER.get(path)
    if set(values) - {name}:
        return 422  # an unknown parameter
    if name in values:
        low, high = BOUNDS[path]
        if not INTEGER.fullmatch(values[name]) or not low <= int(values[name]) <= high:
            return 422
    return 200 if database or path not in DATABASE_PATHS else 503


def expected_for(name: str, request: bytes, server: str, database: bool) -> int:
    """The status a generated request must get under `server`, with a database or not."""
    upgrades = {upgrade[0]: upgrade[2:] for upgrade in UPGRADES}
    if name in upgrades or name in FRAMING:
        granian, unit = upgrades.get(name) or FRAMING[name]
        return granian if server == "granian" else unit
    method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return expected_status(method, target, server, database)


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


KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
HANDSHAKE = b"Upgrade: websocket\r\nConnection: Upgrade\r\n" + KEY
REFUSED, IGNORED = 403, 200  # a request for a WebSocket; any other Upgrade
# Requests to switch protocols, and Upgrade and Connection tricks: their name, the
# request, and what both apps answer under granian and under Unit, which refuses a
# malformed WebSocket handshake itself (400, or 426 for another version), for both.
UPGRADES = [
    ("a WebSocket handshake", raw("GET", "/", extra=HANDSHAKE), REFUSED, REFUSED),
    (
        "a WebSocket handshake to /json?x=1",
        raw("GET", "/json?x=1", extra=HANDSHAKE),
        REFUSED,
        REFUSED,
    ),
    ("a WebSocket handshake to /nope", raw("GET", "/nope", extra=HANDSHAKE), REFUSED, REFUSED),
    (
        "a WebSocket handshake in odd case",
        raw("GET", "/", extra=b"upgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n" + KEY),
        REFUSED,
        REFUSED,
    ),
    (
        "Connection: Upgraded",
        raw("GET", "/", extra=b"Upgrade: websocket\r\nConnection: Upgraded\r\n" + KEY),
        REFUSED,
        REFUSED,
    ),
    (
        "a WebSocket handshake without its key",
        raw("GET", "/", extra=b"Upgrade: websocket\r\nConnection: Upgrade\r\n"),
        REFUSED,
        400,
    ),
    (
        "a WebSocket handshake of another version",
        raw("GET", "/", extra=HANDSHAKE.replace(b"Version: 13", b"Version: 8")),
        REFUSED,
        426,
    ),
    ("a WebSocket handshake by POST", raw("POST", "/", extra=HANDSHAKE), REFUSED, 400),
    (
        "a WebSocket handshake in HTTP/1.0",
        raw("GET", "/", "HTTP/1.0", extra=HANDSHAKE),
        REFUSED,
        400,
    ),
    (
        "Upgrade: websocket alone",
        raw("GET", "/json", extra=b"Upgrade: websocket\r\n"),
        REFUSED,
        REFUSED,
    ),
    (
        "Upgrade: websocket by HEAD",
        raw("HEAD", "/", extra=b"Upgrade: websocket\r\n"),
        REFUSED,
        REFUSED,
    ),
    (
        "an upgrade to h2c",
        raw(
            "GET",
            "/json",
            extra=b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\n",
        ),
        IGNORED,
        IGNORED,
    ),
    (
        "Connection: Upgrade alone",
        raw("GET", "/json", extra=b"Connection: Upgrade\r\n"),
        IGNORED,
        IGNORED,
    ),
    (
        "Upgrade: websocket, h2c",
        raw("GET", "/", extra=HANDSHAKE.replace(b"websocket", b"websocket, h2c")),
        IGNORED,
        IGNORED,
    ),
    (
        "an upgrade to TLS",
        raw("GET", "/status", extra=b"Upgrade: TLS/1.0\r\nConnection: Upgrade\r\n"),
        IGNORED,
        IGNORED,
    ),
]


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str]
    body: bytes


def send(port: int, request: bytes) -> Answer:
    """Write `request` to a fresh connection and read the answer, until it is whole or the
    server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while not whole(received, request.startswith(b"HEAD ")) and (chunk := sock.recv(65536)):
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


def whole(received: bytes, head_only: bool) -> bool:
    """Whether `received` holds a whole final answer: a server may keep the connection
    open after it (Unit does after a WebSocket handshake's, until its header timeout)."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found or head[9:10] == b"1":  # none yet, or an interim answer (100 Continue)
        return False
    if head_only or head[9:12] in (b"204", b"304"):
        return True
    head = head.lower()
    if b"\r\ntransfer-encoding: chunked" in head:
        return body == b"0\r\n\r\n" or body.endswith(b"\r\n0\r\n\r\n")
    length = re.search(rb"\r\ncontent-length: *(\d+)", head)
    return length is not None and len(body) >= int(length[1])


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


def differences(
    served, server: str, built: list[tuple[str, bytes]] | None = None, database: bool = False
) -> list[str]:
    """Every request (of `built`, by default all) to which the two apps `served` under
    `server` (with a database or not) answer differently, or not with the status it must
    get, with what is wrong."""
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
        status = expected_for(name, request, server, database)
        if flask["status"] != status or fastapi["status"] != status:
            found.append(
                f"{name!r}: (flask, fastapi) {flask['status']}, {fastapi['status']}, not {status}"
            )
        elif flask != fastapi:
            differ = {
                key: (flask[key], fastapi[key]) for key in flask if flask[key] != fastapi[key]
            }
            found.append(f"{name!r}: (flask, fastapi) {differ}")
    return found


def test_the_generated_requests_cover_enough_ground():
    built = requests()
    assert len(built) >= 1000  # docs/testing.md and docs/endpoints.md say "over 1,000"
    assert len({request for _, request in built}) == len(built)  # no request twice
    methods = {request.split(b" ")[0] for _, request in built}
    assert {b"GET", b"HEAD", b"OPTIONS", b"get"} <= methods


def test_both_apps_answer_every_raw_request_alike_under_granian(served_factory):
    served = served_factory(METRICS_SLOTS=str(SLOTS), METRICS_INTERVAL="0.2")
    found = differences(served, "granian")
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
    found = differences(served, "unit")
    assert not found, f"{len(found)} of {len(requests())} requests differ:\n" + "\n".join(found)


def assert_upgrades_answered(served, server: str) -> None:
    """Each of UPGRADES answered by both apps as it should be under `server` (a request
    for a WebSocket refused with 403 and nothing more; any other Upgrade ignored: the
    route's own answer), ROUNDS times; meanwhile up.sh's log, the servers' output in it,
    gains no traceback, at most a line per request, and fewer bytes than were sent."""
    ports = {app: int(url.rsplit(":", 1)[1]) for app, url in served.urls.items()}
    logged_before = served.log.stat().st_size
    sent = requests_sent = 0
    for _ in range(ROUNDS):
        for name, request, under_granian, under_unit in UPGRADES:
            expected = under_granian if server == "granian" else under_unit
            target = request.split(b" ")[1].decode()
            for app, port in ports.items():
                answer = send(port, request)
                sent, requests_sent = sent + len(request), requests_sent + 1
                assert answer.status == expected, (name, app, answer)
                if expected == REFUSED:
                    assert answer.body == b"" and "content-type" not in answer.headers
                if expected == IGNORED:
                    plain = comparable(send(port, raw("GET", target)))
                    assert comparable(answer)["body"] == plain["body"], (name, app)
    time.sleep(1)  # the servers' last lines
    grown = served.log.read_bytes()[logged_before:]
    assert b"Traceback" not in grown, grown[-3000:]
    assert grown.count(b"\n") <= requests_sent and len(grown) < sent, grown[-3000:]


ROUNDS = 5


def test_upgrades_are_refused_or_ignored_alike_and_log_nothing_under_granian(served_factory):
    assert_upgrades_answered(served_factory(), "granian")


@pytest.mark.unit
@pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)
def test_upgrades_are_refused_or_ignored_alike_and_log_nothing_under_unit(served_factory):
    assert_upgrades_answered(served_factory(SERVER="unit", UNITD=UNITD), "unit")


DATABASE_REQUESTS = requests(DATABASE_PATHS)


@needs_postgres
def test_both_apps_answer_the_database_routes_alike_from_a_real_postgresql(served_factory):
    served = served_factory(DATABASE="postgres", METRICS_SLOTS=str(SLOTS), METRICS_INTERVAL="0.2")
    # Each valid request must get its 200 from the database (not the same 503 twice).
    found = differences(served, "granian", DATABASE_REQUESTS, database=True)
    assert not found, f"{len(found)} of {len(DATABASE_REQUESTS)} differ:\n" + "\n".join(found)
    assert_rows_answered(served)


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
    found = differences(served, "unit", DATABASE_REQUESTS, database=True)
    assert not found, f"{len(found)} of {len(DATABASE_REQUESTS)} differ:\n" + "\n".join(found)
    assert_rows_answered(served)


def assert_rows_answered(served) -> None:
    """Each app's /queries?n=500 is 500 rows of world, with ids in its range."""
    for app, url in served.urls.items():
        answer = send(int(url.rsplit(":", 1)[1]), raw("GET", "/queries?n=500"))
        rows = json.loads(answer.body)
        assert answer.status == 200 and len(rows) == 500 and all(map(is_world, rows)), app
        assert all(1 <= row["id"] <= 10_000 for row in rows), app
