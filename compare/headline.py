"""report.md's answer, first: one row per scenario with the words of each headline
figure, the framework-only instruction counts beside them, and each app's estimates (the
rows the terminal table prints too)."""

from __future__ import annotations

from typing import Any

from compare.cells import app_cell, md_table, ratio_cell
from compare.figures import HEADLINE, setting_label, workers_swept
from compare.instructions import STYLES
from compare.numbers import number
from compare.plan import APP_NAMES, FRAMEWORKS
from compare.sentences import database_said, repeats_sentence, style_sentence
from compare.targets import APPS

# What each headline figure means, for the reader of report.md.
MEANINGS = {
    "cpu_ms_per_request": "the slope of the app's CPU (workers and server, and the database"
    " where it runs beside them, less the observer's own) against the requests it served,"
    " fitted over its open-loop runs at the same fixed rates for both apps: what one more"
    " request costs",
    "idle_cpu_percent": "the app's CPU with no request at all (its sampler, event loop and"
    " server; the observer's own subtracted), in % of one core: its idle run, one per repeat,"
    " so the same in every scenario's row",
    "capacity_rps": "the most requests per second of its closed-loop saturation runs (each"
    " connection sends its next request when answered)",
    "p99_ms_at_half": "the 99th percentile latency at the fixed rate nearest half of the lower"
    " capacity, open loop: timed from each request's due time",
    "pss_mb": "the highest proportional set size during the scenario: the whole app's"
    " (workers and the server's processes of this app alone) where /status gives it, else"
    " its workers'",
}


def detail_rows(data: dict[str, Any], swept: bool) -> list[list[str]]:
    """Per setting and headline figure: each app's mean [95% CI], the ratio, the words."""
    rows = []
    for row in data["headline"]:
        for figure in row["figures"].values():
            rows.append(
                [
                    setting_label(row, swept),
                    f"{figure['label']} ({figure['unit']})",
                    *(app_cell(figure, app) for app in APPS),
                    ratio_cell(figure),
                    figure["words"],
                ]
            )
    return rows


def headline_section(env: dict[str, Any], data: dict[str, Any]) -> list[str]:
    names, swept = env["names"], workers_swept(data)
    header = ["scenario", *(HEADLINE[name][0] for name in HEADLINE)]
    rows = [
        [setting_label(row, swept), *(row["figures"][name]["words"] for name in HEADLINE)]
        for row in data["headline"]
    ]
    return [
        f"## {names['fastapi']} against {names['flask']}",
        "",
        *md_table(header, rows),
        "",
        repeats_sentence(env),
        "",
        *([f"Database: {database_said(env)}.", ""] if database_said(env) else []),
        "Each cell says where the 95% confidence interval of the ratio"
        f" {names['fastapi']}/{names['flask']} lies: a difference where it excludes 1,"
        " equivalence where it lies wholly within ±5% (a smaller difference is no finding,"
        " even where the interval shows one), and otherwise inconclusive, with about how many"
        " more repeats would decide it.",
        "",
        *instructions_section(env, data),
        "## Each app's figures",
        "",
        "Geometric means across the repeats, each with its 95% confidence interval (a"
        " t-interval on the logarithms); the ratio is the geometric mean of the per-repeat"
        " ratios, paired by repeat, with its own.",
        "",
        *md_table(
            ["scenario", "figure", names["flask"], names["fastapi"], "ratio [95% CI]", "reading"],
            detail_rows(data, swept),
        ),
        "",
        *(f"- {HEADLINE[name][0]}: {meaning}." for name, meaning in MEANINGS.items()),
    ]


def instructions_section(env: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The framework-only instructions per request of both styles, beside the estimates."""
    lines = [style_sentence(env), ""]
    found = data.get("instructions")
    if not found or not found["rows"]:
        return [
            *lines,
            "No framework-only instruction counts for these scenarios and targets: run"
            " `benchmarks/instructions.py --json docs/instructions.json` to count them.",
            "",
        ]
    names = env["names"]
    header = ["scenario", "target"]
    header += [f"{APP_NAMES[f]} {style}" for f in FRAMEWORKS for style in (*STYLES, "project")]
    header += [f"FastAPI/Flask, {style}" for style in STYLES]
    header.append(f"{names['fastapi']}/{names['flask']}, these apps")
    rows = []
    for row in found["rows"]:
        cells = [row["scenario"], row["target"]]
        cells += [number(row[f][key]) for f in FRAMEWORKS for key in (*STYLES, "project")]
        cells += [f"{row['fastapi'][style] / row['flask'][style]:.2f}" for style in STYLES]
        cells.append(f"{row['apps']['fastapi'] / row['apps']['flask']:.2f}")
        rows.append(cells)
    versions = ", ".join(f"{APP_NAMES[f]} {v}" for f, v in found["versions"].items())
    return [
        *lines,
        "Framework-only instructions per request, beside the estimates: each app's own"
        " callable in-process under valgrind's callgrind, with no server"
        f" ({found['source']}, by benchmarks/instructions.py; Python {found['python']},"
        f" {versions}). No load moves them; they leave out the server, the kernel, waiting"
        ' and what an instruction costs (cache misses). "project" is this project\'s app'
        " of the framework (typed, with its parity layer). They tell the interface's effect"
        " (WSGI or ASGI, at equal style) from the style's.",
        "",
        *md_table(header, rows),
        "",
    ]
