"""The comparison's outputs: the terminal table, report.json and report.md (charts.py draws
the PNGs). report.md opens with its answer, one row per scenario; the detail follows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from compare import charts
from compare.figures import (
    HEADLINE,
    Setting,
    capacity_rows,
    cost_lines,
    latency_rows,
    per_repeat,
    setting_label,
)
from compare.instructions import COMMITTED, STYLES
from compare.loadtools import LoadResult
from compare.numbers import interval, number
from compare.plan import APP_NAMES, FRAMEWORKS
from compare.run import Run
from compare.statistics import estimate
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


def assemble(
    runs: list[Run],
    scenarios: list[str],
    names: dict[str, str],
    floors: dict[Setting, dict[float, LoadResult]],
    instructions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """report.json's figures from the runs: the headline estimates, then the detail
    (`instructions`: framework_counts' answer, the counts of the committed file)."""
    counts = {row["scenario"]: row["apps"] for row in (instructions or {}).get("rows", [])}
    headline = []
    for setting, figures in per_repeat(runs, scenarios).items():
        headline.append(
            {
                **setting._asdict(),
                "figures": {
                    name: {
                        "label": HEADLINE[name][0],
                        "unit": HEADLINE[name][1],
                        **estimate(values, names).model_dump(),
                    }
                    for name, values in figures.items()
                },
                # This run's apps' own callables, per request, from docs/instructions.json.
                "instructions_per_request": counts.get(setting.scenario),
            }
        )
    return {
        "headline": headline,
        "instructions": instructions,
        "cost_lines": cost_lines(runs, scenarios),
        "latency": latency_rows(runs, scenarios, floors),
        "capacity": capacity_rows(runs, scenarios),
    }


def framework_counts(
    counted: dict[str, Any] | None,
    targets: dict[str, str],
    served: dict[str, tuple[str, str]],
) -> dict[str, Any] | None:
    """Per scenario, the framework-only instructions per request of both frameworks in both
    styles and of the project's apps, from the committed counts, and of this run's apps
    (served: each port's app's framework and its count's key: plain, typed or project);
    only where they were counted at this run's target. None without counts."""
    if not counted:
        return None
    rows = []
    for scenario, target in targets.items():
        found = counted["scenarios"].get(scenario)
        if not found or found["target"] != target:
            continue
        apps = {app: found[framework][key] for app, (framework, key) in served.items()}
        frameworks = {name: found[name] for name in FRAMEWORKS}
        rows.append({"scenario": scenario, "target": target, **frameworks, "apps": apps})
    return {
        "source": str(COMMITTED.relative_to(COMMITTED.parent.parent)),
        "python": counted["python"],
        "versions": counted["versions"],
        "rows": rows,
    }


def app_cell(figure: dict[str, Any], app: str) -> str:
    found = figure["apps"][app]
    return "-" if found is None else interval(found["value"], found["low"], found["high"])


def ratio_cell(figure: dict[str, Any]) -> str:
    ratio = figure["ratio"]
    return "-" if ratio is None else interval(ratio["value"], ratio["low"], ratio["high"])


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


def workers_swept(data: dict[str, Any]) -> bool:
    return len({row["workers"] for row in data["headline"]}) > 1


def repeats_sentence(env: dict[str, Any]) -> str:
    """What the intervals cover: independent launches, or rounds within one."""
    count = env["repeats"]["count"]
    if env["repeats"]["launches"]:
        return (
            f"Each of the {count} repeats was a launch of both apps of its own, the apps"
            " swapping their places (ports, and which server starts first) in every second"
            " launch; each interval is a 95% confidence interval across those launches (the"
            " ratio's: paired by launch, a t-interval on the logarithms of the per-launch"
            " ratios)."
        )
    return (
        f"Launches were not repeated: the apps were already running, so all {count} repeats"
        " ran against the same launch. The intervals cover run-to-run noise within that"
        " launch only, not the variation from one launch of the apps to the next, which is"
        " often larger: they are too narrow for a claim about the frameworks; ./compare.sh"
        " --launch repeats the launches."
    )


def print_table(console: Console, env: dict[str, Any], data: dict[str, Any]) -> None:
    names = env["names"]
    swept = workers_swept(data)
    table = Table(title=f"{names['fastapi']} against {names['flask']}: geometric means [95% CI]")
    header = ["scenario", "figure", names["flask"], names["fastapi"], "ratio [95% CI]", "reading"]
    for name in header:
        table.add_column(name, justify="right" if name in names.values() else "left")
    previous = None
    for values in detail_rows(data, swept):
        if previous is not None and values[0] != previous:
            table.add_section()
        previous = values[0]
        table.add_row(*values)
    console.print(table)
    console.print(repeats_sentence(env))
    console.print(style_sentence(env))
    said = database_said(env)
    if said:
        console.print(f"database: {said}")
    for line in env["notes"]:
        console.print(line)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def spread_cell(spread: dict[str, Any] | None) -> str:
    """The median across repeats [min-max]."""
    if spread is None:
        return "-"
    if spread["n"] == 1:
        return number(spread["median"])
    return interval(spread["median"], spread["min"], spread["max"])


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


def style_sentence(env: dict[str, Any]) -> str:
    """Which apps were compared, and each one's response style."""
    apps = env["apps"]
    said = ", ".join(
        f"{env['names'][app]} {apps[app]['style']} ({apps[app]['file']})" for app in APPS
    )
    return (
        f"Response style: {said}. Plain apps return dicts; typed ones build pydantic models"
        " and serialise them the framework's way (Flask: model_dump(); FastAPI: the return"
        " annotation). Flask's documentation teaches the plain style, FastAPI's the typed."
    )


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


def cost_section(env: dict[str, Any], data: dict[str, Any], pictures: list[Path]) -> list[str]:
    names, swept = env["names"], workers_swept(data)
    rows = []
    for line in data["cost_lines"]:
        fit = line["line"]
        rows.append(
            [
                setting_label(line, swept),
                names[line["app"]],
                str(line["repeat"]),
                "-" if fit is None else number(fit["cpu_s_per_request"] * 1000),
                "-" if fit is None else number(fit["intercept_cores"] * 100),
                number(line["idle_percent"]),
                "-" if fit is None else f"{fit['r_squared']:.3f}",
                "-" if fit is None else str(fit["points"]),
            ]
        )
    per_rate = []
    for row in data["latency"]:
        cells = [setting_label(row, swept), number(row["rate"])]
        cells += [spread_cell(row["apps"][app]["cpu_ms_per_request"]) for app in APPS]
        cells += [spread_cell(row["apps"][app]["cpu_percent"]) for app in APPS]
        per_rate.append(cells)
    return [
        "## The cost of a request",
        "",
        "Each app's CPU against the requests it served, per repeat: a straight line through"
        " its open-loop runs. The slope is the CPU one more request costs. The line meets zero"
        " load (its intercept) well above the idle run: at low rates each request costs more"
        " (a wake-up each), so CPU is no straight line down to idle, and the idle run, not"
        " the intercept, is the idle cost.",
        "",
        *md_table(
            [
                "scenario",
                "app",
                "repeat",
                "CPU ms per request",
                "intercept, % of a core",
                "idle, % of a core",
                "r²",
                "runs",
            ],
            rows,
        ),
        "",
        "At each rate, all of the app's CPU over the requests it served (the median across"
        " repeats [min-max]): what a request costs there, wake-ups and idle work included.",
        "",
        *md_table(
            [
                "scenario",
                "rate/s",
                *(f"{names[app]} CPU ms per request" for app in APPS),
                *(f"{names[app]} CPU % of a core" for app in APPS),
            ],
            per_rate,
        ),
        "",
        observer_sentence(env),
        "",
        *(f"![{p.stem}]({p.name})" for p in pictures if p.name.startswith("cpu_")),
    ]


def observer_sentence(env: dict[str, Any]) -> str:
    observer = env["observer"]
    if observer["loaded_max_share"] is None:
        return (
            "These apps do not report the CPU their own /status polls and sampler take: it is"
            f" in every figure (one poll every {env['settings']['poll_s']:g} s adds to the idle"
            " cost, not to the CPU per request)."
        )
    return (
        "The observer's own CPU (the /status polls and the sampler, as the apps report it)"
        " is subtracted from every run's CPU: it was"
        f" {observer['idle_median_share']:.0%} of an idle app's CPU (median), and at most"
        f" {observer['loaded_max_share']:.1%} of a loaded app's."
    )


def latency_section(env: dict[str, Any], data: dict[str, Any], pictures: list[Path]) -> list[str]:
    names, swept = env["names"], workers_swept(data)
    header = ["scenario", "rate/s"]
    for app in APPS:
        header += [f"{names[app]} p50", "p99", "p99.9", "missed"]
    header += ["floor p50", "p99", "p99.9"]
    rows = []
    for row in data["latency"]:
        cells = [setting_label(row, swept), number(row["rate"])]
        for app in APPS:
            figures = row["apps"][app]
            cells += [spread_cell(figures[p]) for p in ("p50", "p99", "p99.9")]
            cells.append(str(figures["missed"]) if figures["missed"] else "")
        floor = row["floor"] or {}
        cells += [number(floor.get(p)) for p in ("p50", "p99", "p99.9")]
        rows.append(cells)
    arrivals = env["settings"]["arrivals"]
    return [
        f"## Latency against load (open loop, {arrivals} arrivals)",
        "",
        "Milliseconds, the median across repeats [min-max], each request timed from its due"
        ' time; a request without an answer counts as its timeout. "missed" counts the runs'
        " in which the app answered under 98% of the scheduled rate: their figures are in the"
        " table, never left out. The floor is openloop's own latency at that rate against a"
        " trivial server on the apps' cores: no app can show less.",
        "",
        *md_table(header, rows),
        "",
        *(f"![{p.stem}]({p.name})" for p in pictures if p.name.startswith("latency_")),
    ]


def capacity_section(env: dict[str, Any], data: dict[str, Any]) -> list[str]:
    names, swept = env["names"], workers_swept(data)
    header = [
        "scenario",
        "connections",
        "app",
        "req/s",
        "busy %",
        "CPU ms per request",
        "= busy cores / req/s",
        "p50 ms",
        "= connections / req/s",
        "p99 ms",
    ]
    rows = []
    for row in data["capacity"]:
        for app in APPS:
            figures = row["apps"][app]
            rows.append(
                [
                    setting_label(row, swept),
                    str(row["connections"]),
                    names[app],
                    *(
                        spread_cell(figures[name])
                        for name in (
                            "requests_per_s",
                            "busy_percent",
                            "cpu_ms_per_request",
                            "cpu_ms_per_request_from_throughput",
                            "p50_ms",
                            "p50_ms_from_throughput",
                            "p99_ms",
                        )
                    ),
                ]
            )
    return [
        "## Capacity (closed loop)",
        "",
        f"Each connection of {env['load_tool']} sends its next request when the last is"
        " answered, as fast as the app answers. Its req/s is the capacity above. Where the"
        " app's core is saturated (busy near 100% of what it may use) the other figures"
        " follow from the req/s and are no findings of their own: the CPU per request is the"
        " busy cores over the req/s, and p50 about the connections over the req/s (Little's"
        " law); the columns marked = show those. Closed-loop latency is the queue the"
        " connections make, not the app's latency at a load (see above for that).",
        "",
        *md_table(header, rows),
    ]


def environment_section(env: dict[str, Any]) -> list[str]:
    machine, apps, settings = env["machine"], env["apps"], env["settings"]
    lines = [
        "## Environment",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} cores,"
        f" {machine['memory_total_mb']:,} MiB; {machine['platform']}; load average at start"
        f" {machine['load_average_at_start']}",
    ]
    for app in APPS:
        lines.append(
            f"- {env['names'][app]}: {apps[app]['framework']} {apps[app]['framework_version']}"
            f" on Python {apps[app]['python_version']}, served by {apps[app]['server']}"
            f" ({apps[app]['workers']} worker(s); server processes:"
            f" {', '.join(apps[app]['server_processes']) or 'none'})"
        )
    said = database_said(env)
    lines += [
        f"- Limits: {limits(apps['flask']['cgroup'])}",
        *([f"- Database: {said}"] if said else []),
        f"- Load: {env['load_tool']} (closed loop), {env['open_loop_tool']} (open loop,"
        f" {settings['arrivals']} arrivals, seed {env['seed']}); pinning: {env['pinning']}",
        f"- Scenarios: {settings['scenarios']}; workers {settings['workers']}; connections"
        f" {settings['connections']}; {settings['duration_s']} s per run after"
        f" {settings['warmup_s']} s of warm-up per scenario; {settings['repeats']} repeats;"
        f" /status polled every {settings['poll_s']} s",
        f"- The runner itself used {number(env['runner_cpu_s'])} CPU-s over"
        f" {number(env['wall_s'])} s",
        f"- Command: `{' '.join(env['command'])}`",
    ]
    if env["launched_with"]:
        lines.append(f"- Apps launched with: `{' '.join(env['launched_with'])}`")
    return lines


def database_said(env: dict[str, Any]) -> str:
    """The database the apps used, their pools, and whether its cost is counted: "" for none."""
    flask, fastapi = (env["apps"][app].get("database") for app in APPS)
    if not flask or not fastapi:
        return ""
    pools = []
    swept = len(env["settings"].get("pool_sizes") or []) > 1
    for app, found in (("flask", flask), ("fastapi", fastapi)):
        size, split = found["pool_size"], found["pools"]
        name = env["names"][app]
        if swept:  # each launch's pool size, split alike
            each = f" split over {split} pools, one per event loop" if split > 1 else ""
            pools.append(f"{name} each row's pool= per worker{each}")
            continue
        each = f" ({split} pools of {size // split}, one per event loop)" if split > 1 else ""
        pools.append(f"{name} {size} per worker{each}")
    if not (flask["counted"] and fastapi["counted"]):
        return (
            "DATABASE_URL's PostgreSQL, whose cost is not counted (CPU and memory are the"
            f" apps' and the server's only); connections: {', '.join(pools)}"
        )
    return (
        "PostgreSQL started beside the apps and shared by both, its CPU (the postmaster and"
        " its children) counted in each app's total, in the cost line and the headline: it is"
        " the loaded app's because the runner loads one app at a time (its idle CPU is in"
        f" each idle run); connections: {', '.join(pools)}"
    )


def limits(cgroup: dict[str, Any] | None) -> str:
    if cgroup is None:
        return "no cgroup found"
    memory, cpu = cgroup["memory_limit_mb"], cgroup["cpu_quota_cores"]
    return (
        f"memory {'unlimited' if memory is None else f'{memory:,.0f} MiB'},"
        f" CPU {'unlimited' if cpu is None else f'{cpu:g} cores'} (cgroup v{cgroup['version']})"
    )


def markdown(env: dict[str, Any], data: dict[str, Any], pictures: list[Path]) -> str:
    names = env["names"]
    lines = [
        f"# {names['flask']} vs {names['fastapi']}",
        "",
        f"Measured on {env['date']} by `./compare.sh`, {env['apps']['flask']['server']},"
        f" {env['pinning']}.",
        "",
        *headline_section(env, data),
        "",
        *(f"![{p.stem}]({p.name})" for p in pictures if p.name == "estimates.png"),
        "",
        *cost_section(env, data, pictures),
        "",
        *latency_section(env, data, pictures),
        "",
        *capacity_section(env, data),
        "",
        "## Notes",
        "",
        *(f"- {line}" for line in env["notes"]),
        "",
        *(f"![{p.stem}]({p.name})" for p in pictures if p.name.startswith(("sweep_", "timeline"))),
        "",
        *environment_section(env),
        "",
        "Every run, with its exact load command, is in `report.json`.",
        "",
    ]
    return "\n".join(lines)


def write(out: Path, env: dict[str, Any], data: dict[str, Any], runs: list[Run]) -> list[Path]:
    """report.json, the charts and report.md in `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    document = {"environment": env, **data, "runs": [run.model_dump() for run in runs]}
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    pictures = charts.draw(out, env, data, runs)
    (out / "report.md").write_text(markdown(env, data, pictures))
    return [out / "report.json", out / "report.md", *pictures]
