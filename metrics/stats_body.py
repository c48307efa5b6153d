"""The body of a /stats answer, sent in pieces straight from the samples' stored JSON.

A full buffer's answer is large (12-14 MB at METRICS_SLOTS=20000). Built whole for
every request, 50 concurrent requests took a worker from 132 to 912 MB, and each
client that never read its answer kept a copy in the server. So:

  - the answer goes out in pieces of about PIECE_BYTES, joined from the stored JSON of
    the samples as the server asks for them: granian holds a few pieces per
    connection, never the whole answer;
  - an answer over LARGE_BYTES is sent only while no other is, and no sooner than the
    worker's budget of LARGE_BYTES_PER_S allows (LargeAnswers); otherwise /stats
    answers 503 with Retry-After (StatsBusy). What a worker spends on /stats is so
    bounded by time, not by the requests it gets.

A server asks for the next piece as its client reads: a client that reads slowly keeps
the worker from sending another large answer that long; one that never reads, until the
server gives up on it (NGINX Unit: settings.http.send_timeout) or the client closes
(granian sets no such limit).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager

from metrics.schema import MB

# Roughly what the kernel's socket buffers take in on a connection whose client does
# not read: an answer this small leaves the server at once, whatever its client does.
LARGE_BYTES = 256 * 1024
# NGINX Unit takes a whole answer into the worker's shared memory whether its client
# reads or not, and keeps it there until send_timeout (10 s in conf.json) closes a
# connection that takes nothing; when Unit's limit for a worker (limits.shm, 100 MiB)
# is full, every request of the app waits. At this rate the answers of clients that
# never read hold at most about 4 MiB/s x 11 s, with room for one more full buffer.
LARGE_BYTES_PER_S = 4 * MB
PIECE_BYTES = 64 * 1024


class StatsBusy(Exception):
    """A large /stats answer was asked for before the worker may send one: 503."""

    status = 503
    detail = (
        f"/stats sends its answers over {LARGE_BYTES // 1024} KiB one at a time, at most"
        f" {LARGE_BYTES_PER_S // MB} MiB a second per worker: retry after the seconds that"
        " Retry-After gives, or ask for fewer samples (?last=)"
    )

    def __init__(self, retry_after_s: int):
        super().__init__(self.detail)
        self.headers = {"Retry-After": str(retry_after_s)}


class LargeAnswers:
    """A worker's budget for large answers: one sent at a time, LARGE_BYTES_PER_S on
    average. Made afresh after a fork: an answer the parent was sending is not ours."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sending = False
        self._paid_until = 0.0  # monotonic time at which the bytes sent so far are paid for

    def take(self, size: int) -> Callable[[], None]:
        """Leave to send `size` bytes (StatsBusy if not now); call what it returns once sent."""
        with self._lock:
            now = time.monotonic()
            if self._sending or now < self._paid_until:
                raise StatsBusy(max(1, math.ceil(self._paid_until - now)))
            self._sending = True
            self._paid_until = now + size / LARGE_BYTES_PER_S
        return self._sent

    def _sent(self) -> None:
        with self._lock:
            self._sending = False


class StatsBody:
    """A /stats answer's `length` bytes of JSON: the head up to the samples, the samples
    joined by commas, and the rest of the head. Iterated (WSGI) or async-iterated (ASGI)
    in pieces, each made inside `timed`; close() calls `sent` (LargeAnswers.take's), as
    does the end of either iteration and, whatever else happens, the object's collection."""

    def __init__(
        self,
        before: bytes,
        samples: list[bytes],
        after: bytes,
        sent: Callable[[], None] | None = None,
        timed: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    ):
        self._before, self._samples, self._after = before, samples, after
        self.length = len(before) + sum(map(len, samples)) + max(len(samples) - 1, 0) + len(after)
        self._release = weakref.finalize(self, sent) if sent else None
        self._timed = timed  # around the making of each piece

    def close(self) -> None:
        """Say that it is sent (once; a WSGI server calls this when it is done)."""
        if self._release is not None:
            self._release()

    def _pieces(self) -> Iterator[bytes]:
        made = self._joined()
        while True:
            with self._timed():
                piece = next(made, None)
            if piece is None:
                return
            yield piece

    def _joined(self) -> Iterator[bytes]:
        pending, size = [self._before], len(self._before)
        for index, sample in enumerate(self._samples):
            if index:
                pending.append(b",")
            pending.append(sample)
            size += len(sample)
            if size >= PIECE_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        pending.append(self._after)
        yield b"".join(pending)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._pieces()
        finally:
            self.close()

    async def _async_pieces(self) -> AsyncIterator[bytes]:
        try:
            for piece in self._pieces():
                yield piece
        finally:
            self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._async_pieces()
