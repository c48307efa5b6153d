"""Reading one HTTP/1.x response off a stream, as the open-loop generator
(compare/generator.py) needs it: its status, and whether the connection stays open."""

from __future__ import annotations

import asyncio

NO_BODY_STATUSES = (204, 304)


class ProtocolError(Exception):
    """The answer is not an HTTP/1.x response this reader understands."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response: its status, and whether the connection stays open after it."""
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
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length: {value[:40]!r}") from None
        elif name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    if status in NO_BODY_STATUSES:
        pass
    elif chunked:
        await read_chunked(reader)
    elif length is not None:
        if length:
            await reader.readexactly(length)
    else:  # no length given: the body runs to the end of the connection
        await reader.read()
        keep_alive = False
    return status, keep_alive


async def read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_line[:40]!r}") from None
        if size == 0:
            break
        await reader.readexactly(size + 2)
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailer fields, up to the empty line
