"""The sampler: a Snapshot every METRICS_INTERVAL seconds into a ring buffer, in a daemon
thread; /status is a fresh Snapshot, /stats the buffer with its summary.

    sampler = Sampler(MetricsConfig.from_env()).start()   # idempotent, fork-safe
    sampler.status().process.rss_mb                       # a figure measured now
    sampler.stats(last=6).summary                         # min, max and avg of six samples
    sampler.stats_body(last=6)                            # /stats's answer, in pieces

Each process has its own: a worker that replaces one that died starts with an empty
buffer, and /stats says when its history began (`started`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

from metrics.cpu import CpuReading
from metrics.observer import ObserverCost
from metrics.ring_buffer import RingBuffer
from metrics.schema import Snapshot, Stats
from metrics.snapshot import take_snapshot
from metrics.stats_body import LARGE_BYTES, LargeAnswers, StatsBody
from serve.settings import MetricsConfig

log = logging.getLogger("metrics")

# The first sample comes this soon after start, so /stats is not empty for a
# whole interval and its CPU figures cover a real window instead of psutil's 0.0.
FIRST_SAMPLE_S = 1.0
# /status measures CPU against the newest reference at least this old.
MIN_STATUS_WINDOW_S = 1.0
# No CPU percentage is measured over less than this.
SHORTEST_WINDOW_S = 0.1


class Sampler:
    """Takes a Snapshot every `interval_s` into a ring buffer of `slots`, in a daemon thread."""

    def __init__(self, config: MetricsConfig):
        self.config = config
        self._lock = threading.Lock()
        self._samples = RingBuffer(config.slots)
        # The last two CPU readings: the sampler's window starts at the newest;
        # /status may need the one before when the newest is too recent.
        self._references: deque[CpuReading] = deque(maxlen=2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._fork_hook = False
        # What the samples, /status and /stats cost this worker: process.observer_cpu_s.
        self._observer = ObserverCost()
        self._large_answers = LargeAnswers()
        self._started = time.time()  # when this process's history begins (start() sets it)

    def start(self) -> Sampler:
        """Start the thread in this process, unless it already runs here."""
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return self
            self._pid = os.getpid()
            self._started = time.time()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
            if not self._fork_hook:
                os.register_at_fork(after_in_child=self._after_fork)
                self._fork_hook = True
        self._sample_once()  # the baseline reading
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)

    def _after_fork(self) -> None:
        # A forked child has no sampler thread, a copy of the parent's samples
        # and maybe a lock held by a thread that no longer exists: start afresh.
        if self._pid is None:
            return
        self._lock = threading.Lock()
        self._large_answers = LargeAnswers()
        self._samples.clear()
        self._references.clear()
        self._observer = ObserverCost()
        self._thread = None
        self.start()

    def _run(self) -> None:
        interval_s = self.config.interval_s
        deadline = time.monotonic() + min(FIRST_SAMPLE_S, interval_s)
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            self._sample_once()
            # Deadlines follow a fixed grid, so the work of sampling adds no drift;
            # after a stall (suspend, overload) missed ticks are skipped, not bunched.
            deadline += interval_s
            behind_s = time.monotonic() - deadline
            if behind_s > 0:
                deadline += (behind_s // interval_s + 1) * interval_s

    def _sample_once(self) -> None:
        with self._lock:
            reference = self._references[-1] if self._references else None
        try:
            with self._observer.timed():
                snapshot, reading = take_snapshot(reference, observer=self._observer)
        except Exception:  # the sampler must never take the app down
            log.exception("metrics: a sample failed; the sampler goes on")
            return
        with self._lock:
            if snapshot is not None:
                self._samples.append(snapshot)
            self._references.append(reading)

    def status(self) -> Snapshot:
        """A fresh Snapshot, its CPU window ending now; the sampler's state is not touched."""
        with self._observer.timed():
            return self._status()

    def _status(self) -> Snapshot:
        with self._lock:
            references = list(self._references)
        now = time.monotonic()
        old_enough = [r for r in references if now - r.t_mono >= MIN_STATUS_WINDOW_S]
        reference = old_enough[-1] if old_enough else (references[0] if references else None)
        if reference is None:  # never started, or psutil failed at start
            _, reference = take_snapshot(None, observer=self._observer)
        age_s = time.monotonic() - reference.t_mono
        if age_s < SHORTEST_WINDOW_S:
            # Only in the first moments after start: a window of a few microseconds
            # would give noise, so wait until it is long enough to mean something.
            time.sleep(SHORTEST_WINDOW_S - age_s)
        snapshot, _ = take_snapshot(reference, observer=self._observer)
        assert snapshot is not None
        return snapshot

    def samples(self, last: int | None = None) -> list[Snapshot]:
        """A consistent copy of the newest `last` samples (all by default), oldest first."""
        with self._lock:
            rows = self._samples.newest(last)
        return [Snapshot.model_validate_json(sample_json) for sample_json, _, _ in rows]

    def stats(self, last: int | None = None) -> Stats:
        """The newest `last` samples (all by default) with their summary."""
        return Stats.model_validate_json(self.stats_json(last))

    def stats_json(self, last: int | None = None) -> bytes:
        """stats(last) as JSON, made without parsing or serialising a sample."""
        return b"".join(self._stats_body(last, None))

    def stats_body(self, last: int | None = None) -> StatsBody:
        """stats(last) as /stats sends it: in pieces, from the samples' stored JSON. An
        answer over LARGE_BYTES waits its turn (metrics.stats_body.StatsBusy: not now)."""
        return self._stats_body(last, self._large_answers)

    def _stats_body(self, last: int | None, large_answers: LargeAnswers | None) -> StatsBody:
        with self._observer.timed():
            with self._lock:
                rows = self._samples.newest(last)
            samples = [sample_json for sample_json, _, _ in rows]
            size = sum(map(len, samples))
            sent = large_answers.take(size) if large_answers and size > LARGE_BYTES else None
            try:
                head = Stats(
                    interval_s=self.config.interval_s,
                    slots=self.config.slots,
                    window_s=round((last or self.config.slots) * self.config.interval_s, 3),
                    started=self._started,
                    count=len(rows),
                    samples=[],
                    summary=self._samples.summary(rows),
                ).model_dump_json()
            except BaseException:
                if sent is not None:
                    sent()
                raise
        # The samples are JSON already: they go in the place of the empty list; the pieces
        # joined from them count in this worker's observer_cpu_s as they are made.
        before, empty, after = head.encode().partition(b'"samples":[]')
        assert empty, head
        pieces = (before + b'"samples":[', samples, b"]" + after)
        return StatsBody(*pieces, sent=sent, timed=self._observer.timed)
