"""Estimates across launches, tested as a statistician would: each app's figure with its 95%
confidence interval, the two apps' ratio (FastAPI/Flask) and difference with theirs, paired
by launch, and in words a reader can cite.

Each launch of both apps gives one paired value: the logarithm of the two apps' ratio, or
their difference (what varies from launch to launch varies for both apps alike, so pairing
removes it). A figure's Margin says on which of the two it is tested, and how large a
difference is worth naming. Then:

- a difference where the 95% interval excludes no change (a two-sided t-test at 5%);
- equivalence where the 90% interval lies wholly inside the margin (two one-sided tests at
  5%, TOST); a difference inside the margin is said as both;
- otherwise inconclusive, with the launches that would give 80% power to decide it, were
  the observed effect and spread the truth (none said above MOST_LAUNCHES).

Launches of several batches (several runs of the tool, hours apart) are pooled with the
batch as a random effect: a one-way random-effects model whose between-batch variance is
estimated by the method of moments, the mean weighted by each batch's variance and its
degrees of freedom by Satterthwaite's approximation. With one batch that is the plain
t-interval; with batches that disagree it widens towards a t-interval on the batches'
means (k - 1 degrees of freedom), as it must: the batches are then the units.

A report tests several figures at once; holm() says which of its differences survive
Holm's correction across them.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from compare.numbers import DASH, change, number, percent

CONFIDENCE = 0.95  # the interval that names a difference: a two-sided test at 5%
EQUIVALENCE_CONFIDENCE = 0.90  # the interval that names equivalence: TOST at 5%
ALPHA = 1 - CONFIDENCE  # each test's false-difference rate, and the family's under Holm
POWER = 0.80
MOST_LAUNCHES = 200  # "about N launches for 80% power" is said only up to this


class Margin(BaseModel):
    """How large a difference between the apps is worth naming, on which scale, and why."""

    scale: Literal["ratio", "difference"]  # tested on log ratios, or on differences
    size: float  # ratio: a share (0.05: within 0.95-1.05); difference: in the figure's unit
    reason: str

    def bounds(self) -> tuple[float, float]:
        """The margin on the tested scale: of log ratios, or of differences."""
        if self.scale == "ratio":
            return math.log(1 - self.size), math.log(1 + self.size)
        return -self.size, self.size

    def said(self, unit: str) -> str:
        """±5%, or ±0.1% of a core."""
        if self.scale == "ratio":
            return f"±{self.size * 100:g}%"
        return f"±{amount(self.size, unit)[1:]}"


class Interval(BaseModel):
    """A figure and its confidence interval (None: one value, no interval)."""

    value: float
    low: float | None
    high: float | None
    n: int


@functools.cache
def t_quantile(q: float, df: float) -> float:
    """Student's t's q-quantile (cached: a few degrees of freedom recur in every report)."""
    from scipy import stats  # imported where used: `--help` need not wait for scipy

    return float(stats.t.ppf(q, df))


class Pooled(BaseModel):
    """The mean of per-launch values across one batch or several, as the random-effects
    model gives it: its standard error and degrees of freedom (None: one value)."""

    value: float
    se: float | None
    df: float | None
    n: int  # launches
    batches: int
    between_sd: float | None  # the standard deviation between batches (None: one batch)

    def interval(self, confidence: float) -> tuple[float, float] | None:
        if self.se is None or self.df is None:
            return None
        if self.se == 0:
            return self.value, self.value
        half = t_quantile((1 + confidence) / 2, self.df) * self.se
        return self.value - half, self.value + half

    def p_value(self) -> float | None:
        """Two-sided, of no difference (a mean of 0)."""
        if self.se is None or self.df is None:
            return None
        if self.se == 0:
            return 0.0 if self.value != 0 else 1.0
        from scipy import special  # stats.t.sf's function, without its checks' milliseconds

        return float(2 * special.stdtr(self.df, -abs(self.value) / self.se))


def pooled(values: Sequence[float], batches: Sequence[int] | None = None) -> Pooled:
    """The mean of values (at least one), each from the batch of the same index (all of one
    batch without batches): the random-effects estimate the docstring at the top gives."""
    groups: dict[int, list[float]] = defaultdict(list)
    for value, batch in zip(values, batches or [0] * len(values), strict=True):
        groups[batch].append(value)
    n, k = len(values), len(groups)
    if n == 1:
        return Pooled(value=values[0], se=None, df=None, n=1, batches=1, between_sd=None)
    if k == 1 or n == k:  # one batch, or one launch a batch: a t-interval on the values
        mean = statistics.fmean(values)
        # statistics.stdev's exact fractions take milliseconds; A/A draws make thousands.
        spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        return Pooled(
            value=mean,
            se=spread / math.sqrt(n),
            df=n - 1,
            n=n,
            batches=k,
            between_sd=None if k == 1 else spread,
        )
    means = {batch: statistics.fmean(group) for batch, group in groups.items()}
    sizes = {batch: len(group) for batch, group in groups.items()}
    grand = statistics.fmean(values)
    within = sum((v - means[b]) ** 2 for b, g in groups.items() for v in g) / (n - k)
    between = sum(sizes[b] * (means[b] - grand) ** 2 for b in groups) / (k - 1)
    n0 = (n - sum(size**2 for size in sizes.values()) / n) / (k - 1)
    variance = max(0.0, (between - within) / n0)
    if variance == within == 0:  # every value the same
        return Pooled(value=grand, se=0.0, df=n - k, n=n, batches=k, between_sd=0.0)
    weights = {b: 1 / (variance + within / sizes[b]) for b in groups}
    value = sum(weights[b] * means[b] for b in groups) / sum(weights.values())
    se = math.sqrt(1 / sum(weights.values()))
    if variance == 0:
        df = float(n - k)
    else:  # Satterthwaite: variance/k + within/n as a sum of the two mean squares
        a, b = 1 / (k * n0), 1 / n - 1 / (k * n0)
        df = (a * between + b * within) ** 2 / (
            (a * between) ** 2 / (k - 1) + (b * within) ** 2 / (n - k)
        )
    return Pooled(value=value, se=se, df=df, n=n, batches=k, between_sd=math.sqrt(variance))


def interval(found: Pooled, confidence: float = CONFIDENCE, exp: bool = False) -> Interval:
    """The Pooled mean and its interval, back-transformed with exp where it is of logs."""
    bounds = found.interval(confidence)
    low, high = bounds if bounds else (None, None)
    if exp:
        value = math.exp(found.value)
        low, high = (None, None) if bounds is None else (math.exp(low), math.exp(high))
        return Interval(value=value, low=low, high=high, n=found.n)
    return Interval(value=found.value, low=low, high=high, n=found.n)


def typical(values: list[float], batches: list[int] | None = None) -> Interval | None:
    """Each app's figure across the launches: the geometric mean with the interval of the
    logarithms, as the ratio's (so that the ratio of two apps' is their ratio's, and no
    bound of a positive figure falls below 0); the plain mean where a value is 0 or less."""
    if not values:
        return None
    if min(values) <= 0:
        return interval(pooled(values, batches))
    return interval(pooled([math.log(value) for value in values], batches), exp=True)


Decision = Literal["lower", "higher", "equivalent", "inconclusive", "no interval", "no data"]
DIFFERENCES = ("lower", "higher")


class Estimate(BaseModel):
    """One figure of both apps across the launches, their ratio and difference, tested."""

    apps: dict[str, Interval | None]  # each app's geometric mean over the launches
    per_repeat: dict[str, list[float | None]]  # each app's value in each launch
    batches: list[int] | None = None  # each launch's batch, where several were pooled
    ratio: Interval | None  # second app over first: geometric mean of the paired ratios, 95%
    # The second app less the first, in the figure's unit, 95%: where the margin is of the
    # ratio, the ratio's change at the first app's geometric mean (so that the two agree in
    # sign); where of the difference, the mean of the per-launch differences.
    difference: Interval | None
    margin: Margin
    tested: Interval | None = None  # the 90% interval the equivalence test reads
    p_value: float | None = None  # the difference test's, two-sided
    between_batches: float | None = None  # the SD between batches, on the tested scale
    decision: Decision
    within_margin: bool | None = None  # the 90% interval inside the margin (TOST)
    words: str
    more_launches: int | None = None  # inconclusive: launches for 80% power, if so few
    holm: bool | None = None  # a difference that survives Holm's correction (holm())


def amount(value: float, unit: str) -> str:
    """A signed amount in a unit: +2.6 MiB, -0.021 ms, +0.073% of a core."""
    sign = "+" if value >= 0 else "-"
    return f"{sign}{number(abs(value))}{'' if unit.startswith('%') or not unit else ' '}{unit}"


def paired(
    first: list[float | None], second: list[float | None], batches: list[int] | None
) -> tuple[list[tuple[float, float]], list[int] | None]:
    """Each launch's pair where both are known, and those launches' batches."""
    keep = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if None not in (a, b)]
    pairs = [(first[i], second[i]) for i in keep]
    return pairs, None if batches is None else [batches[i] for i in keep]  # type: ignore[misc]


def launches_for_power(mean: float, sd: float, bounds: tuple[float, float]) -> int | None:
    """The fewest launches (2 to MOST_LAUNCHES) whose test would decide, with POWER, were
    the mean and the per-launch standard deviation the truth: the difference test where
    the mean lies outside the margin, TOST (Schuirmann's approximation) inside it."""
    if sd == 0:
        return None
    import numpy as np
    from scipy import stats

    low, high = bounds
    n = np.arange(2, MOST_LAUNCHES + 1)
    df, se = n - 1, sd / np.sqrt(n)
    if low < mean < high:
        critical = stats.t.ppf(1 - ALPHA, df)
        power = (
            stats.nct.sf(critical, df, (mean - low) / se)
            + stats.nct.sf(critical, df, (high - mean) / se)
            - 1
        )
    else:
        critical = stats.t.ppf(1 - ALPHA / 2, df)
        power = stats.nct.sf(critical, df, mean / se) + stats.nct.cdf(-critical, df, mean / se)
    enough = np.flatnonzero(power >= POWER)
    return int(n[enough[0]]) if enough.size else None


def inside_margin(tested: Interval, margin: Margin) -> bool:
    """Whether the 90% interval (of the ratio, or of the difference) lies inside the margin."""
    low, high = margin.bounds()
    assert tested.low is not None and tested.high is not None
    if margin.scale == "ratio":
        return math.log(tested.low) >= low and math.log(tested.high) <= high
    return tested.low >= low and tested.high <= high


def words_for(
    name: str, unit: str, estimate: Estimate, pooled_tested: Pooled, sized: bool = True
) -> tuple[Decision, str, int | None]:
    """The decision, its words and the launches for power (inconclusive only)."""
    ratio, difference, margin = estimate.ratio, estimate.difference, estimate.margin
    tested, inside = estimate.tested, estimate.within_margin
    assert difference is not None and tested is not None
    assert ratio is not None or margin.scale == "difference"
    absolute = amount(difference.value, unit)
    # The ratio beside a difference, where there is one (none where a value is 0).
    relative = "" if ratio is None else f"{change(ratio.value)}; "
    if tested.low is None or tested.high is None:
        said = f"{name} {relative.replace(';', ',')}{absolute} (one launch: no interval)"
        return "no interval", said, None
    wide = pooled_tested.interval(CONFIDENCE)
    assert wide is not None
    within = f", within the {margin.said(unit)} margin" if inside else ""
    if wide[0] > 0 or wide[1] < 0:
        direction: Decision = "higher" if wide[0] > 0 else "lower"
        if ratio is not None and margin.scale == "ratio":
            ends = sorted(abs(r - 1) for r in (ratio.low, ratio.high))  # type: ignore[operator]
            size = percent(abs(ratio.value - 1))
            ci = f"95% CI {percent(ends[0])}{DASH}{percent(ends[1])}%"
            return direction, f"{name} {size}% {direction}, {absolute} ({ci}){within}", None
        ends = sorted(abs(d) for d in (difference.low, difference.high))  # type: ignore[arg-type]
        ci = f"95% CI {number(ends[0])}{DASH}{number(ends[1])}"
        size = amount(abs(difference.value), unit)[1:]
        said = f"{name} {direction} by {size} ({relative}{ci}){within}"
        return direction, said, None
    if ratio is not None and margin.scale == "ratio":
        observed = f"{name} {change(ratio.value)}, {absolute}"
        ci90 = f"90% CI {change(tested.low)} to {change(tested.high)}"
    else:
        observed = f"{name} {absolute}" + ("" if ratio is None else f" ({change(ratio.value)})")
        ci90 = f"90% CI {amount(tested.low, '')} to {amount(tested.high, '')}"
    if inside:
        return "equivalent", f"equivalent within {margin.said(unit)} ({observed}; {ci90})", None
    assert pooled_tested.se is not None
    bounds = margin.bounds()
    sd = pooled_tested.se * math.sqrt(pooled_tested.n)
    more = launches_for_power(pooled_tested.value, sd, bounds) if sized else None
    said = f"inconclusive ({observed}; {ci90}, beyond {margin.said(unit)})"
    if more is not None:
        show = "equivalent" if bounds[0] < pooled_tested.value < bounds[1] else "different"
        said += f": about {more} launches would show them {show} with 80% power"
    return "inconclusive", said, more


def estimate(
    per_repeat: dict[str, list[float | None]],
    names: dict[str, str],
    margin: Margin,
    unit: str = "",
    batches: list[int] | None = None,
    sized: bool = True,
) -> Estimate:
    """The Estimate of one figure from each app's values by launch (keys: the two ports'
    apps, first the one the ratio divides by); names says what to call them, unit what
    the figure is in, batches each launch's batch where several are pooled; sized, whether
    an inconclusive one names the launches for 80% power."""
    first, second = per_repeat
    apps = {}
    for app, values in per_repeat.items():
        known = [i for i, v in enumerate(values) if v is not None]
        apps[app] = typical(
            [values[i] for i in known],  # type: ignore[misc]
            None if batches is None else [batches[i] for i in known],
        )
    pairs, kept = paired(per_repeat[first], per_repeat[second], batches)
    found = Estimate(
        apps=apps,
        per_repeat=per_repeat,
        batches=batches,
        ratio=None,
        difference=None,
        margin=margin,
        decision="no data",
        words="no data",
    )
    if not pairs:
        return found
    positive = all(a > 0 and b > 0 for a, b in pairs)
    if not positive and margin.scale == "ratio":
        found.words = "no ratio: a value at or below 0"
        return found
    # A figure tested on its differences needs no ratio: an idle app read from outside
    # may spend no CPU at all in a window.
    logs = pooled([math.log(b / a) for a, b in pairs], kept) if positive else None
    differences = pooled([b - a for a, b in pairs], kept)
    found.ratio = interval(logs, exp=True) if logs else None
    found.difference = interval(differences)
    base = apps[first]
    if logs and margin.scale == "ratio" and base is not None:  # the ratio's, at the first's level
        ratio = found.ratio
        assert ratio is not None
        found.difference = Interval(
            value=base.value * (ratio.value - 1),
            low=None if ratio.low is None else base.value * (ratio.low - 1),
            high=None if ratio.high is None else base.value * (ratio.high - 1),
            n=ratio.n,
        )
    tested = logs if logs and margin.scale == "ratio" else differences
    found.tested = interval(tested, EQUIVALENCE_CONFIDENCE, exp=margin.scale == "ratio")
    found.p_value = tested.p_value()
    found.between_batches = tested.between_sd
    if found.tested.low is not None:
        found.within_margin = inside_margin(found.tested, margin)
    found.decision, found.words, found.more_launches = words_for(
        names[second], unit, found, tested, sized
    )
    return found


def holm(estimates: list[Estimate]) -> int:
    """Marks each difference that survives Holm's correction across the estimates' tests
    (at a family-wise rate of ALPHA), and says in the words of each that does not; the
    number of tests. Pass each test once (a figure shared by rows, once)."""
    tested = sorted((e for e in estimates if e.p_value is not None), key=lambda e: e.p_value)
    holding = True
    for index, found in enumerate(tested):
        holding = holding and found.p_value <= ALPHA / (len(tested) - index)  # type: ignore[operator]
        if found.decision in DIFFERENCES:
            found.holm = holding
            if not holding:
                found.words += f" (not after Holm's correction across {len(tested)} tests)"
    return len(tested)


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
