"""The comparison's outputs: the terminal table, report.json and report.md (charts.py draws
the PNGs). report.md opens with its answer, one row per scenario (headline.py); the detail
follows (detail.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from compare import charts, instructions, whole_counts
from compare.detail import capacity_section, cost_section, environment_section, latency_section
from compare.figures import (
    HEADLINE,
    MARGINS,
    Setting,
    capacity_rows,
    cost_lines,
    latency_rows,
    per_repeat,
    workers_swept,
)
from compare.flag_values import Parser
from compare.headline import detail_header, detail_rows, headline_section, whole_table
from compare.loadtools import LoadResult
from compare.plan import FRAMEWORKS
from compare.run import Run
from compare.sentences import (
    database_said,
    multiplicity_sentence,
    repeats_sentence,
    style_sentence,
)
from compare.statistics import ALPHA, DIFFERENCES, Estimate, estimate, holm


def assemble(
    runs: list[Run],
    scenarios: list[str],
    names: dict[str, str],
    floors: dict[Setting, dict[float, LoadResult]],
    instructions: dict[str, Any] | None = None,
    whole: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """report.json's figures from the runs: the headline estimates, then the detail
    (`instructions`: framework_counts' answer, the counts of the committed file; `whole`:
    whole_counts.for_report's, the whole request's)."""
    headline, multiplicity = estimates(per_repeat(runs, scenarios), names)
    counts = app_counts(instructions)
    for row in headline:
        # This run's apps' own callables, per request, from docs/instructions.json.
        row["instructions_per_request"] = counts.get(row["scenario"])
    return {
        "headline": headline,
        "multiplicity": multiplicity,
        "whole_request": whole,
        "instructions": instructions,
        "cost_lines": cost_lines(runs, scenarios),
        "latency": latency_rows(runs, scenarios, floors),
        "capacity": capacity_rows(runs, scenarios),
    }


def estimates(
    figures: dict[Setting, dict[str, dict]],
    names: dict[str, str],
    batches: list[int] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The headline's rows, each figure estimated with its margin (batches: each launch's
    batch, where several are pooled), and how many tests the report makes: a figure that
    several rows share (the idle run, in every scenario's row) is one test."""
    found: dict[str, Estimate] = {}
    rows = []
    for setting, values in figures.items():
        row = {}
        for name, by_app in values.items():
            key = json.dumps([name, by_app])
            if key not in found:
                unit = HEADLINE[name][1]
                found[key] = estimate(by_app, names, MARGINS[name], unit, batches)
            row[name] = key
        rows.append((setting, row))
    tests = holm(list(found.values()))
    differences = [e for e in found.values() if e.decision in DIFFERENCES]
    multiplicity = {
        "tests": tests,
        "alpha": ALPHA,
        "expected_false": tests * ALPHA,
        "differences": len(differences),
        "after_holm": sum(bool(e.holm) for e in differences),
    }
    headline = [
        {
            **setting._asdict(),
            "figures": {
                name: {
                    "label": HEADLINE[name][0],
                    "unit": HEADLINE[name][1],
                    **found[key].model_dump(),
                }
                for name, key in row.items()
            },
        }
        for setting, row in rows
    ]
    return headline, multiplicity


def app_counts(counted: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per scenario, this run's apps' own callables per request, from framework_counts'."""
    return {row["scenario"]: row["apps"] for row in (counted or {}).get("rows", [])}


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
        "source": str(instructions.COMMITTED.relative_to(instructions.ROOT)),
        "python": counted["python"],
        "versions": counted["versions"],
        "rows": rows,
    }


def print_table(console: Console, env: dict[str, Any], data: dict[str, Any]) -> None:
    names = env["names"]
    swept = workers_swept(data)
    found = data.get("whole_request")
    if found and found["rows"] and not env.get("same_app"):
        header, rows = whole_table(found)
        whole = Table(title=f"the whole request in instructions ({found['source']})")
        for name in header:
            whole.add_column(name, justify="left" if name in ("scenario", "target") else "right")
        for row in rows:
            whole.add_row(*row)
        console.print(whole)
    table = Table(title=f"{names['fastapi']} against {names['flask']}: geometric means [95% CI]")
    for name in detail_header(names):
        table.add_column(name, justify="right" if name in names.values() else "left")
    previous = None
    for values in detail_rows(data, swept):
        if previous is not None and values[0] != previous:
            table.add_section()
        previous = values[0]
        table.add_row(*values)
    console.print(table)
    console.print(repeats_sentence(env))
    said = multiplicity_sentence(data)
    if said:
        console.print(said)
    console.print(style_sentence(env))
    said = database_said(env)
    if said:
        console.print(f"database: {said}")
    for line in env["notes"]:
        console.print(line)


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


def counted_now(
    env: dict[str, Any], targets: dict[str, str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The instruction counts committed now at a report's targets: the frameworks' own
    (docs/instructions.json) and the whole request's (docs/whole-request.json)."""
    served = {app: (env["apps"][app]["framework"], env["style"]) for app in FRAMEWORKS}
    return (
        framework_counts(instructions.committed(), targets, served),
        whole_counts.for_report(whole_counts.committed(), targets, env["style"]),
    )


def rewrite(folder: Path) -> None:
    """report.md and report.json of `folder` written again from its report.json, with the
    estimates made anew from its runs and the instruction counts committed now
    (docs/instructions.json, docs/whole-request.json): the measurements stay as they were."""
    document = json.loads((folder / "report.json").read_text())
    env, runs = document.pop("environment"), document.pop("runs")
    targets = env["settings"]["scenarios"]
    measured = [Run.model_validate(run) for run in runs]
    document["headline"], document["multiplicity"] = estimates(
        per_repeat(measured, list(targets)), env["names"]
    )
    document["instructions"], document["whole_request"] = counted_now(env, targets)
    counts = app_counts(document["instructions"])
    for row in document["headline"]:
        row["instructions_per_request"] = counts.get(row["scenario"])
    (folder / "report.json").write_text(
        json.dumps({"environment": env, **document, "runs": runs}, indent=2) + "\n"
    )
    pictures = charts.draw(folder, env, document, measured)
    (folder / "report.md").write_text(markdown(env, document, pictures))


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m compare.report",
        description="Writes each report's report.md and report.json again from its"
        " report.json, with the instruction counts committed now (docs/instructions.json,"
        " docs/whole-request.json); its measurements stay as they were.",
    )
    parser.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not (f / "report.json").is_file()]
    if missing:
        parser.error(f"no report.json in {', '.join(missing)}")
    for folder in args.folders:
        rewrite(folder)
        print(f"written: {folder / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
