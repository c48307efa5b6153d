"""compare.statistics: intervals, words and the repeats an estimate needs, on constructed data
with known answers."""

import math
import random

import pytest

from compare.statistics import (
    decided,
    estimate,
    mean_interval,
    more_repeats,
    spread,
)

NAMES = {"flask": "Flask", "fastapi": "FastAPI"}
# Student's t, 97.5th percentile, 2 degrees of freedom: from the printed tables.
T_975_2 = 4.302653


def by_repeat(flask: list[float], ratios: list[float]) -> dict[str, list[float | None]]:
    """Flask's values, and FastAPI's as those times each repeat's ratio."""
    return {"flask": list(flask), "fastapi": [a * r for a, r in zip(flask, ratios, strict=True)]}


def test_the_ratio_interval_is_a_t_interval_on_the_logarithms_of_the_paired_ratios():
    # log ratios 0.1, 0.2, 0.3: mean 0.2, standard deviation 0.1, three repeats.
    values = by_repeat([100.0, 50.0, 200.0], [math.exp(0.1), math.exp(0.2), math.exp(0.3)])
    found = estimate(values, NAMES)
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert found.ratio.value == pytest.approx(math.exp(0.2))
    assert found.ratio.low == pytest.approx(math.exp(0.2 - half))
    assert found.ratio.high == pytest.approx(math.exp(0.2 + half))
    assert found.ratio.n == 3
    # Each app's own figure is its geometric mean, (100 x 50 x 200) ** (1/3) = 100, with
    # the t-interval of its logarithms: unpaired, the launches' spread is in it.
    flask = found.apps["flask"]
    assert flask.value == pytest.approx(100.0)
    half_flask = T_975_2 * math.log(2) / math.sqrt(3)  # logs 0, -log 2, +log 2: deviation log 2
    assert (flask.low, flask.high) == pytest.approx(
        (100 * math.exp(-half_flask), 100 * math.exp(half_flask))
    )
    # and the ratio of the two apps' figures is the ratio's.
    assert found.apps["fastapi"].value / flask.value == pytest.approx(found.ratio.value)


def test_pairing_by_repeat_removes_what_moves_both_apps_alike():
    # Each launch moves both apps by up to 2x, and FastAPI is always 12% lower: apart the
    # apps' intervals overlap, paired the ratio is exact.
    found = estimate(by_repeat([100.0, 200.0, 150.0, 120.0], [0.88] * 4), NAMES)
    assert found.apps["flask"].high > found.apps["fastapi"].low
    assert (found.ratio.low, found.ratio.value, found.ratio.high) == pytest.approx((0.88,) * 3)
    assert found.decision == "lower"
    assert found.words == "FastAPI 12% lower (95% CI 12\u201312%)"


def test_the_interval_covers_a_known_ratio_about_95_times_in_100():
    # 1,000 comparisons of 5 launches each, FastAPI truly 0.9 of Flask, each launch's
    # ratio off by a log-normal 8%: the intervals must cover 0.9 in 95% of them.
    draw = random.Random(12)
    covered = 0
    for _ in range(1000):
        flask = [draw.uniform(80, 120) for _ in range(5)]
        ratios = [0.9 * math.exp(draw.gauss(0, 0.08)) for _ in range(5)]
        ratio = estimate(by_repeat(flask, ratios), NAMES).ratio
        covered += ratio.low <= 0.9 <= ratio.high
    assert 0.93 <= covered / 1000 <= 0.97  # 95% and three standard errors of 0.007


@pytest.mark.parametrize(
    ("ratios", "decision", "words"),
    [
        ([0.86, 0.88, 0.90, 0.88], "lower", "FastAPI 12% lower (95% CI 9.4\u201315%)"),
        ([1.20, 1.25, 1.30], "higher", "FastAPI 25% higher (95% CI 13\u201338%)"),
        # Inside ±5% wholly: equivalent, even though the interval excludes 1.
        (
            [1.01, 1.02, 1.015, 1.012],
            "equivalent",
            "equivalent within ±5% (FastAPI +1.4%, 95% CI +0.74% to +2.1%)",
        ),
        # Mean log ratio 0.0213, deviation 0.0733: at 30 repeats the interval's top,
        # 0.04865, first falls under log(1.05) = 0.04879.
        (
            [0.95, 1.10, 1.02],
            "inconclusive",
            "inconclusive (95% CI -15% to +23%): about 27 more repeats would decide it",
        ),
        ([0.9], "no interval", "FastAPI -10% (one repeat: no interval)"),
    ],
)
def test_the_words_follow_where_the_interval_lies(ratios, decision, words):
    found = estimate(by_repeat([100.0] * len(ratios), ratios), NAMES)
    assert (found.decision, found.words) == (decision, words)
    assert (found.more_repeats is not None) == (decision == "inconclusive")


def test_more_repeats_is_the_fewest_whose_interval_would_decide_at_this_mean_and_spread():
    # Log ratios 0, 0.1, 0.2: mean 0.1, deviation 0.1. A t-interval excludes 0 once
    # t(n-1) < sqrt(n): not at 6 (2.571 > 2.449), at 7 (2.447 < 2.646). So 4 more.
    logs = [0.0, 0.1, 0.2]
    assert more_repeats(logs) == 4
    assert not decided(0.1, 0.1, 6) and decided(0.1, 0.1, 7)
    found = estimate(by_repeat([1.0] * 3, [math.exp(x) for x in logs]), NAMES)
    assert found.decision == "inconclusive" and found.more_repeats == 4
    # Equivalence decides too: a mean of 0 with deviation 0.05 needs t(n-1)*0.05/sqrt(n)
    # under log(1.05) = 0.0488: 6 repeats (2.571*0.05/2.449 = 0.0525 is not; 7: 0.0462 is).
    assert more_repeats([-0.05, 0.0, 0.05]) == 4


def test_a_repeat_missing_a_figure_is_left_out_of_the_pairs_and_a_value_at_0_of_the_ratio():
    values = {"flask": [1.0, None, 1.0, 1.0], "fastapi": [0.9, 0.8, 0.9, 0.9]}
    found = estimate(values, NAMES)
    assert found.ratio.n == 3 and found.apps["fastapi"].n == 4
    found = estimate({"flask": [1.0, -0.5], "fastapi": [1.0, 1.0]}, NAMES)
    assert (found.ratio, found.decision) == (None, "no data")
    assert found.words == "no ratio: a value at or below 0"
    assert estimate({"flask": [None], "fastapi": [None]}, NAMES).words == "no data"


def test_an_a_a_comparison_names_its_second_instance():
    names = {"flask": "Flask A", "fastapi": "Flask B"}
    found = estimate(by_repeat([1.0, 2.0, 3.0], [0.7, 0.72, 0.71]), names)
    assert found.words.startswith("Flask B 29% lower")


def test_a_figure_with_a_value_at_or_below_0_is_given_as_its_plain_mean():
    found = estimate({"flask": [-1.0, 1.0, 3.0], "fastapi": [1.0, 1.0, 1.0]}, NAMES)
    assert found.apps["flask"].value == pytest.approx(1.0)
    assert found.apps["flask"].low < -1  # a t-interval of the values themselves


def test_a_mean_interval_of_one_value_has_none_and_of_equal_values_is_that_value():
    assert mean_interval([3.0]).low is None
    equal = mean_interval([2.0, 2.0])
    assert (equal.low, equal.value, equal.high) == (2.0, 2.0, 2.0)
    assert mean_interval([]) is None


def test_spread_is_median_with_min_and_max_of_known_values():
    found = spread([3.0, None, 1.0, 2.0, 10.0])
    assert (found.median, found.min, found.max, found.n) == (2.5, 1.0, 10.0, 4)
    assert spread([None]) is None
