"""The figures both apps report: a background sampler, its ring buffer and the schema.

A Sampler takes a Snapshot of system and process figures every METRICS_INTERVAL
seconds (default 10) into a ring buffer of METRICS_SLOTS (default 60), so that
/stats covers the last ten minutes; /status is a fresh Snapshot taken on demand.

    sampler = metrics.start_sampler()    # once per process; idempotent, fork-safe
    sampler.status().process.rss_mb      # a figure measured now
    sampler.stats(last=6).summary        # min, max and avg of the last six samples

schema       the contract with the runner: Snapshot, Stats, the /stats query (no psutil)
processes    the workers and the server's own processes around this one
cgroup       the memory and CPU limits of this process's cgroup
database     the database's pool, and the processes of the one beside the apps
cpu          CPU counters read together (to the microsecond): two readings make a window
observer     what measuring costs the workers: process.observer_cpu_s
snapshot     a Snapshot assembled from all of the above
summary      min, max and avg of every figure of the samples (no psutil)
ring_buffer  the newest samples, kept as their JSON and figures
sampler      the thread that fills the buffer, and /status and /stats of it
stats_body   /stats's answer in pieces, and how many large ones a worker sends at once

Its settings, METRICS_INTERVAL and METRICS_SLOTS, are read by serve.settings, where every
setting of serving has its rules (start.sh checks them with a bare python3).

This file runs on every `import metrics.x`, the runner's `import metrics.schema`
included: it imports the schema only, and the sampler when one is started.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from metrics.schema import Snapshot, Stats, stats_query

if TYPE_CHECKING:
    from metrics.sampler import Sampler

__all__ = ["Snapshot", "Stats", "start_sampler", "stats_query"]

_sampler: Sampler | None = None
_sampler_lock = threading.Lock()


def start_sampler() -> Sampler:
    """The process's one Sampler, configured from the environment and running."""
    from metrics.sampler import Sampler
    from serve.settings import MetricsConfig

    global _sampler
    with _sampler_lock:
        if _sampler is None:
            _sampler = Sampler(MetricsConfig.from_env())
        return _sampler.start()
