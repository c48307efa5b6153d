"""benchmarks/aa_calibration.py on made data whose false-difference rate is known: the rate
it reports per figure, its jackknife interval over launches, the disjoint sets' count, and
the figures it leaves out."""

import json
import math
import subprocess
import sys

import numpy as np
from conftest import ROOT

from benchmarks import aa_calibration

NAMES = {"flask": "Flask A", "fastapi": "Flask B"}


def made_run(launches: int, rows: int, shift: float, seed: int) -> dict:
    """An A/A run of `rows` CPU rows: each launch's second instance is the first times
    exp(N(shift, 0.05)); PSS alike in both, as two instances of one app are."""
    draw = np.random.default_rng(seed)
    found = {}
    for row in range(rows):
        first = draw.uniform(0.08, 0.12, launches)
        second = first * np.exp(draw.normal(shift, 0.05, launches))
        found[f"s{row} w=1 cpu_ms_per_request"] = {
            "figure": "cpu_ms_per_request",
            "per_repeat": {"flask": first.tolist(), "fastapi": second.tolist()},
        }
    found["s0 w=1 pss_mb"] = {
        "figure": "pss_mb",
        "per_repeat": {"flask": [60.0] * launches, "fastapi": [60.0] * launches},
    }
    return {
        "app": "flask",
        "names": NAMES,
        "date": "made",
        "server": "made",
        "launches": launches,
        "first_place": ["flask", "fastapi"] * (launches // 2),
        "rows": found,
    }


def test_with_no_difference_the_rate_is_the_tests_5_percent_and_its_interval_holds_it():
    # Normal log ratios with no shift: a paired t-test at 5% names a difference in exactly
    # 5% of comparisons. 40 rows of 30 launches, 400 draws of 6 each: 16,000 rows.
    tally = aa_calibration.rates(made_run(30, 40, 0.0, seed=1), size=6, draws=400, seed=1)
    assert set(tally) == {"cpu_ms_per_request"}  # PSS is left out: it cannot differ
    cpu = tally["cpu_ms_per_request"]
    assert cpu["rows"] == 40 * 400
    rate = cpu["named"] / cpu["rows"]
    half = 1.96 * math.sqrt(aa_calibration.jackknife_variance(cpu["left_out"]))
    assert abs(rate - 0.05) < 0.02, rate
    assert rate - half <= 0.05 <= rate + half, (rate, half)
    assert cpu["sets"][0] == 40 * 5  # 30 launches: five disjoint sets of six, per row


def test_a_real_difference_is_named_as_often_as_its_power_says():
    # A shift of 0.05 with deviation 0.05 over 6 launches: a t-test's power is
    # P(|t(5, noncentrality 0.05/(0.05/sqrt 6) = 2.449)| > 2.571) = 0.507 (scipy's nct).
    tally = aa_calibration.rates(made_run(30, 40, 0.05, seed=2), size=6, draws=400, seed=2)
    cpu = tally["cpu_ms_per_request"]
    assert 0.46 < cpu["named"] / cpu["rows"] < 0.56


def test_the_jackknife_is_of_the_left_out_rates():
    # Left-out rates 0.1, 0.2, 0.3 (mean 0.2): (3 - 1)/3 x (0.01 + 0 + 0.01) = 0.01333.
    variance = aa_calibration.jackknife_variance([[10, 1], [10, 2], [10, 3]])
    assert math.isclose(variance, 2 / 3 * 0.02)


def test_it_reads_its_own_json_back_and_prints_a_rate_per_figure(tmp_path):
    data = tmp_path / "aa.json"
    data.write_text(json.dumps({"runs": [made_run(12, 4, 0.0, seed=3)]}))
    done = subprocess.run(
        [sys.executable, "benchmarks/aa_calibration.py", "--from", str(data), "--size", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "A/A: Flask B against Flask A under made (made): 12 launches; 2000 draws of 6"
    )
    (cpu,) = [line for line in lines if line.startswith("CPU per request")]
    run = json.loads(data.read_text())["runs"][0]
    tally = aa_calibration.rates(run, size=6, draws=2000, seed=1)["cpu_ms_per_request"]
    rate = tally["named"] / tally["rows"]
    assert f" {tally['rows']} " in cpu and f" {rate:.1%} " in cpu
    half = 1.96 * math.sqrt(aa_calibration.jackknife_variance(tally["left_out"]))
    assert cpu.endswith(aa_calibration.verdict(rate, rate - half))
    assert f" {tally['sets'][1]}/8 (" in cpu  # 4 rows x 2 disjoint sets of 6
    assert "PSS: left out: two instances of one app cannot differ in PSS by design" in lines


def test_the_verdict_is_met_within_its_noise_or_over():
    assert aa_calibration.verdict(0.04, 0.0) == "met"
    assert aa_calibration.verdict(0.06, 0.01) == "within its noise"
    assert aa_calibration.verdict(0.12, 0.07) == "NOT met: over the target"
