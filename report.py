"""The comparison's outputs: the terminal table, report.json, report.md and the PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure  # the object API: files only, no GUI backend
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from compare import Run

COLORS = {"flask": "#1f77b4", "fastapi": "#2ca02c"}
NAMES = {"flask": "Flask", "fastapi": "FastAPI"}
CHARTS = [
    ("requests_per_s", "requests per second (median, min-max)", "req/s"),
    ("cpu_s_per_1k", "CPU-seconds per 1,000 requests (median, min-max)", "CPU-s"),
    ("rss_mb_peak", "peak RSS of the workers (median, min-max)", "MiB"),
]


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
            str(row["connections"]),
            row["label"],
            cell(row["flask"]),
            cell(row["fastapi"]),
            "-" if row["ratio_fastapi_flask"] is None else f"{row['ratio_fastapi_flask']:.2f}",
            row["verdict"],
        ]
        for row in rows
    ]


HEADER = ["scenario", "conns", "figure", "Flask", "FastAPI", "FastAPI/Flask", "verdict"]


def print_table(
    console: Console, env: dict[str, Any], rows: list[dict[str, Any]], runs: list[Run]
) -> None:
    table = Table(title="Flask vs FastAPI: medians over repeats [min, max]")
    for name in HEADER:
        table.add_column(name, justify="right" if name in ("Flask", "FastAPI") else "left")
    previous = None
    for values in table_rows(rows):
        if previous is not None and values[:2] != previous:
            table.add_section()
        previous = values[:2]
        table.add_row(*values)
    console.print(table)
    apps = env["apps"]
    console.print(
        f"servers: Flask on {apps['flask']['server']} ({apps['flask']['workers']} worker(s)),"
        f" FastAPI on {apps['fastapi']['server']} ({apps['fastapi']['workers']} worker(s));"
        f" load: {env['load_tool']}; pinning: {env['pinning']}"
    )
    changed = [r for r in runs if r.workers_changed]
    if changed:
        console.print(
            f"[yellow]{len(changed)} run(s) saw a worker replaced: their CPU-s are low[/]"
        )


def limits(cgroup: dict[str, Any] | None) -> str:
    if cgroup is None:
        return "no cgroup found"
    memory, cpu = cgroup["memory_limit_mb"], cgroup["cpu_quota_cores"]
    return (
        f"memory {'unlimited' if memory is None else f'{memory:.0f} MiB'},"
        f" CPU {'unlimited' if cpu is None else f'{cpu:g} cores'} (cgroup v{cgroup['version']})"
    )


def markdown(env: dict[str, Any], rows: list[dict[str, Any]], charts: list[Path]) -> str:
    lines = [
        "# Flask vs FastAPI",
        "",
        f"Measured on {env['date']} by `compare.py`. Figures vary by machine and by run;"
        " compare the two apps within one report, not across reports.",
        "",
        "## Results",
        "",
        "Medians over the repeats, with [min, max]. A verdict is given only where"
        " the runs of the two apps do not overlap.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(values) + " |" for values in table_rows(rows)]
    lines += ["", "## Charts", ""]
    lines += [f"![{chart.stem}]({chart.name})" for chart in charts]
    machine, apps, settings = env["machine"], env["apps"], env["settings"]
    lines += [
        "",
        "## Environment",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} cores,"
        f" {machine['memory_total_mb']} MiB; {machine['platform']}",
        f"- Flask {apps['flask']['framework_version']} on Python"
        f" {apps['flask']['python_version']} and FastAPI {apps['fastapi']['framework_version']}"
        f" on Python {apps['fastapi']['python_version']}, served by {apps['flask']['server']} and"
        f" {apps['fastapi']['server']}, {apps['flask']['workers']} and"
        f" {apps['fastapi']['workers']} worker(s)",
        f"- Limits: {limits(apps['flask']['cgroup'])}",
        f"- Load tool: {env['load_tool']}; pinning: {env['pinning']}",
        f"- Scenarios: {settings['scenarios']}; connections {settings['connections']};"
        f" {settings['duration_s']} s per run after {settings['warmup_s']} s of warm-up;"
        f" {settings['repeats']} repeats; /status polled every {settings['poll_s']} s",
        f"- The runner itself used {env['runner_cpu_s']} CPU-s over {env['wall_s']} s",
        f"- Command: `{' '.join(env['command'])}`",
    ]
    if env["launched_with"]:
        lines.append(f"- Apps launched with: `{' '.join(env['launched_with'])}`")
    lines += ["", "Every run, with its exact load command, is in `report.json`.", ""]
    return "\n".join(lines)


def bar_chart(path: Path, rows: list[dict[str, Any]], name: str, title: str, unit: str) -> None:
    picked = [row for row in rows if row["figure"] == name]
    labels = [f"{row['scenario']}\nc={row['connections']}" for row in picked]
    width = 0.38
    fig = Figure(figsize=(max(6, 1.6 * len(picked)), 4))
    ax = fig.subplots()
    for offset, app in ((-width / 2, "flask"), (width / 2, "fastapi")):
        spreads = [row[app] for row in picked]
        medians = [s["median"] if s else 0 for s in spreads]
        errors = [
            [s["median"] - s["min"] if s else 0 for s in spreads],
            [s["max"] - s["median"] if s else 0 for s in spreads],
        ]
        positions = [i + offset for i in range(len(picked))]
        ax.bar(
            positions, medians, width, yerr=errors, capsize=3, color=COLORS[app], label=NAMES[app]
        )
    ax.set_xticks(range(len(picked)), labels)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def timeline_chart(path: Path, runs: list[Run]) -> None:
    fig = Figure(figsize=(10, 6))
    cpu_ax, rss_ax = fig.subplots(2, 1, sharex=True)
    for app in ("flask", "fastapi"):
        polls = [p for run in runs if run.app == app for p in run.polls]
        cpu = [(p.t_s, p.cpu_percent) for p in polls if p.cpu_percent is not None]
        cpu_ax.plot(
            [t for t, _ in cpu], [c for _, c in cpu], ".", color=COLORS[app], label=NAMES[app]
        )
        rss_ax.plot([p.t_s for p in polls], [p.rss_mb for p in polls], ".", color=COLORS[app])
    cpu_ax.set_ylabel("process CPU %")
    cpu_ax.set_title("CPU and RSS of each app during its runs (polls of /status)")
    cpu_ax.legend()
    rss_ax.set_ylabel("RSS MiB")
    rss_ax.set_xlabel("seconds since the comparison started")
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
    for name, title, unit in CHARTS:
        charts.append(out / f"{name}.png")
        bar_chart(charts[-1], rows, name, title, unit)
    charts.append(out / "timeline.png")
    timeline_chart(charts[-1], runs)
    (out / "report.md").write_text(markdown(env, rows, charts))
    return [out / "report.json", out / "report.md", *charts]
