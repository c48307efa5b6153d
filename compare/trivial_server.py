"""The smallest honest HTTP/1.1 server: every request head gets one fixed keep-alive 200.

    $ python3 compare/trivial_server.py
    40163

It prints the loopback port it listens on (the kernel's choice), then serves until
stopped. Against it, openloop measures its own floor (compare/floor.py): none of
the apps' work is in those latencies, only the generator's, the loopback's and the
kernel's scheduling. Standard library only (asyncio), so that it starts in a moment
and holds next to nothing. It reads no bodies: openloop sends GETs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
END_OF_HEAD = b"\r\n\r\n"


class Answer(asyncio.Protocol):
    """Answers every whole request head it has read, at once, in order."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(END_OF_HEAD)
        if count:
            self.pending = self.pending[self.pending.rfind(END_OF_HEAD) + len(END_OF_HEAD) :]
            self.transport.write(ANSWER * count)


async def serve() -> None:
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
