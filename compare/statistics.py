"""Estimates across repeats: each app's mean with its 95% confidence interval, and the ratio
of the two apps (FastAPI/Flask) with its own, paired by repeat, in words a reader can cite.

The ratio's interval is a t-interval on the logarithms of the per-repeat ratios: each
repeat (a launch of both apps of its own, with --launch) gives one ratio, and what varies
from launch to launch varies for both apps alike, so pairing removes it. The words:

- "FastAPI 12% lower (95% CI 8-16%)" where the interval excludes 1;
- "equivalent within ±5%" where the whole interval lies inside 0.95-1.05 (this comes
  first: a difference smaller than that, even one the interval shows, is no finding);
- otherwise "inconclusive", with about how many more repeats would decide it, were the
  ratio and its spread what they were.
"""

from __future__ import annotations

import math
import statistics
from typing import Literal

from pydantic import BaseModel
from scipy import stats

from compare.numbers import DASH, change, percent

CONFIDENCE = 0.95
EQUIVALENCE = 0.05  # a ratio within 1 ± this is no difference worth naming
MOST_MORE = 100  # "more than 100 more repeats": the projection says no more than that


class Interval(BaseModel):
    """A figure and its 95% confidence interval (None: one value, no interval)."""

    value: float
    low: float | None
    high: float | None
    n: int


Decision = Literal["lower", "higher", "equivalent", "inconclusive", "no interval", "no data"]


class Estimate(BaseModel):
    """One figure of both apps across the repeats, and their ratio in words."""

    apps: dict[str, Interval | None]  # each app's geometric mean over the repeats
    per_repeat: dict[str, list[float | None]]  # each app's value in each repeat
    ratio: Interval | None  # second app over first: geometric mean of the per-repeat ratios
    decision: Decision
    words: str
    more_repeats: int | None  # with "inconclusive": about how many more would decide it


def mean_interval(values: list[float]) -> Interval | None:
    """The mean of values with its t-interval; no interval from one value."""
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(value=mean, low=None, high=None, n=1)
    if math.isclose(max(values), min(values), rel_tol=1e-12, abs_tol=1e-300):
        return Interval(value=mean, low=mean, high=mean, n=len(values))
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(CONFIDENCE)
    return Interval(value=mean, low=float(ci.low), high=float(ci.high), n=len(values))


def typical(values: list[float]) -> Interval | None:
    """Each app's figure across the repeats: the geometric mean with the t-interval of the
    logarithms, as the ratio's (so that the ratio of two apps' is their ratio's, and no
    bound of a positive figure falls below 0); the plain mean where a value is 0 or less."""
    if not values or min(values) <= 0:
        return mean_interval(values)
    return ratio_interval([math.log(value) for value in values])


def log_ratios(first: list[float | None], second: list[float | None]) -> list[float] | None:
    """log(second/first) of each repeat where both are known; None if any is 0 or less."""
    pairs = [(a, b) for a, b in zip(first, second, strict=True) if a is not None and b is not None]
    if any(a <= 0 or b <= 0 for a, b in pairs):
        return None
    return [math.log(b / a) for a, b in pairs]


def ratio_interval(logs: list[float]) -> Interval:
    """exp of the mean of logarithms and of its t-interval."""
    mean = mean_interval(logs)
    assert mean is not None
    low = None if mean.low is None else math.exp(mean.low)
    high = None if mean.high is None else math.exp(mean.high)
    return Interval(value=math.exp(mean.value), low=low, high=high, n=mean.n)


def decided(mean: float, spread: float, n: int, t: float | None = None) -> bool:
    """Whether a t-interval of n log ratios of this mean and standard deviation would
    exclude 0 or lie inside ±EQUIVALENCE (t: its critical value, if known)."""
    t = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) if t is None else t
    half = t * spread / math.sqrt(n)
    inside = mean - half >= math.log(1 - EQUIVALENCE) and mean + half <= math.log(1 + EQUIVALENCE)
    return inside or abs(mean) > half


def more_repeats(logs: list[float]) -> int | None:
    """About how many more repeats would decide an inconclusive ratio, were its mean and
    spread what they are; None if more than MOST_MORE."""
    mean, spread = statistics.fmean(logs), statistics.stdev(logs)
    totals = range(len(logs) + 1, len(logs) + MOST_MORE + 1)
    critical = stats.t.ppf((1 + CONFIDENCE) / 2, [n - 1 for n in totals])
    for n, t in zip(totals, critical, strict=True):
        if decided(mean, spread, n, float(t)):
            return n - len(logs)
    return None


def words_for(name: str, ratio: Interval, more: int | None) -> tuple[Decision, str]:
    """The decision and its words for the second app's ratio to the first."""
    value, low, high = ratio.value, ratio.low, ratio.high
    if low is None or high is None:
        return "no interval", f"{name} {change(value)} (one repeat: no interval)"
    ci = f"95% CI {change(low)} to {change(high)}"
    if low >= 1 - EQUIVALENCE and high <= 1 + EQUIVALENCE:
        return "equivalent", f"equivalent within ±{EQUIVALENCE:.0%} ({name} {change(value)}, {ci})"
    if high < 1:
        span = f"{percent(1 - high)}{DASH}{percent(1 - low)}%"
        return "lower", f"{name} {percent(1 - value)}% lower (95% CI {span})"
    if low > 1:
        span = f"{percent(low - 1)}{DASH}{percent(high - 1)}%"
        return "higher", f"{name} {percent(value - 1)}% higher (95% CI {span})"
    needed = (
        f"more than {MOST_MORE} more repeats"
        if more is None
        else f"about {more} more repeat{'s' if more > 1 else ''}"
    )
    return "inconclusive", f"inconclusive ({ci}): {needed} would decide it"


def estimate(per_repeat: dict[str, list[float | None]], names: dict[str, str]) -> Estimate:
    """The Estimate of one figure from each app's values by repeat (keys: the two ports'
    apps, first the one the ratio divides by); names says what to call them."""
    first, second = per_repeat
    apps = {
        app: typical([v for v in values if v is not None]) for app, values in per_repeat.items()
    }
    logs = log_ratios(per_repeat[first], per_repeat[second])
    if not logs:
        said = "no data" if logs is not None else "no ratio: a value at or below 0"
        return Estimate(
            apps=apps,
            per_repeat=per_repeat,
            ratio=None,
            decision="no data",
            words=said,
            more_repeats=None,
        )
    ratio = ratio_interval(logs)
    more = more_repeats(logs) if len(logs) >= 2 else None
    decision, words = words_for(names[second], ratio, more)
    return Estimate(
        apps=apps,
        per_repeat=per_repeat,
        ratio=ratio,
        decision=decision,
        words=words,
        more_repeats=more if decision == "inconclusive" else None,
    )


class Spread(BaseModel):
    """The median of a figure's values across the repeats, with their least and most."""

    median: float
    min: float
    max: float
    n: int


def spread(values: list[float | None]) -> Spread | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Spread(median=statistics.median(known), min=min(known), max=max(known), n=len(known))
