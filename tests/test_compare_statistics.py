"""compare.statistics: intervals, tests, words, power, pooling and Holm's correction, against
numbers worked out by hand (Student's t from the printed tables) and, where no closed form
exists, against simulations with a known truth."""

import math
import random

import numpy as np
import pytest

from compare.statistics import (
    Estimate,
    Margin,
    estimate,
    holm,
    launches_for_power,
    pooled,
    spread,
)

NAMES = {"flask": "Flask", "fastapi": "FastAPI"}
CPU = Margin(scale="ratio", size=0.05, reason="test")
PSS = Margin(scale="ratio", size=0.02, reason="test")
IDLE = Margin(scale="difference", size=0.1, reason="test")
# Student's t from the printed tables: (quantile, degrees of freedom).
T = {(0.975, 2): 4.302653, (0.95, 2): 2.919986, (0.975, 4): 2.776445, (0.95, 4): 2.131847}
T_975_1 = 12.706205


def by_repeat(flask: list[float], ratios: list[float]) -> dict[str, list[float | None]]:
    """Flask's values, and FastAPI's as those times each repeat's ratio."""
    return {"flask": list(flask), "fastapi": [a * r for a, r in zip(flask, ratios, strict=True)]}


def test_the_ratio_interval_is_a_t_interval_on_the_logarithms_of_the_paired_ratios():
    # log ratios 0.1, 0.2, 0.3: mean 0.2, standard deviation 0.1, three launches.
    values = by_repeat([100.0, 50.0, 200.0], [math.exp(0.1), math.exp(0.2), math.exp(0.3)])
    found = estimate(values, NAMES, CPU, "ms")
    half = T[0.975, 2] * 0.1 / math.sqrt(3)
    assert found.ratio.value == pytest.approx(math.exp(0.2))
    assert found.ratio.low == pytest.approx(math.exp(0.2 - half))
    assert found.ratio.high == pytest.approx(math.exp(0.2 + half))
    assert found.ratio.n == 3
    # Each app's own figure is its geometric mean, (100 x 50 x 200) ** (1/3) = 100, with
    # the t-interval of its logarithms: unpaired, the launches' spread is in it.
    flask = found.apps["flask"]
    assert flask.value == pytest.approx(100.0)
    half_flask = T[0.975, 2] * math.log(2) / math.sqrt(3)  # logs 0, -log 2, +log 2
    assert (flask.low, flask.high) == pytest.approx(
        (100 * math.exp(-half_flask), 100 * math.exp(half_flask))
    )
    assert found.apps["fastapi"].value / flask.value == pytest.approx(found.ratio.value)
    # The difference beside it is the ratio's change at Flask's level: 100 x (e^0.2 - 1).
    assert found.difference.value == pytest.approx(100 * (math.exp(0.2) - 1))
    assert found.difference.low == pytest.approx(100 * (math.exp(0.2 - half) - 1))
    # The equivalence test reads the 90% interval: t(0.95, 2) = 2.919986.
    half_90 = T[0.95, 2] * 0.1 / math.sqrt(3)
    assert (found.tested.low, found.tested.high) == pytest.approx(
        (math.exp(0.2 - half_90), math.exp(0.2 + half_90))
    )


def test_pairing_by_launch_removes_what_moves_both_apps_alike():
    # Each launch moves both apps by up to 2x, and FastAPI is always 12% lower: apart the
    # apps' intervals overlap, paired the ratio is exact.
    found = estimate(by_repeat([100.0, 200.0, 150.0, 120.0], [0.88] * 4), NAMES, CPU, "ms")
    assert found.apps["flask"].high > found.apps["fastapi"].low
    assert (found.ratio.low, found.ratio.value, found.ratio.high) == pytest.approx((0.88,) * 3)
    assert found.decision == "lower" and found.p_value == 0.0
    # Flask's geometric mean is (100 x 200 x 150 x 120) ** (1/4) = 137.8: 12% of it is 16.5.
    assert found.words == "FastAPI 12% lower, -16.5 ms (95% CI 12\u201312%)"


def test_the_interval_covers_a_known_ratio_about_95_times_in_100():
    # 1,000 comparisons of 5 launches each, FastAPI truly 0.9 of Flask, each launch's
    # ratio off by a log-normal 8%: the intervals must cover 0.9 in 95% of them.
    draw = random.Random(12)
    covered = 0
    for _ in range(1000):
        flask = [draw.uniform(80, 120) for _ in range(5)]
        ratios = [0.9 * math.exp(draw.gauss(0, 0.08)) for _ in range(5)]
        ratio = estimate(by_repeat(flask, ratios), NAMES, CPU).ratio
        covered += ratio.low <= 0.9 <= ratio.high
    assert 0.93 <= covered / 1000 <= 0.97  # 95% and three standard errors of 0.007


def test_equivalence_is_tost_the_90_percent_interval_inside_the_margin():
    # Log ratios -2a, -a, 0, a, 2a: mean 0, deviation a x sqrt(2.5). With a = 0.02601 the
    # 90% half-width is 2.131847 x 0.041126 / sqrt(5) = 0.03921: 0.9615-1.0400, inside
    # ±5%; the 95% one, 2.776445 x 0.041126 / sqrt(5) = 0.05107, reaches +5.2%. The old
    # test on the 95% interval called this inconclusive (Unit's / CPU, 90% CI 0.958-1.040).
    a = 0.02601
    found = estimate(
        by_repeat([10.0] * 5, [math.exp(k * a) for k in (-2, -1, 0, 1, 2)]), NAMES, CPU, "ms"
    )
    half_90 = T[0.95, 4] * a * math.sqrt(2.5) / math.sqrt(5)
    assert half_90 == pytest.approx(0.03921, abs=1e-5)
    assert (found.tested.low, found.tested.high) == pytest.approx(
        (math.exp(-half_90), math.exp(half_90))
    )
    assert found.ratio.high == pytest.approx(math.exp(T[0.975, 4] * a * math.sqrt(2.5) / 5**0.5))
    assert found.ratio.high > 1.05
    assert (found.decision, found.within_margin) == ("equivalent", True)
    assert found.words == "equivalent within ±5% (FastAPI +0%, +0 ms; 90% CI -3.8% to +4.0%)"


@pytest.mark.parametrize(
    ("ratios", "decision", "within", "words"),
    [
        # Geometric means 0.88 and 1.249: -12 ms and +24.9 ms at Flask's 100 ms.
        (
            [0.86, 0.88, 0.90, 0.88],
            "lower",
            False,
            "FastAPI 12% lower, -12 ms (95% CI 9.4\u201315%)",
        ),
        ([1.20, 1.25, 1.30], "higher", False, "FastAPI 25% higher, +24.9 ms (95% CI 13\u201338%)"),
        # A difference the interval shows, inside the margin: said as both, difference first.
        (
            [1.01, 1.02, 1.015, 1.012],
            "higher",
            True,
            "FastAPI 1.4% higher, +1.42 ms (95% CI 0.74\u20132.1%), within the ±5% margin",
        ),
        ([0.9], "no interval", None, "FastAPI -10%, -10 ms (one launch: no interval)"),
    ],
)
def test_the_words_follow_the_two_tests(ratios, decision, within, words):
    found = estimate(by_repeat([100.0] * len(ratios), ratios), NAMES, CPU, "ms")
    assert (found.decision, found.within_margin, found.words) == (decision, within, words)
    assert found.more_launches is None


def test_a_difference_of_the_same_size_reads_the_same_whatever_its_interval_width():
    # The PSS: granian's 1.042-1.048 and Unit's 1.054-1.057 both exclude 1 and lie
    # outside PSS's ±2%: both are differences, not one "equivalent" and one "higher".
    narrow = estimate(by_repeat([60.0] * 4, [1.044, 1.045, 1.046, 1.045]), NAMES, PSS, "MiB")
    wider = estimate(by_repeat([60.0] * 4, [1.053, 1.056, 1.055, 1.057]), NAMES, PSS, "MiB")
    assert (narrow.decision, narrow.within_margin) == ("higher", False)
    assert (wider.decision, wider.within_margin) == ("higher", False)
    assert narrow.words == "FastAPI 4.5% higher, +2.7 MiB (95% CI 4.4\u20134.6%)"


def test_a_figure_with_a_margin_of_the_difference_is_tested_on_the_differences():
    # Differences 0.05, 0.07, 0.09 (% of a core): mean 0.07, deviation 0.02. 95%: 0.07 ±
    # 4.302653 x 0.02 / sqrt(3) = ±0.04968, so 0.0203-0.1197: higher. 90%: ±0.03372, so
    # 0.0363-0.1037, which reaches past the ±0.1 margin. Ratios 1.5, 1.7, 1.9: geometric
    # mean (4.845) ** (1/3) = 1.692.
    found = estimate(
        {"flask": [0.1, 0.1, 0.1], "fastapi": [0.15, 0.17, 0.19]}, NAMES, IDLE, "% of a core"
    )
    half = T[0.975, 2] * 0.02 / math.sqrt(3)
    assert (found.difference.low, found.difference.value, found.difference.high) == pytest.approx(
        (0.07 - half, 0.07, 0.07 + half)
    )
    assert found.tested.high == pytest.approx(0.07 + T[0.95, 2] * 0.02 / math.sqrt(3))
    assert (found.decision, found.within_margin) == ("higher", False)
    assert found.words == "FastAPI higher by 0.07% of a core (+69%; 95% CI 0.0203\u20130.12)"
    # A large ratio of a tiny amount is equivalence when the amount lies inside the margin.
    small = estimate(
        {"flask": [0.1, 0.1, 0.1], "fastapi": [0.15, 0.16, 0.17]}, NAMES, IDLE, "% of a core"
    )
    assert (small.decision, small.within_margin) == ("higher", True)
    # An idle app read from outside may spend nothing in a window: no ratio, but the
    # differences 0.1, 0.1, 0.1 still test. (Their spread is 0: the interval is the value.)
    idle = estimate(
        {"flask": [0.0, 0.05, 0.0], "fastapi": [0.1, 0.15, 0.1]}, NAMES, IDLE, "% of a core"
    )
    assert idle.ratio is None and idle.difference.value == pytest.approx(0.1)
    assert idle.words == "FastAPI higher by 0.1% of a core (95% CI 0.1\u20130.1)"


def test_inconclusive_names_the_launches_that_give_80_percent_power_and_they_do():
    # Log ratios of 0.95, 1.10, 1.02: mean 0.0213, deviation 0.0733; the 90% interval
    # reaches past ±5% both ways, and the mean lies inside: TOST's power is what counts.
    found = estimate(by_repeat([100.0] * 3, [0.95, 1.10, 1.02]), NAMES, CPU, "ms")
    assert found.decision == "inconclusive"
    n = found.more_launches
    assert found.words.endswith(f": about {n} launches would show them equivalent with 80% power")
    logs = [math.log(r) for r in (0.95, 1.10, 1.02)]
    mean, sd = float(np.mean(logs)), float(np.std(logs, ddof=1))
    # Simulated with that mean and spread as the truth, n launches decide 80% of the time
    # (and n - 5 clearly less often): the figure is what it says, not a projection of
    # the interval's width alone.
    assert decided_share(mean, sd, n) >= 0.77
    assert decided_share(mean, sd, n - 5) < 0.77
    # Outside the margin, the difference test's power: a mean of 0.08, deviation 0.1.
    n = launches_for_power(0.08, 0.1, CPU.bounds())
    assert decided_share(0.08, 0.1, n) >= 0.77 > decided_share(0.08, 0.1, n - 4)
    # A spread that even 200 launches could not narrow to ±5%: no such line. TOST needs
    # about (1.65 x 0.69 / 0.05)^2 = 520 launches for log ratios of deviation log 2.
    assert launches_for_power(0.0, math.log(2), CPU.bounds()) is None
    found = estimate(by_repeat([100.0] * 3, [0.5, 1.0, 2.0]), NAMES, CPU, "ms")
    assert (found.decision, found.more_launches) == ("inconclusive", None)
    assert found.words.endswith("beyond ±5%)")
    # At the margin itself, the difference from none is what can be shown.
    n = launches_for_power(math.log(1.05), 0.05, CPU.bounds())
    assert (
        decided_share(math.log(1.05), 0.05, n) >= 0.77 > decided_share(math.log(1.05), 0.05, n - 3)
    )


def decided_share(mean: float, sd: float, n: int, draws: int = 4000) -> float:
    """How often n launches of log ratios ~ N(mean, sd) decide: equivalence by TOST where
    the mean is inside ±5%, else a difference at 5%."""
    from scipy import stats

    values = np.random.default_rng(7).normal(mean, sd, (draws, n))
    means, se = values.mean(1), values.std(1, ddof=1) / math.sqrt(n)
    low, high = CPU.bounds()
    if low < mean < high:
        t = stats.t.ppf(0.95, n - 1)
        return float(np.mean((means - t * se >= low) & (means + t * se <= high)))
    t = stats.t.ppf(0.975, n - 1)
    return float(np.mean(np.abs(means) > t * se))


def test_pooled_batches_are_a_random_effect_worked_by_hand():
    # Batches 1,2,3 and 4,5,6: means 2 and 5, within-batch variance 1, between mean square
    # 3 x (1.5^2 + 1.5^2) = 13.5, so a between-batch variance of (13.5 - 1) / 3 = 4.17. The
    # mean's variance is 13.5 / 6, with 1 degree of freedom: the batches are the units.
    found = pooled([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1])
    assert (found.value, found.se, found.df) == pytest.approx((3.5, 1.5, 1.0))
    assert found.between_sd == pytest.approx(math.sqrt(12.5 / 3))
    assert found.interval(0.95) == pytest.approx((3.5 - T_975_1 * 1.5, 3.5 + T_975_1 * 1.5))
    # Batches that agree better than their launches do: no between-batch variance, and the
    # within-batch variance (1) over all six launches, with 6 - 2 = 4 degrees of freedom.
    found = pooled([1, 2, 3, 1.5, 2.5, 3.5], [0, 0, 0, 1, 1, 1])
    assert (found.value, found.se, found.df, found.between_sd) == pytest.approx(
        (2.25, math.sqrt(1 / 6), 4.0, 0.0)
    )
    # One batch is the t-interval: mean 2, deviation 1, 2 degrees of freedom.
    found = pooled([1, 2, 3])
    assert (found.value, found.se, found.df, found.between_sd) == (2.0, 1 / math.sqrt(3), 2, None)


def test_pooled_intervals_cover_when_batches_differ_and_a_naive_pool_does_not():
    # Three batches of five launches, each batch shifted by N(0, 0.08), each launch by
    # N(0, 0.05) around it: the random-effects interval covers the truth (0) about 95%
    # of the time; the t-interval of all fifteen as one batch, far less.
    draw = np.random.default_rng(3)
    covered = naive = 0
    for _ in range(1000):
        shifts = draw.normal(0, 0.08, 3)
        values = [float(v) for shift in shifts for v in draw.normal(shift, 0.05, 5)]
        batches = [b for b in range(3) for _ in range(5)]
        low, high = pooled(values, batches).interval(0.95)
        covered += low <= 0 <= high
        low, high = pooled(values).interval(0.95)
        naive += low <= 0 <= high
    assert 0.92 <= covered / 1000 <= 0.98
    assert naive / 1000 < 0.75


def test_estimates_pool_batches_and_report_the_spread_between_them():
    ratios = [0.86, 0.88, 0.90, 0.95, 0.97, 0.99]
    values = by_repeat([100.0] * 6, ratios)
    one = estimate(values, NAMES, CPU, "ms")
    two = estimate(values, NAMES, CPU, "ms", batches=[0, 0, 0, 1, 1, 1])
    assert one.between_batches is None and two.between_batches > 0
    assert two.ratio.high - two.ratio.low > one.ratio.high - one.ratio.low
    assert two.ratio.n == 6


def make_estimate(p_value: float, decision: str) -> Estimate:
    found = estimate(by_repeat([1.0, 1.0], [1.0, 1.1]), NAMES, CPU)
    found.p_value, found.decision, found.words = p_value, decision, decision
    return found


def test_holm_keeps_the_differences_that_survive_its_steps():
    # p = 0.01, 0.02, 0.03, 0.04 of four tests: 0.01 <= 0.05/4 holds; 0.02 > 0.05/3 stops
    # the procedure there, so the 0.03 and 0.04 fall with it, even under 0.05.
    found = [make_estimate(p, "higher") for p in (0.03, 0.01, 0.04, 0.02)]
    found.append(make_estimate(0.6, "equivalent"))
    assert holm(found) == 5
    # Five tests: 0.01 <= 0.05/5 = 0.01 holds; 0.02 > 0.05/4 stops.
    assert [f.holm for f in found] == [False, True, False, False, None]
    assert found[0].words == "higher (not after Holm's correction across 5 tests)"
    assert found[1].words == "higher"


def test_a_launch_missing_a_figure_is_left_out_of_the_pairs_and_a_value_at_0_of_the_ratio():
    values = {"flask": [1.0, None, 1.0, 1.0], "fastapi": [0.9, 0.8, 0.9, 0.9]}
    found = estimate(values, NAMES, CPU)
    assert found.ratio.n == 3 and found.apps["fastapi"].n == 4
    found = estimate({"flask": [1.0, -0.5], "fastapi": [1.0, 1.0]}, NAMES, CPU)
    assert (found.ratio, found.decision) == (None, "no data")
    assert found.words == "no ratio: a value at or below 0"
    assert estimate({"flask": [None], "fastapi": [None]}, NAMES, CPU).words == "no data"


def test_an_a_a_comparison_names_its_second_instance():
    names = {"flask": "Flask A", "fastapi": "Flask B"}
    found = estimate(by_repeat([1.0, 2.0, 3.0], [0.7, 0.72, 0.71]), names, CPU)
    assert found.words.startswith("Flask B 29% lower")


def test_a_figure_with_a_value_at_or_below_0_is_given_as_its_plain_mean():
    found = estimate({"flask": [-1.0, 1.0, 3.0], "fastapi": [1.0, 1.0, 1.0]}, NAMES, IDLE)
    assert found.apps["flask"].value == pytest.approx(1.0)
    # A t-interval of the values themselves: 1 ± 4.302653 x 2 / sqrt(3).
    assert found.apps["flask"].low == pytest.approx(1 - T[0.975, 2] * 2 / math.sqrt(3))


def test_spread_is_median_with_min_and_max_of_known_values():
    found = spread([3.0, None, 1.0, 2.0, 10.0])
    assert (found.median, found.min, found.max, found.n) == (2.5, 1.0, 10.0, 4)
    assert spread([None]) is None
