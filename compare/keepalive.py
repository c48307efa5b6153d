"""Requests over a set of keep-alive connections held open, each answer read whole: the
client of the whole-request count (compare/whole_request.py).

    async with Connections(8080, count=16) as connections:
        answers = await connections.send("/json", requests=200)

Every request is the same bytes, whatever the app and its port: `GET target` with the one
header wrk sends, naming one host (compare/app_driver.py's), so that both apps parse the
same request. The connections are opened before the requests and closed after them, so
that what happens between is the requests' work alone: `send` spreads its requests over
them, each connection sending its next request once its last is answered.
"""

from __future__ import annotations

import asyncio

from compare.answers import Answer
from compare.app_driver import HOST
from compare.http_response import ProtocolError, read_response

TIMEOUT_S = 120.0  # one answer, under valgrind on a busy machine


class ClientError(RuntimeError):
    """A connection could not be made, was closed, or an answer did not come in time."""


def request_bytes(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode("latin-1")


class Connections:
    """`count` keep-alive connections to 127.0.0.1:`port`."""

    def __init__(self, port: int, count: int, timeout_s: float = TIMEOUT_S):
        self.port = port
        self.count = count
        self.timeout_s = timeout_s
        self.streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> Connections:
        try:
            for _ in range(self.count):
                opened = asyncio.open_connection("127.0.0.1", self.port)
                self.streams.append(await asyncio.wait_for(opened, self.timeout_s))
        except (OSError, TimeoutError) as error:
            await self.__aexit__()
            raise ClientError(f"could not connect to port {self.port}: {error}") from None
        return self

    async def __aexit__(self, *_) -> None:
        for _, writer in self.streams:
            writer.close()
        self.streams.clear()

    async def send(self, target: str, requests: int) -> list[Answer]:
        """`requests` requests of `target`, spread evenly over the connections; their
        answers, in no particular order."""
        request = request_bytes(target)
        shares = [
            requests // self.count + (index < requests % self.count) for index in range(self.count)
        ]

        async def over(streams, share: int) -> list[Answer]:
            reader, writer = streams
            answers = []
            for _ in range(share):
                writer.write(request)
                try:
                    response = await asyncio.wait_for(read_response(reader), self.timeout_s)
                except (OSError, EOFError, ProtocolError, TimeoutError) as error:
                    why = type(error).__name__ if isinstance(error, TimeoutError) else error
                    raise ClientError(f"GET {target} on port {self.port}: {why}") from None
                answers.append(Answer(response.status, response.content_type, response.body))
                if not response.keep_alive:
                    raise ClientError(f"GET {target} on port {self.port}: the server closed")
            return answers

        done = await asyncio.gather(
            *(over(streams, share) for streams, share in zip(self.streams, shares, strict=True))
        )
        return [answer for answers in done for answer in answers]
