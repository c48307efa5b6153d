"""Reading one HTTP/1.x response off a stream, as the open-loop generator
(compare/generator.py) and the whole-request count (compare/keepalive.py) need it: its
status, whether the connection stays open, its type and its body."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

NO_BODY_STATUSES = (204, 304)


class ProtocolError(Exception):
    """The answer is not an HTTP/1.x response this reader understands."""


class Response(NamedTuple):
    status: int
    keep_alive: bool  # whether the connection stays open after it
    content_type: str | None
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one whole response."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:40]!r}")
        try:
            status = int(status_line[9:12])
        except ValueError:
            raise ProtocolError(f"bad status line: {status_line[:40]!r}") from None
        if not 100 <= status < 200:
            break  # 1xx answers are interim: the real one follows
    keep_alive = status_line[7:8] == b"1"  # HTTP/1.1 keeps the connection by default, 1.0 not
    length = None
    chunked = False
    content_type = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length: {value[:40]!r}") from None
        elif name == b"content-type":
            content_type = value.strip().decode("latin-1")
        elif name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    body = b""
    if status in NO_BODY_STATUSES:
        pass
    elif chunked:
        body = await read_chunked(reader)
    elif length is not None:
        if length:
            body = await reader.readexactly(length)
    else:  # no length given: the body runs to the end of the connection
        body = await reader.read()
        keep_alive = False
    return Response(status, keep_alive, content_type, body)


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_line[:40]!r}") from None
        if size == 0:
            break
        chunks.append((await reader.readexactly(size + 2))[:-2])
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailer fields, up to the empty line
    return b"".join(chunks)
