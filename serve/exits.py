"""up.sh's exit codes and what each means: `./up.sh --help` prints them from here."""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    STOPPED = 0
    FAILED = 1
    BAD_SETTING = 2
    STDOUT_CLOSED = 141


MEANINGS = {
    Exit.STOPPED: "stopped by a signal, and every request it had accepted was answered",
    Exit.FAILED: "anything that stopped it before it served (a port in use, a missing"
    " package, a virtualenv not made by Unit's Python, a server that failed to start,"
    " an app that failed /status), or a stop that had to cut requests off (the grace"
    " period ran out, or a second signal came)",
    Exit.BAD_SETTING: "a bad setting or argument, refused before anything starts",
    Exit.STDOUT_CLOSED: "its stdout was closed (./up.sh | head): 128 + SIGPIPE, as if killed"
    " by it, once everything is stopped",
}
# Not one code: a server's own.
SERVER_EXITED = (
    "a server, or the PostgreSQL started here, exited on its own after both apps served: its"
    " status (1 if that was 0)"
)


class Refused(Exception):
    """up.sh stops before it serves: one line (the first of the message) and an exit code."""

    def __init__(self, message: str, code: Exit = Exit.FAILED):
        super().__init__(message)
        self.code = code
