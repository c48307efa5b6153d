"""compare.report, compare.numbers and compare.procedure's order: numbers written for people,
a report that opens with its answer, and the apps' turns."""

import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT
from made_runs import comparison
from rich.console import Console

from compare import headline, report, sentences, whole_counts
from compare.numbers import interval, number, percent
from compare.procedure import rounded, turn
from compare.targets import APPS

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (10_190.4, "10,190"),
        (1.019e4, "10,190"),
        (123_456_789.0, "123,456,789"),
        (999.6, "1,000"),
        (35.27, "35.3"),
        (0.1117, "0.112"),
        (0.000413, "0.000413"),
        (1e-9, "0.000000001"),
        (-2.5, "-2.5"),
        (0, "0"),
        (None, "-"),
        (float("nan"), "-"),
    ],
)
def test_numbers_are_written_for_people(value, written):
    assert number(value) == written


def test_no_magnitude_is_written_in_scientific_notation():
    for exponent in range(-12, 16):
        for mantissa in (1.0, 2.5, 9.999):
            assert not SCIENTIFIC.search(number(mantissa * 10**exponent)), exponent
    assert interval(10_190, 9_935, 10_540) == "10,190 [9,935\u201310,540]"


def environment(launches: bool = True) -> dict:
    """The environment report.py reads, as compare's __main__ builds it."""
    app = {
        "url": "http://127.0.0.1:8080",
        "framework": "flask",
        "file": "flask-wsgi.py",
        "style": "typed",
        "framework_version": "3.1.3",
        "python_version": "3.11.7",
        "server": "granian",
        "server_processes": ["master"],
        "workers": 1,
        "cpu_affinity": [0],
        "cgroup": None,
    }
    return {
        "date": "2026-12-02T00:00:00+00:00",
        "machine": {
            "cpu_model": "a CPU",
            "cpu_count": 2,
            "memory_total_mb": 24_000,
            "platform": "Linux",
            "load_average_at_start": [0.1, 0.1, 0.1],
        },
        "names": {"flask": "Flask", "fastapi": "FastAPI"},
        "repeats": {"count": 3, "launches": launches},
        "apps": {
            "flask": app,
            "fastapi": {**app, "framework": "fastapi", "file": "fastapi-asgi.py"},
        },
        "load_tool": "wrk 4.1.0",
        "open_loop_tool": "openloop",
        "pinning": "load tool on cores [1], apps on cores [0]",
        "launched_with": ["./up.sh"] if launches else None,
        "settings": {
            "scenarios": {"hello": "/", "json": "/json"},
            "connections": [32],
            "arrivals": "poisson",
            "workers": [1],
            "duration_s": 4,
            "warmup_s": 2,
            "repeats": 3,
            "poll_s": 1.0,
        },
        "command": ["python", "-m", "compare", "--launch"],
        "runner_cpu_s": 12.345,
        "wall_s": 600.0,
        "seed": 7,
        "observer": {"idle_median_share": 0.8, "loaded_max_share": 0.021},
        "notes": ["hello (w=1): the rates are 25%, 50%, 75% of the lower capacity"],
    }


@pytest.fixture
def runs():
    # Extreme magnitudes, to be written without exponents: 12 million req/s, a micro-
    # second of CPU per request.
    hello = comparison(
        slopes_ms={"flask": [0.2, 0.21, 0.19], "fastapi": [0.17, 0.18, 0.165]},
        idle_percent={"flask": 1.0, "fastapi": 1.5},
        capacities={"flask": [5000.0, 5100.0, 4900.0], "fastapi": [6000.0, 6050.0, 5900.0]},
    )
    huge = comparison(
        slopes_ms={"flask": [0.000001, 0.0000011, 0.0000009], "fastapi": [1e-6] * 3},
        idle_percent={"flask": 1.0, "fastapi": 1.5},
        capacities={"flask": [1.2e7, 1.3e7, 1.1e7], "fastapi": [1.25e7, 1.2e7, 1.3e7]},
        scenario="json",
        idle=False,  # the repeats' idle runs are hello's
    )
    return hello + huge


def test_report_md_opens_with_one_row_per_scenario_and_no_scientific_notation(runs, tmp_path):
    env = environment()
    data = report.assemble(runs, ["hello", "json"], env["names"], {})
    paths = report.write(tmp_path, env, data, runs)
    markdown = (tmp_path / "report.md").read_text()
    lines = markdown.splitlines()
    assert lines[0] == "# Flask vs FastAPI"
    # No whole-request counts here: the report says how to make them, then its estimates.
    assert lines[lines.index("## FastAPI against Flask: the whole request, in instructions") + 2]
    table = lines[lines.index("## FastAPI against Flask, measured with a wall clock") + 2 :]
    assert table[0].startswith("| scenario | CPU per request at equal rates | idle cost |")
    assert [row.split(" | ")[0] for row in table[2:4]] == ["| hello", "| json"]
    assert "FastAPI 14% lower, -0.0283 ms (95% CI" in table[2]  # 0.172 / 0.2: 14% less CPU
    for line in lines:
        assert not SCIENTIFIC.search(line), line
    assert "12,000,000" in markdown  # a capacity, with its separators
    assert {p.name for p in paths} >= {"estimates.png", "latency_hello.png", "cpu_json.png"}
    saved = json.loads((tmp_path / "report.json").read_text())
    cpu = saved["headline"][0]["figures"]["cpu_ms_per_request"]
    assert cpu["ratio"]["low"] < cpu["ratio"]["value"] < cpu["ratio"]["high"] < 1
    assert len(cpu["per_repeat"]["flask"]) == 3


def test_the_terminal_table_follows_the_headline_order_without_exponents(runs):
    env = environment()
    data = report.assemble(runs, ["hello", "json"], env["names"], {})
    console = Console(record=True, width=250)
    report.print_table(console, env, data)
    text = console.export_text()
    assert not SCIENTIFIC.search(text)
    figures = [line.split("│")[2].strip() for line in text.splitlines() if "│ hello " in line]
    order = ["CPU per request", "idle cost", "capacity", "p99 at 50%", "PSS"]
    assert [next(o for o in order if figure.startswith(o)) for figure in figures] == order


def test_against_running_apps_the_report_says_launches_were_not_repeated(runs):
    sentence = sentences.repeats_sentence(environment(launches=False))
    assert sentence.startswith("Launches were not repeated")
    assert "run-to-run noise within that launch only" in sentence
    assert "launch of both apps of its own" in sentences.repeats_sentence(environment())


def test_one_launch_is_said_to_give_no_interval_and_no_swap():
    env = environment()
    env["repeats"]["count"] = 1
    sentence = sentences.repeats_sentence(env)
    assert "one launch gives no interval" in sentence
    assert "swapping" not in sentence and "95% confidence interval" not in sentence


def test_the_apps_take_turns_abba_along_pairs_and_repeats():
    flask_first = APPS
    for repeat in range(1, 5):
        firsts = [turn(pair, repeat) == flask_first for pair in range(8)]
        assert Counter(firsts[:4]) == Counter([True, False, True, False])  # 2 and 2
        assert firsts[:4] in (
            [True, False, False, True],
            [False, False, True, True],
            [False, True, True, False],
            [True, True, False, False],
        )
    # The first pair of each repeat goes ABBA across repeats.
    assert [turn(0, repeat) == flask_first for repeat in range(4)] == [True, False, False, True]


def test_rates_are_rounded_to_three_figures():
    assert rounded(0.25 * 9873) == 2470.0
    assert rounded(0.1 * 384.8) == 38.5


# What benchmarks/instructions.py --json writes, for two scenarios (json at another target).
COUNTED = {
    "python": "3.11.7",
    "versions": {"flask": "3.1.3", "fastapi": "0.163.2"},
    "scenarios": {
        "hello": {
            "target": "/",
            "flask": {"plain": 372_719, "typed": 399_626, "project": 403_762},
            "fastapi": {"plain": 480_203, "typed": 354_732, "project": 355_802},
        },
        "json": {
            "target": "/json?n=5",
            "flask": {"plain": 1, "typed": 1, "project": 1},
            "fastapi": {"plain": 1, "typed": 1, "project": 1},
        },
    },
}


def test_the_report_gives_each_apps_style_and_framework_only_instructions_of_both(runs, tmp_path):
    env = environment()
    targets = {"hello": "/", "json": "/json"}
    project = {"flask": ("flask", "project"), "fastapi": ("fastapi", "project")}
    counted = report.framework_counts(COUNTED, targets, project)
    # Counted at another target, json's counts are not this run's: left out.
    assert [row["scenario"] for row in counted["rows"]] == ["hello"]
    assert counted["rows"][0]["apps"] == {"flask": 403_762, "fastapi": 355_802}
    data = report.assemble(runs, ["hello", "json"], env["names"], {}, counted)
    assert data["headline"][0]["instructions_per_request"] == {"flask": 403_762, "fastapi": 355_802}
    assert data["headline"][1]["instructions_per_request"] is None
    report.write(tmp_path, env, data, runs)
    markdown = (tmp_path / "report.md").read_text()
    said = " ".join(markdown.split())
    assert "Response style: Flask typed (flask-wsgi.py), FastAPI typed (fastapi-asgi.py)." in said
    row = next(line for line in markdown.splitlines() if line.startswith("| hello | / |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # Flask plain, typed, project; FastAPI likewise; FastAPI/Flask plain, typed; these apps.
    assert cells[2:] == [
        "372,719", "399,626", "403,762", "480,203", "354,732", "355,802", "1.29", "0.89", "0.88"
    ]  # fmt: skip
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["instructions"]["rows"][0]["flask"]["plain"] == 372_719
    # The baselines of one style compare that style's counts.
    plain = {app: (app, "plain") for app in APPS}
    assert report.framework_counts(COUNTED, targets, plain)["rows"][0]["apps"] == {
        "flask": 372_719,
        "fastapi": 480_203,
    }
    assert report.framework_counts(None, targets, plain) is None


def test_without_counts_the_report_says_how_to_make_them(runs, tmp_path):
    env = environment()
    data = report.assemble(runs, ["hello", "json"], env["names"], {})
    lines = headline.instructions_section(env, data)
    assert "benchmarks/instructions.py --json docs/instructions.json" in " ".join(lines)


def test_the_committed_counts_cover_every_baseline_scenario_at_compares_targets():
    from compare import cli, instructions
    from compare.plan import BASELINE_SCENARIOS

    counted = instructions.committed()
    assert counted is not None, "docs/instructions.json is missing"
    plan = cli.parse([])
    for scenario in BASELINE_SCENARIOS:
        found = counted["scenarios"][scenario]
        assert found["target"] == plan.path(scenario)
        for framework in ("flask", "fastapi"):
            assert set(found[framework]) == {"plain", "typed", "project"}
            assert all(count > 100_000 for count in found[framework].values())


def test_percentages_keep_two_figures_down_to_a_hundredth():
    shares = [0.12, 0.045, 0.0035, 0.0008, 0.00008, 0.00004, 0]
    assert [percent(share) for share in shares] == [
        "12",
        "4.5",
        "0.35",
        "0.08",
        "0.01",
        "<0.01",
        "0",
    ]


def whole_row(style: str, condition: str, target: str, connections: int, flask, fastapi):
    return {
        "style": style,
        "condition": condition,
        "scenario": "hello",
        "target": target,
        "connections": connections,
        "flask": {"per_request": flask},
        "fastapi": {"per_request": fastapi},
    }


# What benchmarks/whole_request.py --json writes, cut down to what reports read.
WHOLE = {
    "versions": {"python": "3.11.2", "flask": "3.1.3", "fastapi": "0.163.2", "unit": "1.34.2"},
    "servers": {
        "granian": {
            "rows": [
                whole_row("project", "contended", "/", 1, 400_000, 420_000),
                whole_row("project", "alone", "/", 1, 400_000, 420_100),
                whole_row("project", "contended", "/", 16, 1, 1),  # not one connection
                whole_row("plain", "contended", "/", 1, 2, 3),  # another style
                whole_row("project", "contended", "/json?n=5", 1, 1, 1),  # another target
            ]
        },
        "unit": {
            "rows": [
                whole_row("project", "contended", "/", 1, 450_000, 558_000),
                whole_row("project", "alone", "/", 1, 450_000, 540_000),
            ]
        },
    },
}


def test_a_report_takes_the_whole_request_counts_of_its_targets_style_and_one_connection():
    found = whole_counts.for_report(WHOLE, {"hello": "/", "json": "/json"}, "project")
    assert [row["scenario"] for row in found["rows"]] == ["hello"]  # json: counted elsewhere
    assert found["rows"][0]["servers"] == {
        "granian": {
            "contended": {"flask": 400_000, "fastapi": 420_000},
            "alone": {"flask": 400_000, "fastapi": 420_100},
        },
        "unit": {
            "contended": {"flask": 450_000, "fastapi": 558_000},
            "alone": {"flask": 450_000, "fastapi": 540_000},
        },
    }
    plain = whole_counts.for_report(WHOLE, {"hello": "/"}, "plain")
    assert plain["rows"][0]["servers"] == {"granian": {"contended": {"flask": 2, "fastapi": 3}}}
    assert whole_counts.for_report(None, {"hello": "/"}, "project") is None
    _, rows = headline.whole_table(found)
    # 420,000 / 400,000 = 1.05 (alone 1.05025: the same to two places, so not repeated);
    # 558,000 / 450,000 = 1.24, alone 540,000 / 450,000 = 1.20.
    assert rows == [
        ["hello", "/", "400,000", "420,000", "1.05", "450,000", "558,000", "1.24 (1.20 alone)"]
    ]


@pytest.mark.parametrize(
    ("ratio", "counted", "says"),
    [
        (
            {"value": 0.99, "low": 0.91, "high": 1.09},
            1.05,
            "the wall clock's ratio 0.99 [0.91-1.09] holds the instruction ratio 1.05.",
        ),
        (
            {"value": 0.88, "low": 0.78, "high": 0.999},
            0.77,
            "the instruction ratio 0.77 lies below the wall clock's 0.88 [0.78-0.999]",
        ),
        (
            {"value": 1.3, "low": 1.2, "high": 1.4},
            1.5,
            "the instruction ratio 1.50 lies above the wall clock's 1.3 [1.2-1.4]",
        ),
        (
            {"value": 1.3, "low": None, "high": None},
            1.05,
            "no interval to hold the instruction ratio 1.05",
        ),
    ],
)
def test_a_wall_clock_estimate_is_said_to_hold_the_instruction_ratio_or_not(ratio, counted, says):
    said = whole_counts.agreement("json", {"ratio": ratio}, counted)
    assert said.startswith("json: ") and says in said, said
    disagree = ratio["low"] is not None and not ratio["low"] <= counted <= ratio["high"]
    assert ("disagree" in said) == disagree
    # Where the wall clock counts the database beside the apps, a disagreement names it.
    with_database = whole_counts.agreement("json", {"ratio": ratio}, counted, True)
    assert ("the database's CPU" in with_database) == disagree, with_database


def test_the_report_leads_with_the_whole_request_and_labels_the_wall_clock_its_confirmation(
    runs, tmp_path
):
    env = environment()  # a granian run
    found = whole_counts.for_report(WHOLE, {"hello": "/", "json": "/json"}, "project")
    data = report.assemble(runs, ["hello", "json"], env["names"], {}, None, found)
    report.write(tmp_path, env, data, runs)
    lines = (tmp_path / "report.md").read_text().splitlines()
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == [
        "## FastAPI against Flask: the whole request, in instructions",
        "## FastAPI against Flask, measured with a wall clock: the confirmation",
    ]
    assert (
        "| hello | / | 400,000 | 420,000 | 1.05 | 450,000 | 558,000 | 1.24 (1.20 alone) |" in lines
    )
    # hello's CPU ratio here is 0.85 [0.81-0.89] (made runs): granian's 1.05 lies above it.
    (said,) = [line for line in lines if line.startswith("- hello: ")]
    assert "the instruction ratio 1.05 lies above the wall clock's" in said
    console = Console(record=True, width=250)
    report.print_table(console, env, data)
    assert "1.24 (1.20 alone)" in console.export_text()
    same = {**env, "same_app": "flask", "names": {"flask": "Flask A", "fastapi": "Flask B"}}
    assert headline.whole_section(same, data) == []  # A/A: no frameworks to count


def test_a_report_is_written_again_with_the_counts_committed_now(tmp_path):
    folder = tmp_path / "report"
    shutil.copytree(ROOT / "docs" / "report", folder)
    before = json.loads((folder / "report.json").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "compare.report", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    after = json.loads((folder / "report.json").read_text())
    assert after["runs"] == before["runs"]  # the measurements stay
    for old, new in zip(before["headline"], after["headline"], strict=True):
        assert old["figures"] == new["figures"]
    assert after["whole_request"] == whole_counts.for_report(
        whole_counts.committed(), before["environment"]["settings"]["scenarios"], "project"
    )
    lines = (folder / "report.md").read_text().splitlines()
    assert lines[4] == "## FastAPI against Flask: the whole request, in instructions"


def test_writing_a_report_again_refuses_a_folder_without_one(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "compare.report", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr
        == f"python -m compare.report: no report.json in {tmp_path} (--help lists every option)\n"
    )


def test_the_committed_whole_request_counts_cover_compares_targets_under_both_servers():
    from compare import cli
    from compare.plan import BASELINE_SCENARIOS

    counted = whole_counts.committed()
    assert counted is not None, "docs/whole-request.json is missing"
    plan = cli.parse([])
    targets = {scenario: plan.path(scenario) for scenario in BASELINE_SCENARIOS}
    for style in ("project", "plain", "typed"):
        found = whole_counts.for_report(counted, targets, style)
        assert [row["scenario"] for row in found["rows"]] == list(BASELINE_SCENARIOS), style
        for row in found["rows"]:
            assert set(row["servers"]) == {"granian", "unit"}
            for conditions in row["servers"].values():
                assert set(conditions) == {"contended", "alone"}
                assert all(n > 100_000 for c in conditions.values() for n in c.values())
