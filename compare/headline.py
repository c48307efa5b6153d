"""report.md's answer, first: one row per scenario with the words of each headline
figure, the framework-only instruction counts beside them, and each app's estimates (the
rows the terminal table prints too)."""

from __future__ import annotations

from typing import Any

from compare import whole_counts
from compare.cells import app_cell, difference_cell, md_table, ratio_cell
from compare.figures import HEADLINE, setting_label, workers_swept
from compare.instructions import STYLES
from compare.numbers import number
from compare.plan import APP_NAMES, FRAMEWORKS
from compare.sentences import (
    database_said,
    margins_sentence,
    multiplicity_sentence,
    reading_sentence,
    repeats_sentence,
    style_sentence,
)
from compare.targets import APPS

SERVER_NAMES = {"granian": "granian", "unit": "NGINX Unit"}

# What each headline figure means, for the reader of report.md.
MEANINGS = {
    "cpu_ms_per_request": "the slope of the app's CPU (workers and server, and the database"
    " where it runs beside them, less the observer's own) against the requests it served,"
    " fitted over its open-loop runs at the same fixed rates for both apps: what one more"
    " request costs",
    "idle_cpu_percent": "the app's CPU with no request at all (its event loop, threads and"
    " server), in % of one core: its idle run, one per launch (so the same in every"
    " scenario's row), which nothing watches: no /status poll in it, its CPU read from outside"
    " the apps by the kernel's CPU clock of each process, the sampler's own work subtracted;"
    " tested on the difference, as a ratio of two near-zero figures says little",
    "capacity_rps": "the most requests per second of its closed-loop saturation runs (each"
    " connection sends its next request when answered)",
    "p99_ms_at_half": "the 99th percentile latency at the fixed rate nearest half of the lower"
    " capacity, open loop: timed from each request's due time",
    "pss_mb": "the highest proportional set size during the scenario: the whole app's"
    " (workers and the server's processes of this app alone) where /status gives it, else"
    " its workers'",
}


def detail_header(names: dict[str, str]) -> list[str]:
    return [
        "scenario",
        "figure",
        names["flask"],
        names["fastapi"],
        "ratio [95% CI]",
        "difference [95% CI]",
        "reading",
    ]


def detail_rows(data: dict[str, Any], swept: bool) -> list[list[str]]:
    """Per setting and headline figure: each app's mean [95% CI], the ratio and the
    difference, the words."""
    rows = []
    for row in data["headline"]:
        for figure in row["figures"].values():
            rows.append(
                [
                    setting_label(row, swept),
                    f"{figure['label']} ({figure['unit']})",
                    *(app_cell(figure, app) for app in APPS),
                    ratio_cell(figure),
                    difference_cell(figure),
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
        *whole_section(env, data),
        f"## {names['fastapi']} against {names['flask']}, measured with a wall clock"
        + (": the confirmation" if data.get("whole_request") else ""),
        "",
        *md_table(header, rows),
        "",
        repeats_sentence(env),
        "",
        *([f"Database: {database_said(env)}.", ""] if database_said(env) else []),
        reading_sentence(names),
        "",
        margins_sentence(data),
        "",
        *([multiplicity_sentence(data), ""] if multiplicity_sentence(data) else []),
        *instructions_section(env, data),
        "## Each app's figures",
        "",
        "Geometric means across the launches, each with its 95% confidence interval (a"
        " t-interval on the logarithms); the ratio is the geometric mean of the per-launch"
        " ratios, paired by launch, with its own, and the difference the mean of the"
        " per-launch differences, with its own.",
        "",
        *md_table(detail_header(names), detail_rows(data, swept)),
        "",
        *(f"- {HEADLINE[name][0]}: {meaning}." for name, meaning in MEANINGS.items()),
    ]


def whole_section(env: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The whole request in instructions, under both servers, first: the CPU figure that
    no load moves; and whether this run's wall-clock CPU per request agrees with it."""
    found = data.get("whole_request")
    if env.get("same_app"):
        return []  # an A/A comparison: no framework against another to count
    title = ["## FastAPI against Flask: the whole request, in instructions", ""]
    if not found or not found["rows"]:
        return [
            *title,
            "No whole-request instruction counts at these targets and style: run"
            " `benchmarks/whole_request.py --json docs/whole-request.json` to count them.",
            "",
        ]
    header, rows = whole_table(found)
    versions = ", ".join(
        f"{SERVER_NAMES.get(k, APP_NAMES.get(k))} {v}" for k, v in found["versions"].items()
    )
    lines = [
        *title,
        "Instructions per request of the whole serving stack: every process of the server"
        " (granian's master and workers; Unit's main, controller, router, prototypes and"
        " applications) under valgrind's callgrind, from the request's first byte to its"
        " answer's last, one request at a time on a keep-alive connection, counted with"
        " every core kept busy so that no other load moves them"
        f" ({found['source']}, by benchmarks/whole_request.py; Python {found['python']},"
        f" {versions}). In brackets, the ratio counted with the machine to itself, where it"
        " differs. They leave out the kernel (system calls are one instruction each), cache"
        " misses and stalls, and the scheduler: the wall clock below counts those.",
        "",
        *md_table(header, rows),
        "",
    ]
    said = agreements(env, data, found)
    return [*lines, *(["Against this run's wall clock:", "", *said, ""] if said else [])]


def whole_table(found: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The whole-request counts under each server that has some: each app's, contended,
    and the ratio."""
    servers = [s for s in whole_counts.SERVERS if any(s in r["servers"] for r in found["rows"])]
    header = ["scenario", "target"]
    for server in servers:
        header += [f"{SERVER_NAMES[server]}: Flask", "FastAPI", "FastAPI/Flask"]
    rows = []
    for row in found["rows"]:
        cells = [row["scenario"], row["target"]]
        for server in servers:
            conditions = row["servers"].get(server, {})
            if "contended" not in conditions:
                cells += ["-", "-", "-"]
                continue
            cells += [number(conditions["contended"][app]) for app in FRAMEWORKS]
            cells.append(ratio_words(conditions))
        rows.append(cells)
    return header, rows


def ratio_words(conditions: dict[str, dict[str, float]]) -> str:
    """The contended ratio, and the alone one in brackets where it differs."""
    contended = whole_counts.ratio(conditions["contended"])
    words = f"{contended:.2f}"
    if "alone" in conditions:
        alone = whole_counts.ratio(conditions["alone"])
        if f"{alone:.2f}" != words:
            words += f" ({alone:.2f} alone)"
    return words


def agreements(env: dict[str, Any], data: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """A line per scenario: whether its CPU-per-request interval holds the instruction ratio
    of this run's server."""
    server = whole_counts.server_of(env["apps"]["flask"]["server"])
    counted = {
        row["scenario"]: whole_counts.ratio(row["servers"][server]["contended"])
        for row in found["rows"]
        if "contended" in row["servers"].get(server, {})
    }
    database = env["apps"]["flask"].get("database") or {}
    return [
        "- "
        + whole_counts.agreement(
            scenario,
            row["figures"]["cpu_ms_per_request"],
            counted[scenario],
            bool(database.get("counted")),
        )
        for row in data["headline"]
        if (scenario := row["scenario"]) in counted and "cpu_ms_per_request" in row["figures"]
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
