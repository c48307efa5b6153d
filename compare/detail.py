"""report.md's detail after its answer: the cost of a request, latency against load,
capacity, and the environment the figures were measured in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compare.cells import md_table, spread_cell
from compare.figures import setting_label, workers_swept
from compare.numbers import interval, number
from compare.sentences import database_said, observer_sentence
from compare.targets import APPS


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


def latency_section(env: dict[str, Any], data: dict[str, Any], pictures: list[Path]) -> list[str]:
    names, swept = env["names"], workers_swept(data)
    header = ["scenario", "of capacity", "rate/s"]
    for app in APPS:
        header += [f"{names[app]} p50", "p99", "p99.9", "missed"]
    header += ["floor p50", "p99", "p99.9"]
    rows = []
    for row in data["latency"]:
        rates = row.get("rates") or [row["rate"]]
        rate = interval(row["rate"], min(rates), max(rates)) if len(rates) > 1 else number(rates[0])
        share = f"{row['fraction']:.0%}" if row.get("fraction") is not None else "-"
        cells = [setting_label(row, swept), share, rate]
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
        " table, never left out. Each launch sets its rates from its own capacity, so a row is"
        " a share of capacity, its rate the median of the launches' [least-most]. The floor is"
        " openloop's own latency at the first launch's rate against a trivial server on the"
        " apps' cores: no app can show less.",
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


def limits(cgroup: dict[str, Any] | None) -> str:
    if cgroup is None:
        return "no cgroup found"
    memory, cpu = cgroup["memory_limit_mb"], cgroup["cpu_quota_cores"]
    return (
        f"memory {'unlimited' if memory is None else f'{memory:,.0f} MiB'},"
        f" CPU {'unlimited' if cpu is None else f'{cpu:g} cores'} (cgroup v{cgroup['version']})"
    )
