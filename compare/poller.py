"""The readings of /status during a counted run (compare/measure.py), taken on a thread
of their own while the load tool runs."""

from __future__ import annotations

import threading
import time

import httpx2

from compare.run import Poll
from compare.targets import TargetError, status
from metrics.schema import Snapshot, cpu_percent


class Poller(threading.Thread):
    """Reads /status every `interval_s` until stopped; the runner's only work during a run."""

    def __init__(self, url: str, interval_s: float, origin: float, before: Snapshot, on_poll=None):
        super().__init__(daemon=True)
        self.url, self.interval_s, self.origin, self.on_poll = url, interval_s, origin, on_poll
        self.before = before
        self.polls: list[Poll] = []
        self.failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=5) as client:
            # The first poll one interval after `before`, not at once: a poll at once
            # would measure CPU over the few milliseconds since `before` was answered.
            deadline = time.monotonic() + self.interval_s
            previous = self.before
            while not self._done.wait(max(0.0, deadline - time.monotonic())):
                deadline += self.interval_s
                try:
                    snapshot = status(client, self.url)
                except TargetError:
                    self.failures += 1
                    continue
                self.polls.append(self._poll(previous, snapshot))
                previous = snapshot
                if self.on_poll:
                    self.on_poll()

    def _poll(self, previous: Snapshot, now: Snapshot) -> Poll:
        # The gap is timed by the app's own clock at the instant of each reading: under
        # load a /status answer may wait in the queue for a while after it.
        gap_s = now.timestamp - previous.timestamp
        limit = now.system.cpu_usable_cores
        cpu = server = None
        if gap_s > 0:
            cpu = cpu_percent(now.process.cpu_time_s - previous.process.cpu_time_s, gap_s, limit)
            if now.server and previous.server:
                server = cpu_percent(
                    now.server.cpu_time_s - previous.server.cpu_time_s, gap_s, limit
                )
        return Poll(
            t_s=round(time.monotonic() - self.origin, 3),
            timestamp=now.timestamp,
            cpu_time_s=now.process.cpu_time_s,
            cpu_percent=cpu,
            server_cpu_percent=server,
            rss_mb=now.process.rss_mb,
            uss_mb=now.process.uss_mb,
            pss_mb=now.process.pss_mb,
            app_pss_mb=now.app_pss_mb,
            system_cpu_percent=now.system.cpu_percent,
            system_memory_used_mb=now.system.memory_used_mb,
            database_rss_mb=now.database.rss_mb if now.database else None,
            database_pss_mb=now.database.pss_mb if now.database else None,
        )

    def stop(self) -> list[Poll]:
        self._done.set()
        self.join(10)
        return self.polls
