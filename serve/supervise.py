"""Supervision: the servers started in process groups of their own, watched until a signal
or their own exit, and stopped with a drain that leaves nothing behind.

The Supervisor runs one Server (serve.unit's or serve.granian's) for up.sh:
  - raises the limit of open files first (every connection, idle or not, takes one);
  - starts the database first, if any (serve.postgres), and stops it last, once the
    apps have drained; one that exits on its own stops the rest, as a server does;
  - says that it serves only once both apps answer / and /status (serve.readiness), and
    refuses in one line, with the app's own error from its server's log, an app that
    answers / but fails /status;
  - a server that exits on its own stops the rest, with its status (1 if that was 0);
  - SIGTERM, SIGINT or SIGHUP (a closed terminal) stops: new connections are refused,
    and the requests already accepted get GRACE_S to be answered; a second signal cuts
    that short. A closed stdout stops everything too (exit code 141).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import pwd
import re
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from serve import readiness
from serve.apps import APPS
from serve.config import Config
from serve.database_config import NO_DATABASE
from serve.exits import Exit, Refused
from serve.settings import ROOT

# At a stop, the requests already accepted, running or queued, get this long to be
# answered: the longest, /io at workloads.IO_MAX_MS, takes 2 s, so a queue of 7 per
# thread fits; start.sh gives the container 20 s.
GRACE_S = 15.0
POLL_S = 0.1
PROBE_TIMEOUT_S = 2.0  # a probe that times out is asked again; a signal waits no longer
TRACEBACK = "Traceback (most recent call last):"


def say(message: str) -> None:
    """up.sh's own words on stderr: the first line named, the rest (a server's answer) as is."""
    with contextlib.suppress(OSError):
        print(f"up.sh: {message}", file=sys.stderr, flush=True)


class ServerLog:
    """A server's output, passed on to our stderr as it comes, its last lines kept to tell
    what went wrong (an app's traceback, a port Unit could not bind). Lines that match
    `unsaid` are left out: what a client may cause once per request, so that no client
    makes the log grow faster than it sends."""

    def __init__(
        self, stream: IO[bytes], keep_lines: int = 2000, unsaid: re.Pattern[bytes] | None = None
    ):
        self._unsaid = unsaid
        self._lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        self._thread.start()

    def _copy(self, stream: IO[bytes]) -> None:
        with stream:
            for line in stream:
                if self._unsaid is not None and self._unsaid.search(line):
                    continue
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.buffer.write(line)
                    sys.stderr.buffer.flush()
                with self._lock:
                    self._lines.append(line.decode(errors="replace").rstrip("\n"))

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def last_error(self) -> str | None:
        """The last line of the last Python traceback logged: the exception and its words."""
        lines = self.text().splitlines()
        starts = [i for i, line in enumerate(lines) if line.endswith(TRACEBACK)]
        if not starts:
            return None
        for line in lines[starts[-1] + 1 :]:
            if re.match(r"[A-Za-z_][\w.]*(: |$)", line):
                return line
        return None

    def close(self, timeout_s: float = 2) -> None:
        self._thread.join(timeout_s)


def as_user(user: str) -> dict[str, Any]:
    """subprocess's arguments that run a child as `user`, with its own group only; none
    where that is who runs up.sh (only root may name another)."""
    entry = pwd.getpwnam(user)
    if entry.pw_uid == os.getuid():
        return {}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


# Linux's prctl(2) option: a signal for a process when the thread that started it ends.
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here, not in a forked child


def dies_with_parent(number: int) -> Callable[[], None] | None:
    """Popen's preexec_fn that sends the child `number` (its stop) when this process ends
    in any way, a SIGKILL included, which no `finally` survives; None outside the main
    thread, since the signal comes when the thread that started the child ends."""
    if threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def in_child() -> None:
        LIBC.prctl(PR_SET_PDEATHSIG, number)
        if os.getppid() != parent:  # the parent ended before the prctl: nothing will signal
            os.kill(os.getpid(), number)

    return in_child


def spawn(
    argv: list[str],
    unsaid: re.Pattern[bytes] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    **popen: Any,
) -> tuple[subprocess.Popen, ServerLog]:
    """argv in the project's folder (unless `popen` says otherwise, as it may say its
    environment), as `user` if given, in a session and process group of its own (so that
    a stop reaches its workers even when their master died and left them), sent
    `stop_signal` if up.sh dies (even by SIGKILL), its output (stdout and stderr) through a
    ServerLog that leaves out the lines `unsaid` matches."""
    process = subprocess.Popen(
        argv,
        **{"cwd": ROOT, **popen},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=dies_with_parent(stop_signal),
        **(as_user(user) if user else {}),
    )
    assert process.stdout is not None
    return process, ServerLog(process.stdout, unsaid=unsaid)


def signal_group(process: subprocess.Popen, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


def raise_open_files() -> None:
    """As many open files as allowed, for the servers that inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server(Protocol):
    """What the Supervisor runs: serve.unit.Unit or serve.granian.Granian."""

    processes: list[subprocess.Popen]  # each leads its own process group
    logs: dict[str, ServerLog]  # by app: where its errors are logged

    # Before any server starts: what would make this one fail, raised as Refused.
    def check(self) -> None: ...
    # The apps get `environment` on top of conf.json's: METRICS_*, and the database's.
    def start(self, environment: dict[str, str]) -> None: ...
    # Why processes[index] exited before both apps answered.
    def exited_early(self, index: int) -> Refused: ...
    # Before SIGTERM: whatever the server needs to stop without cutting a request off,
    # up to the deadline or a second signal; what it could not do, if anything.
    def drain(self, deadline: float, hurried: Callable[[], bool]) -> str: ...
    def close(self) -> None: ...


class Database(Protocol):
    """What the Supervisor starts before the server and stops after it: serve.postgres's."""

    name: str
    described: str  # what up.sh says of it when it serves
    processes: list[subprocess.Popen]  # those it started, watched like a server's

    # Ready, with its data: what the apps need to know of it.
    def start(self) -> dict[str, str]: ...
    def exited_early(self, index: int) -> Refused: ...
    # After the apps have drained and stopped: what it could not do cleanly, if anything.
    def stop(self) -> str: ...
    def close(self) -> None: ...


class Supervisor:
    """Serves with `server` until a signal or a server's exit, then stops everything: the
    database, if any, is started first and stopped last."""

    def __init__(self, config: Config, server: Server, database: Database | None = None):
        self.config = config
        self.server = server
        self.database = database
        self.signals = 0
        self._wake_read, self._wake_write = os.pipe()
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)

    def run(self) -> int:
        """Serve, then stop; up.sh's exit code (serve.exits)."""
        signal.set_wakeup_fd(self._wake_write)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake _sleep when one exits
        raise_open_files()
        code: int = Exit.FAILED
        try:
            environment = dict(self.config.passed_on)
            if self.database:
                environment.update(self.database.start())
            self.server.start(environment)
            code = Exit.STOPPED
            if self._wait_until_ready():
                self._say_serving()
                code = self._wait_for_signal_or_exit()
        except Refused as refusal:
            say(str(refusal))
            code = refusal.code
        except BrokenPipeError:
            # Killed by SIGPIPE, up.sh would leave the servers running: stop them, and
            # exit as if killed by it. Nothing more goes to that stdout.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = Exit.STDOUT_CLOSED
        finally:
            code = self._stop(code)  # whatever happened, even a bug: nothing left running
        return code

    def _on_stop_signal(self, *_) -> None:
        self.signals += 1

    def _sleep(self, timeout_s: float) -> None:
        """Up to timeout_s, less if a signal comes (a stop, or a server's exit)."""
        select.select([self._wake_read], [], [], timeout_s)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass

    def _wait_until_ready(self) -> bool:
        """True once both apps answer; False if a stop signal came first."""
        within_s = self.config.ready_within_s
        deadline = time.monotonic() + within_s
        while not self.signals:
            answers = readiness.ask_both(
                self.config.host,
                self.config.ports,
                PROBE_TIMEOUT_S,
                {app: served.framework for app, served in self.config.apps.items()},
            )
            for index, process in enumerate(self.server.processes):
                if process.poll() is not None:
                    raise self.server.exited_early(index)
            for index, process in enumerate(self.database.processes if self.database else []):
                if process.poll() is not None:
                    raise self.database.exited_early(index)
            for answer in answers:
                if answer.broken:
                    time.sleep(0.2)  # the server's log may come a moment after its answer
                    error = self.server.logs[answer.app].last_error()
                    unsaid = f"its server logged no error; it answered {answer.body!r}"
                    raise Refused(f"{answer.why}: {error or unsaid}")
            if all(answer.ready for answer in answers):
                return True
            if time.monotonic() > deadline:
                whys = "; ".join(a.why for a in answers if not a.ready)
                raise Refused(f"the apps did not answer within {within_s:g} s ({whys})")
            self._sleep(POLL_S)
        return False

    def _say_serving(self) -> None:
        config, url = self.config, f"http://{self.config.host}"
        flask, fastapi = (f"{config.apps[app].title} on {url}:{config.ports[app]}" for app in APPS)
        words = self.database.described if self.database else NO_DATABASE
        print(
            f"up.sh: {config.server} serves {flask} and {fastapi} ({config.workers}"
            f" process(es), {config.threads} thread(s) each; database: {words})",
            flush=True,
        )

    def _wait_for_signal_or_exit(self) -> int:
        watched = [("a server", p) for p in self.server.processes]
        if self.database:
            watched += [(self.database.name, p) for p in self.database.processes]
        while not self.signals:
            for what, process in watched:
                status = process.poll()
                if status is not None:
                    status = status if status >= 0 else 128 - status  # as a shell says it
                    say(f"{what} exited with status {status}; stopping the rest")
                    return status or Exit.FAILED
            self._sleep(60)
        return Exit.STOPPED

    def _stop(self, code: int) -> int:
        """Drain and stop every server within GRACE_S; code, or 1 if requests were cut off."""
        deadline = time.monotonic() + GRACE_S
        signals_before = self.signals

        def hurried() -> bool:  # a signal during the stop cuts it short
            return self.signals > signals_before

        processes = self.server.processes
        # No server started (the database failed first): nothing to drain.
        left = self.server.drain(deadline, hurried) if processes else ""
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # the server stops its own processes
            else:
                signal_group(process, signal.SIGTERM)  # what a server that died left behind
        while any(p.poll() is None for p in processes):
            if time.monotonic() >= deadline or hurried():
                break
            self._sleep(POLL_S)
        if left or any(p.poll() is None for p in processes):
            why = "before a second signal" if hurried() else f"within {GRACE_S:g} s"
            say(
                f"the servers had not answered every request {why}; stopped them anyway"
                + (f" ({left})" if left else "")
            )
            code = code or Exit.FAILED
        for process in processes:
            signal_group(process, signal.SIGKILL)
            process.wait()
        for log in self.server.logs.values():
            log.close()
        self.server.close()
        if self.database:  # after the apps: their last requests may have needed it
            unclean = self.database.stop()
            self.database.close()
            if unclean:
                say(unclean)
                code = code or Exit.FAILED
        return code
