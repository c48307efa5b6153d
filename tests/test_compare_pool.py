"""compare --from: batches' reports pooled into one estimate, the batch a random effect,
worked by hand; and what cannot be pooled refused with exit 2, saying why."""

import copy
import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT

REPORT = ROOT / "docs" / "report" / "report.json"
T_975_1 = 12.706205  # Student's t, 97.5th percentile, 1 degree of freedom


def batch(folder, log_ratios: list[float], date: str, **environment) -> None:
    """docs/report's report.json in folder, each row's CPU per request set so that FastAPI's
    is Flask's times exp(each launch's log ratio)."""
    report = json.loads(REPORT.read_text())
    n = len(log_ratios)  # at most docs/report's 5: its other figures' first n launches
    env = report["environment"]
    env["date"] = date
    env["repeats"] = {
        **env["repeats"],
        "count": n,
        "first_place": env["repeats"]["first_place"][:n],
    }
    env |= environment
    for row in report["headline"]:
        for figure in row["figures"].values():
            figure["per_repeat"] = {app: v[:n] for app, v in figure["per_repeat"].items()}
        row["figures"]["cpu_ms_per_request"]["per_repeat"] = {
            "flask": [0.1] * n,
            "fastapi": [0.1 * math.exp(x) for x in log_ratios],
        }
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(report))


def compare(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compare", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_batches_pool_as_a_random_effect_worked_by_hand(tmp_path):
    # Log ratios 0.01-0.05 in one batch, 0.06-0.10 in the other: means 0.03 and 0.08, the
    # within-batch variance 0.00025, the between mean square 5 x (0.025^2 x 2) = 0.00625,
    # so a between-batch variance of (0.00625 - 0.00025) / 5 = 0.0012. The pooled mean
    # 0.055 has variance 0.00625 / 10 and 1 degree of freedom: the batches are the units.
    batch(tmp_path / "a", [0.01, 0.02, 0.03, 0.04, 0.05], "2026-12-01T10:00:00+00:00")
    batch(tmp_path / "b", [0.06, 0.07, 0.08, 0.09, 0.10], "2026-12-02T16:00:00+00:00")
    done = compare("--from", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    cpu = report["headline"][0]["figures"]["cpu_ms_per_request"]
    half = T_975_1 * math.sqrt(0.00625 / 10)
    assert cpu["ratio"]["value"] == pytest.approx(math.exp(0.055))
    assert (cpu["ratio"]["low"], cpu["ratio"]["high"]) == pytest.approx(
        (math.exp(0.055 - half), math.exp(0.055 + half))
    )
    assert cpu["between_batches"] == pytest.approx(math.sqrt(0.0012))
    assert cpu["ratio"]["n"] == 10 and cpu["batches"] == [0] * 5 + [1] * 5
    # Each batch alone names a difference; pooled, the batches' disagreement makes it
    # inconclusive: the finding one batch made is no finding of the machine's.
    alone = [each[0]["figures"]["cpu_ms_per_request"] for each in report["batch_headlines"]]
    assert [figure["decision"] for figure in alone] == ["higher", "higher"]
    assert cpu["decision"] == "inconclusive"
    markdown = (tmp_path / "p" / "report.md").read_text()
    assert markdown.startswith("# Flask vs FastAPI, pooled from 2 batches\n")
    assert "The 10 launches come from 2 batches" in markdown
    assert f"- batch 1: {tmp_path / 'a'}, 2026-12-01T10:00:00+00:00, 5 launches" in markdown
    batches = markdown.split("## The batches")[1]
    (line,) = [x for x in batches.splitlines() if x.startswith("| hello | CPU per request")]
    assert line.endswith(f" | {math.expm1(math.sqrt(0.0012)) * 100:.1f}% |")  # 3.5%
    assert (tmp_path / "p" / "estimates.png").stat().st_size > 0
    assert "report: " in done.stdout


def test_batches_that_agree_pool_to_the_within_batch_interval(tmp_path):
    # Means 0.03 and 0.035: the between mean square, 5 x (0.0025^2 x 2) = 0.0000625, is
    # under the within variance 0.00025: no between-batch variance, and the interval of
    # all ten with 10 - 2 = 8 degrees of freedom (t = 2.306004).
    batch(tmp_path / "a", [0.01, 0.02, 0.03, 0.04, 0.05], "2026-12-01T10:00:00+00:00")
    batch(tmp_path / "b", [0.015, 0.025, 0.035, 0.045, 0.055], "2026-12-02T16:00:00+00:00")
    done = compare("--from", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    cpu = report["headline"][0]["figures"]["cpu_ms_per_request"]
    half = 2.306004 * math.sqrt(0.00025 / 10)
    assert (cpu["ratio"]["low"], cpu["ratio"]["high"]) == pytest.approx(
        (math.exp(0.0325 - half), math.exp(0.0325 + half))
    )
    assert cpu["between_batches"] == 0


@pytest.mark.parametrize(
    ("second", "extra", "says"),
    [
        ("unit", [], "server Unit/1.34.2, not granian as in"),
        ("same", [], "names one report twice"),
        ("rounds", [], "ran against one launch of the apps"),
        ("missing", [], "no report of compare's"),
        (None, [], "give two reports or more"),
        ("b", ["--launch"], "--from runs nothing: --launch would do nothing with it"),
        ("b", ["--repeats", "8"], "--repeats would do nothing"),
    ],
)
def test_what_cannot_be_pooled_is_refused_with_exit_2(tmp_path, second, extra, says):
    batch(tmp_path / "a", [0.01, 0.02, 0.03], "2026-12-01T10:00:00+00:00")
    sources = [str(tmp_path / "a")]
    if second == "unit":
        apps = json.loads(REPORT.read_text())["environment"]["apps"]
        unit = copy.deepcopy(apps)
        for app in unit.values():
            app["server"] = "Unit/1.34.2"
        batch(tmp_path / "b", [0.01, 0.02], "2026-12-02T10:00:00+00:00", apps=unit)
        sources.append(str(tmp_path / "b"))
    elif second == "same":
        sources.append(str(tmp_path / "a" / "report.json"))
    elif second == "rounds":
        batch(
            tmp_path / "b",
            [0.01, 0.02],
            "2026-12-02T10:00:00+00:00",
            repeats={"count": 2, "launches": False},
        )
        sources.append(str(tmp_path / "b"))
    elif second == "missing":
        sources.append(str(tmp_path))
    elif second == "b":
        batch(tmp_path / "b", [0.01, 0.02], "2026-12-02T10:00:00+00:00")
        sources.append(str(tmp_path / "b"))
    done = compare("--from", *sources, *extra, "--out", str(tmp_path / "p"))
    assert (done.returncode, done.stdout) == (2, "")
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "p").exists()
