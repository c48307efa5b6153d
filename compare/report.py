"""The comparison's outputs: the terminal table, report.json, report.md and the PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # the object API: files only, no GUI backend
from rich.console import Console
from rich.table import Table

from compare.run import Level, Run
from compare.targets import APPS, NAMES

COLORS = {"flask": "#1f77b4", "fastapi": "#2ca02c"}
BAR_CHARTS = [
    ("requests_per_s", "requests per second (median, min-max)", "req/s"),
    ("pss_mb_peak", "peak PSS of the workers (median, min-max)", "MiB"),
]
# A sweep chart's panels: (figure, title, unit).
SWEEP_PANELS = [
    ("requests_per_s", "req/s", "req/s"),
    ("latency_p99_ms", "p99 latency", "ms"),
    ("total_cpu_s_per_1k", "CPU-s per 1k req, total", "CPU-s"),
]
# The levels a sweep may run over, as Level fields.
SWEEPS = {
    "connections": "connections",
    "workers": "workers per app",
    "rate": "req/s asked",
    "pool_size": "database connections per worker",
}
HEADER = ["scenario", "workers", "load", "figure", "Flask", "FastAPI", "FastAPI/Flask", "verdict"]


def level_label(level: Level | dict[str, Any]) -> str:
    """How a level's load reads: "c=32", or "500/s (<=32 conns)" at a fixed rate."""
    level = level if isinstance(level, dict) else level.model_dump()
    pool = f" pool={level['pool_size']}" if level.get("pool_size") else ""
    if level["rate"]:
        return f"{level['rate']:g}/s (<={level['connections']} conns){pool}"
    return f"c={level['connections']}{pool}"


def cell(spread: dict[str, Any] | None) -> str:
    if spread is None:
        return "-"
    if spread["n"] == 1:
        return f"{spread['median']:.4g}"
    return f"{spread['median']:.4g} [{spread['min']:.4g}, {spread['max']:.4g}]"


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            row["scenario"],
            str(row["workers"]),
            level_label(row),
            row["label"],
            cell(row["flask"]),
            cell(row["fastapi"]),
            "-" if row["ratio_fastapi_flask"] is None else f"{row['ratio_fastapi_flask']:.2f}",
            row["verdict"],
        ]
        for row in rows
    ]


def notes(env: dict[str, Any], runs: list[Run]) -> list[str]:
    """What the reader must know to trust the table: setup, and runs that do not count."""
    apps = env["apps"]
    lines = [
        f"servers: Flask on {apps['flask']['server']} ({apps['flask']['workers']} worker(s)),"
        f" FastAPI on {apps['fastapi']['server']} ({apps['fastapi']['workers']} worker(s));"
        f" load: {env['load_tool']}; pinning: {env['pinning']}"
    ]
    if env["pinning"].startswith("shared"):
        lines.append("the load tool and the apps shared cores: latency and req/s then measure both")
    said = database_said(
        apps["flask"].get("database"), apps["fastapi"].get("database"), env["settings"]
    )
    if said:
        lines.append(said)
    for flag, what in [
        ("workers_changed", "saw a worker replaced, and are left out of the verdicts"),
        ("rate_missed", "missed the asked rate by more than 2%, and are left out of the verdicts"),
        ("tool_bound", "kept the load tool >= 90% busy (or late): no req/s or latency verdict"),
    ]:
        flagged = [r for r in runs if getattr(r, flag)]
        if flagged:
            lines.append(f"{len(flagged)} of {len(runs)} runs {what}")
    return lines


def print_table(
    console: Console, env: dict[str, Any], rows: list[dict[str, Any]], runs: list[Run]
) -> None:
    table = Table(title="Flask vs FastAPI: medians over repeats [min, max]")
    for name in HEADER:
        table.add_column(name, justify="right" if name in ("Flask", "FastAPI") else "left")
    previous = None
    for values in table_rows(rows):
        if previous is not None and values[:3] != previous:
            table.add_section()
        previous = values[:3]
        table.add_row(*values)
    console.print(table)
    for line in notes(env, runs):
        console.print(line)


def database_said(
    flask: dict[str, Any] | None, fastapi: dict[str, Any] | None, settings: dict[str, Any]
) -> str:
    """The database the apps used, their pools, and whether its cost is counted: "" for none."""
    if not flask or not fastapi:
        return ""
    pools = []
    swept = len(settings.get("pool_sizes") or []) > 1
    for app, found in (("flask", flask), ("fastapi", fastapi)):
        size, split = found["pool_size"], found["pools"]
        if swept:  # each level's pool=, split alike
            each = f" split over {split} pools, one per event loop" if split > 1 else ""
            pools.append(f"{NAMES[app]} each level's pool= per worker{each}")
            continue
        each = f" ({split} pools of {size // split}, one per event loop)" if split > 1 else ""
        pools.append(f"{NAMES[app]} {size} per worker{each}")
    if not (flask["counted"] and fastapi["counted"]):
        return (
            f"database: DATABASE_URL's PostgreSQL, whose cost is not counted (CPU and memory"
            f" are the apps' and the server's only); connections: {', '.join(pools)}"
        )
    return (
        "database: PostgreSQL started beside the apps and shared by both, its CPU (the"
        " postmaster and its children) counted in the total: it is the loaded app's because"
        f" the runner loads one app at a time; connections: {', '.join(pools)}"
    )


def limits(cgroup: dict[str, Any] | None) -> str:
    if cgroup is None:
        return "no cgroup found"
    memory, cpu = cgroup["memory_limit_mb"], cgroup["cpu_quota_cores"]
    return (
        f"memory {'unlimited' if memory is None else f'{memory:.0f} MiB'},"
        f" CPU {'unlimited' if cpu is None else f'{cpu:g} cores'} (cgroup v{cgroup['version']})"
    )


def markdown(
    env: dict[str, Any], rows: list[dict[str, Any]], runs: list[Run], charts: list[Path]
) -> str:
    lines = [
        "# Flask vs FastAPI",
        "",
        f"Measured on {env['date']} by `./compare.sh`. Figures vary by machine and by run;"
        " compare the two apps within one report, not across reports.",
        "",
        "## Results",
        "",
        "Medians over the repeats, with [min, max]. A verdict is given only where"
        " the runs of the two apps do not overlap and their medians differ by 5% or more."
        " CPU-s per 1k counts the app's workers, the server's own processes (granian's"
        " master; Unit's main, controller, router and the app's prototype), the database's"
        " where it runs beside the apps (PostgreSQL's postmaster and its children), and all"
        " of them.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(values) + " |" for values in table_rows(rows)]
    lines += ["", *[f"- {line}" for line in notes(env, runs)], "", "## Charts", ""]
    lines += [f"![{chart.stem}]({chart.name})" for chart in charts]
    machine, apps, settings = env["machine"], env["apps"], env["settings"]
    lines += [
        "",
        "## Environment",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} cores,"
        f" {machine['memory_total_mb']} MiB; {machine['platform']}; load average at start"
        f" {machine['load_average_at_start']}",
        f"- Flask {apps['flask']['framework_version']} on Python"
        f" {apps['flask']['python_version']} and FastAPI {apps['fastapi']['framework_version']}"
        f" on Python {apps['fastapi']['python_version']}, served by {apps['flask']['server']} and"
        f" {apps['fastapi']['server']}",
        f"- Server processes: {', '.join(apps['flask']['server_processes']) or 'none'}",
        f"- Limits: {limits(apps['flask']['cgroup'])}",
        f"- Load tool: {env['load_tool']}; pinning: {env['pinning']}",
        f"- Scenarios: {settings['scenarios']}; workers {settings['workers']}; connections"
        f" {settings['connections']}; rate {settings['rate'] or 'as fast as answered'};"
        f" {settings['duration_s']} s per run after {settings['warmup_s']} s of warm-up;"
        f" {settings['repeats']} repeats; /status polled every {settings['poll_s']} s",
        f"- The runner itself used {env['runner_cpu_s']} CPU-s over {env['wall_s']} s",
        f"- Command: `{' '.join(env['command'])}`",
    ]
    if env["launched_with"]:
        lines.append(f"- Apps launched with: `{' '.join(env['launched_with'])}`")
    lines += ["", "Every run, with its exact load command, is in `report.json`.", ""]
    return "\n".join(lines)


def _labels(picked: list[dict[str, Any]]) -> list[str]:
    return [f"{row['scenario']}\nw={row['workers']} {level_label(row)}" for row in picked]


def _bars(ax, picked: list[dict[str, Any]], app: str, offset: float, width: float, **style):
    spreads = [row[app] for row in picked]
    medians = [s["median"] if s else 0 for s in spreads]
    errors = [
        [s["median"] - s["min"] if s else 0 for s in spreads],
        [s["max"] - s["median"] if s else 0 for s in spreads],
    ]
    positions = [i + offset for i in range(len(picked))]
    return ax.bar(positions, medians, width, yerr=errors, capsize=3, **style)


def bar_chart(path: Path, rows: list[dict[str, Any]], name: str, title: str, unit: str) -> None:
    picked = [row for row in rows if row["figure"] == name]
    width = 0.38
    fig = Figure(figsize=(max(6, 1.6 * len(picked)), 4))
    ax = fig.subplots()
    for offset, app in ((-width / 2, "flask"), (width / 2, "fastapi")):
        _bars(ax, picked, app, offset, width, color=COLORS[app], label=NAMES[app])
    ax.set_xticks(range(len(picked)), _labels(picked))
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def cpu_chart(path: Path, rows: list[dict[str, Any]]) -> None:
    """CPU-s per 1k requests: the app's workers, with the server's own processes on top."""
    app_rows = [row for row in rows if row["figure"] == "cpu_s_per_1k"]
    server_rows = [row for row in rows if row["figure"] == "server_cpu_s_per_1k"]
    width = 0.38
    fig = Figure(figsize=(max(6, 1.6 * len(app_rows)), 4))
    ax = fig.subplots()
    for offset, app in ((-width / 2, "flask"), (width / 2, "fastapi")):
        bars = _bars(ax, app_rows, app, offset, width, color=COLORS[app], label=NAMES[app])
        bottoms = [bar.get_height() for bar in bars]
        servers = [row[app]["median"] if row[app] else 0 for row in server_rows]
        ax.bar(
            [i + offset for i in range(len(server_rows))],
            servers,
            width,
            bottom=bottoms,
            color="white",
            edgecolor=COLORS[app],
            hatch="//",
            label=f"{NAMES[app]}'s server",
        )
    ax.set_xticks(range(len(app_rows)), _labels(app_rows))
    ax.set_ylabel("CPU-s")
    ax.set_title("CPU-s per 1,000 requests: workers, and server hatched above")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def swept(rows: list[dict[str, Any]]) -> list[str]:
    """The level fields that take more than one value: each gets a sweep chart."""
    return [key for key in SWEEPS if len({row[key] for row in rows}) > 1]


def sweep_chart(path: Path, rows: list[dict[str, Any]], axis: str) -> None:
    """Each scenario's req/s, p99 and CPU-s per 1k against the swept level, a line per app.

    The other level fields stay at their first value.
    """
    fixed = {key: rows[0][key] for key in SWEEPS if key != axis}
    picked = [row for row in rows if all(row[key] == value for key, value in fixed.items())]
    scenarios = list(dict.fromkeys(row["scenario"] for row in picked))
    fig = Figure(figsize=(4.2 * len(SWEEP_PANELS), 3.2 * len(scenarios)))
    axes = fig.subplots(len(scenarios), len(SWEEP_PANELS), squeeze=False)
    for line, scenario in zip(axes, scenarios, strict=True):
        for ax, (name, title, unit) in zip(line, SWEEP_PANELS, strict=True):
            points = [r for r in picked if r["scenario"] == scenario and r["figure"] == name]
            points.sort(key=lambda r: r[axis])
            for app in APPS:
                known = [r for r in points if r[app]]
                ax.errorbar(
                    [r[axis] for r in known],
                    [r[app]["median"] for r in known],
                    yerr=[
                        [r[app]["median"] - r[app]["min"] for r in known],
                        [r[app]["max"] - r[app]["median"] for r in known],
                    ],
                    marker="o",
                    capsize=3,
                    color=COLORS[app],
                    label=NAMES[app],
                )
            if axis != "workers":
                ax.set_xscale("log", base=2)
            ax.set_xticks([r[axis] for r in points], [f"{r[axis]:g}" for r in points])
            ax.set_title(f"{scenario}: {title}")
            ax.set_xlabel(SWEEPS[axis])
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
    axes[0][0].legend()
    fixed_text = ", ".join(f"{key} {value}" for key, value in fixed.items() if value)
    fig.suptitle(f"sweep over {SWEEPS[axis]} ({fixed_text}); medians, min-max")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def timeline_chart(path: Path, runs: list[Run]) -> None:
    fig = Figure(figsize=(10, 6))
    cpu_ax, pss_ax = fig.subplots(2, 1, sharex=True)
    for app in APPS:
        polls = [p for run in runs if run.app == app for p in run.polls]
        cpu = [(p.t_s, p.cpu_percent) for p in polls if p.cpu_percent is not None]
        cpu_ax.plot(
            [t for t, _ in cpu], [c for _, c in cpu], ".", color=COLORS[app], label=NAMES[app]
        )
        pss = [(p.t_s, p.pss_mb) for p in polls if p.pss_mb is not None]
        pss_ax.plot([t for t, _ in pss], [m for _, m in pss], ".", color=COLORS[app])
    bound = max((run.cores_usable for run in runs), default=1) * 100
    cpu_ax.axhline(bound, color="grey", linestyle=":", label="the cores the apps may use")
    cpu_ax.set_ylabel("workers' CPU %")
    cpu_ax.set_title("CPU and PSS of each app during its runs (polls of /status)")
    cpu_ax.legend()
    pss_ax.set_ylabel("PSS MiB")
    pss_ax.set_xlabel("seconds since the comparison started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(
    out: Path, env: dict[str, Any], runs: list[Run], rows: list[dict[str, Any]]
) -> list[Path]:
    """report.json, the charts and report.md in `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"environment": env, "summary": rows, "runs": [run.model_dump() for run in runs]}
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    charts = []
    for name, title, unit in BAR_CHARTS:
        charts.append(out / f"{name}.png")
        bar_chart(charts[-1], rows, name, title, unit)
    charts.append(out / "cpu_s_per_1k.png")
    cpu_chart(charts[-1], rows)
    for axis in swept(rows):
        charts.append(out / f"sweep_{axis}.png")
        sweep_chart(charts[-1], rows, axis)
    charts.append(out / "timeline.png")
    timeline_chart(charts[-1], runs)
    (out / "report.md").write_text(markdown(env, rows, runs, charts))
    return [out / "report.json", out / "report.md", *charts]
