"""What one open-loop run sends (compare/openloop.py): its target, rate, duration and
connections, and the time at which each of its requests is due."""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass

ARRIVALS = ("poisson", "uniform")


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    request: bytes  # the GET, prepared once and written as is for every request


@dataclass(frozen=True)
class Schedule:
    """What one run sends: GETs of `target` at `rate` for `duration_s`, on at most
    `connections`, each given `timeout_s`; their due times drawn by `arrivals` from `seed`."""

    target: Target
    rate: float  # requests per second
    duration_s: float
    connections: int
    timeout_s: float
    arrivals: str = "poisson"  # one of ARRIVALS
    seed: int | None = None  # of the Poisson arrivals; None for uniform ones

    def due_offsets(self) -> array:
        return due_offsets(self.rate, self.duration_s, self.arrivals, self.seed)


def due_offsets(rate: float, duration_s: float, arrivals: str, seed: int | None) -> array:
    """The seconds after the start at which each request is due, in order.

    poisson: a Poisson process of `rate` over [0, duration_s), the gaps drawn from the
    exponential distribution of mean 1/rate by a generator seeded with `seed` (the same
    seed, the same schedule); their count is random, about rate x duration_s.
    uniform: request i at exactly i/rate, ceil(rate x duration_s) of them.
    """
    if arrivals == "uniform":
        return array("d", (i / rate for i in range(math.ceil(rate * duration_s))))
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be one of {ARRIVALS}, not {arrivals!r}")
    gap = random.Random(seed).expovariate
    offsets = array("d")
    due = gap(rate)
    while due < duration_s:
        offsets.append(due)
        due += gap(rate)
    return offsets
