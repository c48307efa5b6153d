"""The report's PNG charts: the estimates, and per scenario latency and CPU against load."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # the object API: files only, no GUI backend
from matplotlib.ticker import FuncFormatter

from compare.figures import HEADLINE, setting_label, workers_swept
from compare.numbers import number
from compare.run import Run
from compare.targets import APPS

COLORS = {"flask": "#1f77b4", "fastapi": "#2ca02c"}
PERCENTILE_STYLES = {"p50": "-", "p99": "--", "p99.9": ":"}
PEOPLE = FuncFormatter(lambda value, _: number(value))  # axis ticks as the tables write them
# Ticks of a ratio axis: fine where it spans little, coarse where it spans much.
FINE_TICKS = (0.8, 0.9, 0.95, 1, 1.05, 1.1, 1.25)
COARSE_TICKS = (0.1, 0.25, 0.5, 1, 2, 4, 10)


def file_label(row: dict[str, Any], swept: bool) -> str:
    return setting_label(row, swept).replace(" w=", "_w").replace(" pool=", "_pool")


def estimates_chart(path: Path, env: dict[str, Any], data: dict[str, Any], swept: bool) -> None:
    """Every headline ratio with its 95% confidence interval, against 1 and each figure's
    margin where it is one of the ratio (the idle cost's is of the difference)."""
    names = env["names"]
    rows = [
        (setting_label(row, swept), figure)
        for row in data["headline"]
        for figure in row["figures"].values()
    ]
    fig = Figure(figsize=(8, 0.45 * len(rows) + 1.4))
    ax = fig.subplots()
    ax.axvline(1, color="grey", linewidth=0.8)
    banded = False
    for y, (_, figure) in enumerate(rows):
        margin = figure["margin"]
        if margin["scale"] == "ratio":
            ax.fill_betweenx(
                [y - 0.4, y + 0.4],
                1 - margin["size"],
                1 + margin["size"],
                color="#e4e4e4",
                label=None if banded else "the figure's margin: equivalent inside",
            )
            banded = True
        ratio = figure["ratio"]
        if ratio is None:
            continue
        low, high = ratio["low"] or ratio["value"], ratio["high"] or ratio["value"]
        ax.errorbar(
            [ratio["value"]],
            [y],
            xerr=[[ratio["value"] - low], [high - ratio["value"]]],
            fmt="o",
            color="black",
            capsize=3,
        )
    ax.set_yticks(range(len(rows)), [f"{s}: {f['label']}" for s, f in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    # From 0.8 to 1.25 at least, a tenth to ten times at most: wider intervals run off the
    # edge, as their numbers in the table say.
    ends = [f["ratio"][end] for _, f in rows if f["ratio"] for end in ("low", "high")]
    known = [end for end in ends if end]
    left = min(0.8, max(0.1, min(known, default=1) * 0.9))
    right = max(1.25, min(10.0, max(known, default=1) * 1.1))
    ax.set_xlim(left, right)
    ticks = [t for t in (FINE_TICKS if right / left < 2 else COARSE_TICKS) if left <= t <= right]
    ax.set_xticks(ticks, [number(t) for t in ticks])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.set_xlabel(f"{names['fastapi']} / {names['flask']} (95% confidence interval)")
    ax.set_title("Headline estimates")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def latency_chart(path: Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Latency against offered rate, a line per app and percentile, openloop's floor below."""
    names = env["names"]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    rates = [row["rate"] for row in rows]
    for app in APPS:
        for name, style in PERCENTILE_STYLES.items():
            spreads = [row["apps"][app][name] for row in rows]
            known = [(rate, s) for rate, s in zip(rates, spreads, strict=True) if s]
            if not known:
                continue
            ax.errorbar(
                [rate for rate, _ in known],
                [s["median"] for _, s in known],
                yerr=[
                    [s["median"] - s["min"] for _, s in known],
                    [s["max"] - s["median"] for _, s in known],
                ],
                linestyle=style,
                marker="o",
                markersize=3,
                capsize=2,
                color=COLORS[app],
                label=f"{names[app]} {name}",
            )
        missed = [row["rate"] for row in rows if row["apps"][app]["missed"]]
        if missed:
            tops = [row["apps"][app]["p99"]["max"] for row in rows if row["apps"][app]["missed"]]
            ax.plot(
                missed, tops, "x", color=COLORS[app], markersize=9, label=f"{names[app]} missed"
            )
    floors = [(row["rate"], row["floor"]) for row in rows if row["floor"]]
    for name, style in PERCENTILE_STYLES.items():
        known = [(rate, floor[name]) for rate, floor in floors if floor.get(name) is not None]
        if known:
            ax.plot(
                [rate for rate, _ in known],
                [value for _, value in known],
                linestyle=style,
                color="grey",
                label=f"openloop's floor {name}",
            )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PEOPLE)
    ax.xaxis.set_major_formatter(PEOPLE)
    ax.set_xlabel("offered rate, requests per second (open loop)")
    ax.set_ylabel("latency, ms (median across repeats, min-max)")
    ax.set_title(f"{rows[0]['scenario']}: latency against load")
    ax.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def cpu_chart(
    path: Path, env: dict[str, Any], row: dict[str, Any], lines: list[dict], runs: list[Run]
) -> None:
    """Each run's CPU against the requests it served, a line per app (its mean fit), and the
    closed-loop saturation runs apart (not in the fit)."""
    names = env["names"]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    scenario, workers, pool_size = row["scenario"], row["workers"], row.get("pool_size")
    for app in APPS:
        mine = [
            r
            for r in runs
            if r.app == app and (r.level.workers, r.level.pool_size) == (workers, pool_size)
        ]
        fitted = [
            r for r in mine if r.level.scenario in (scenario, None) and r.level.kind != "closed"
        ]
        saturated = [r for r in mine if r.level.scenario == scenario and r.level.kind == "closed"]
        ax.plot(
            [r.served_per_s for r in fitted],
            [100 * r.net_cores for r in fitted],
            "o",
            markersize=4,
            alpha=0.6,
            color=COLORS[app],
            label=f"{names[app]}, a run (open loop, or idle at 0)",
        )
        ax.plot(
            [r.served_per_s for r in saturated],
            [100 * r.net_cores for r in saturated],
            "x",
            color=COLORS[app],
            label=f"{names[app]}, closed-loop saturation (not fitted)",
        )
        fits = [
            line["line"]
            for line in lines
            if line["app"] == app
            and line["scenario"] == scenario
            and line["workers"] == workers
            and line.get("pool_size") == pool_size
            and line["line"]
        ]
        if fits and fitted:
            slope = statistics.fmean(f["cpu_s_per_request"] for f in fits)
            intercept = statistics.fmean(f["intercept_cores"] for f in fits)
            top = max(r.served_per_s for r in fitted)
            ax.plot(
                [0, top],
                [100 * intercept, 100 * (intercept + slope * top)],
                color=COLORS[app],
                label=f"{names[app]}: {number(slope * 1000)} ms per request (the line's"
                f" slope; mean of the repeats' lines)",
            )
    ax.xaxis.set_major_formatter(PEOPLE)
    ax.yaxis.set_major_formatter(PEOPLE)
    ax.set_xlabel("requests served per second")
    ax.set_ylabel("CPU, % of one core (workers and server, less the observer)")
    ax.set_title(f"{scenario}: CPU against load")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def sweep_chart(path: Path, env: dict[str, Any], data: dict[str, Any], axis: str) -> None:
    """Per scenario, closed-loop req/s and p99 against connections, or the headline's CPU
    per request and capacity against workers or the database's pool size."""
    names = env["names"]
    if axis == "connections":
        rows = data["capacity"]
        panels = [("requests_per_s", "closed-loop req/s"), ("p99_ms", "closed-loop p99, ms")]
    else:
        rows = data["headline"]
        panels = [
            (name, f"{HEADLINE[name][0]}, {HEADLINE[name][1]}")
            for name in ("cpu_ms_per_request", "capacity_rps")
        ]
    scenarios = list(dict.fromkeys(row["scenario"] for row in rows))
    fig = Figure(figsize=(4.5 * len(panels), 3.2 * len(scenarios)))
    grid = fig.subplots(len(scenarios), len(panels), squeeze=False)
    for axes, scenario in zip(grid, scenarios, strict=True):
        picked = sorted((r for r in rows if r["scenario"] == scenario), key=lambda r: r[axis])
        for ax, (name, title) in zip(axes, panels, strict=True):
            for app in APPS:
                xs, ys, low, high = [], [], [], []
                for row in picked:
                    if axis == "connections":
                        spread = row["apps"][app][name]
                        value = spread and (spread["median"], spread["min"], spread["max"])
                    else:
                        found = row["figures"][name]["apps"][app]
                        value = found and (
                            found["value"],
                            found["low"] if found["low"] is not None else found["value"],
                            found["high"] if found["high"] is not None else found["value"],
                        )
                    if value:
                        xs.append(row[axis])
                        ys.append(value[0])
                        low.append(value[0] - value[1])
                        high.append(value[2] - value[0])
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[low, high],
                    marker="o",
                    capsize=3,
                    color=COLORS[app],
                    label=names[app],
                )
            ax.set_title(f"{scenario}: {title}")
            ax.set_xlabel("database connections per worker" if axis == "pool_size" else axis)
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(PEOPLE)
    grid[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def timeline_chart(path: Path, env: dict[str, Any], runs: list[Run]) -> None:
    fig = Figure(figsize=(10, 6))
    cpu_ax, pss_ax = fig.subplots(2, 1, sharex=True)
    for app in APPS:
        polls = [p for run in runs if run.app == app for p in run.polls]
        cpu = [(p.t_s, p.cpu_percent) for p in polls if p.cpu_percent is not None]
        cpu_ax.plot(
            [t for t, _ in cpu],
            [c for _, c in cpu],
            ".",
            color=COLORS[app],
            label=env["names"][app],
        )
        pss = [(p.t_s, p.app_pss_mb or p.pss_mb) for p in polls if p.pss_mb is not None]
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


def draw(out: Path, env: dict[str, Any], data: dict[str, Any], runs: list[Run]) -> list[Path]:
    """Every chart of the report, written to `out`; their paths."""
    swept = workers_swept(data)
    pictures = [out / "estimates.png"]
    estimates_chart(pictures[-1], env, data, swept)
    for row in data["headline"]:
        name = file_label(row, swept)
        rates = [
            r
            for r in data["latency"]
            if (r["scenario"], r["workers"], r.get("pool_size"))
            == (row["scenario"], row["workers"], row.get("pool_size"))
        ]
        if rates:
            pictures.append(out / f"latency_{name}.png")
            latency_chart(pictures[-1], env, rates)
        pictures.append(out / f"cpu_{name}.png")
        cpu_chart(pictures[-1], env, row, data["cost_lines"], runs)
    if len({row["connections"] for row in data["capacity"]}) > 1:
        pictures.append(out / "sweep_connections.png")
        sweep_chart(pictures[-1], env, data, "connections")
    if swept:
        pictures.append(out / "sweep_workers.png")
        sweep_chart(pictures[-1], env, data, "workers")
    if len({row.get("pool_size") for row in data["headline"]}) > 1:
        pictures.append(out / "sweep_pool_size.png")
        sweep_chart(pictures[-1], env, data, "pool_size")
    pictures.append(out / "timeline.png")
    timeline_chart(pictures[-1], env, runs)
    return pictures
