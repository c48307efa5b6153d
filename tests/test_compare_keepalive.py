"""compare/keepalive.py against loopback servers of the test's own: every request the same
bytes, spread evenly over connections held open, each answer read whole (by length or in
chunks), and a server that closes, stalls or is not there named in one error."""

import asyncio
import contextlib

import pytest

from compare.keepalive import ClientError, Connections, request_bytes


@contextlib.asynccontextmanager
async def server(answer: bytes, close_after: int | None = None):
    """A loopback server answering `answer` to each request head; what it received, per
    connection, in `seen`."""
    seen: list[list[bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads: list[bytes] = []
        seen.append(heads)
        try:
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(answer)
                await writer.drain()
                if close_after is not None and len(heads) >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield listening.sockets[0].getsockname()[1], seen
    finally:
        listening.close()


LENGTH = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3\r\n<p>\r\n5\r\nhi</p\r\n1\r\n>\r\n0\r\n\r\n"
)


def test_requests_are_spread_evenly_over_the_connections_held_open():
    async def run():
        async with server(LENGTH) as (port, seen):
            async with Connections(port, count=3) as connections:
                answers = await connections.send("/json", 10)
            return answers, seen

    answers, seen = asyncio.run(run())
    assert len(answers) == 10
    assert {(a.status, a.content_type, a.body) for a in answers} == {
        (200, "application/json", b'{"a":1}')
    }
    assert sorted(len(heads) for heads in seen) == [3, 3, 4]
    expected = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
    assert request_bytes("/json") == expected
    assert {head for heads in seen for head in heads} == {expected}


def test_a_chunked_answer_is_read_whole():
    async def run():
        async with server(CHUNKED) as (port, _), Connections(port, 1) as connections:
            return await connections.send("/fortunes", 2)

    answers = asyncio.run(run())
    assert [(a.content_type, a.body) for a in answers] == [
        ("text/html; charset=utf-8", b"<p>hi</p>")
    ] * 2


def test_a_server_that_closes_is_an_error():
    async def run():
        async with server(LENGTH, close_after=2) as (port, _), Connections(port, 1) as connections:
            await connections.send("/", 5)

    with pytest.raises(ClientError, match="GET / on port"):
        asyncio.run(run())


def test_a_server_that_never_answers_is_an_error_after_the_timeout():
    async def run():
        async with server(b"") as (port, _), Connections(port, 2, timeout_s=0.5) as connections:
            await connections.send("/io", 2)

    with pytest.raises(ClientError, match="TimeoutError"):
        asyncio.run(run())


def test_no_server_is_an_error_when_connecting():
    async def run():
        async with server(LENGTH) as (port, _):
            pass  # closed: nothing listens on port any more
        async with Connections(port, count=1):
            pass

    with pytest.raises(ClientError, match="could not connect"):
        asyncio.run(run())
