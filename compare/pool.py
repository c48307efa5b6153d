"""compare --from: the reports of several batches (runs of compare --launch, hours or days
apart) merged into one estimate per figure, the batch a random effect (compare/statistics.py:
a batch's launches share its afternoon), with the spread between batches; written as
report.json, report.md and estimates.png, as a run's are. Nothing is run.

Only like is pooled with like: the same apps under the same names, style and server, each
batch a run of independent launches, each row's scenario at the same target. The rows
pooled are those every batch has."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from compare.cells import md_table, ratio_cell
from compare.figures import HEADLINE, Setting, setting_label, workers_swept
from compare.headline import headline_section
from compare.numbers import percent
from compare.plan import FRAMEWORKS
from compare.statistics import Margin, amount

# What must be the same in every batch pooled, and how to say it differs.
ALIKE = {
    "names": lambda env: env["names"],
    "the app compared with itself (--same-app)": lambda env: env["same_app"],
    "style": lambda env: env["style"],
    "server": lambda env: env["apps"]["flask"]["server"],
    "frameworks": lambda env: [env["apps"][app]["framework"] for app in FRAMEWORKS],
}


def report_path(source: Path) -> Path:
    return source / "report.json" if source.is_dir() else source


def read_batch(source: Path) -> dict[str, Any]:
    """A batch's report.json (source: its folder, or the file); ValueError saying why not."""
    path = report_path(source)
    try:
        report = json.loads(path.read_text())
        launched = report["environment"]["repeats"]["launches"]
        launches = report["environment"]["repeats"]["count"]
        lengths = {
            len(values)
            for row in report["headline"]
            for figure in row["figures"].values()
            for values in figure["per_repeat"].values()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"--from {source}: no report of compare's ({error})") from None
    if lengths != {launches}:
        raise ValueError(f"--from {source}: its estimates are not of its {launches} launches")
    if not launched:
        raise ValueError(
            f"--from {source}: its repeats ran against one launch of the apps (no --launch),"
            " so they are no batch of independent launches"
        )
    return report


def read_batches(sources: list[Path]) -> list[dict[str, Any]]:
    """Each source's report, checked to be alike; ValueError naming what is not."""
    if len(sources) < 2:
        raise ValueError("--from pools batches: give two reports or more")
    seen = [report_path(source).resolve() for source in sources]
    if len(set(seen)) < len(seen):
        raise ValueError("--from names one report twice: each batch counts once")
    batches = [read_batch(source) for source in sources]
    first = batches[0]["environment"]
    for source, batch in zip(sources[1:], batches[1:], strict=True):
        env = batch["environment"]
        for what, of in ALIKE.items():
            if of(env) != of(first):
                raise ValueError(
                    f"--from {source}: {what} {of(env)}, not {of(first)} as in {sources[0]}:"
                    " only like is pooled with like"
                )
        targets = env["settings"]["scenarios"]
        for scenario, target in first["settings"]["scenarios"].items():
            if targets.get(scenario, target) != target:
                raise ValueError(
                    f"--from {source}: its {scenario} loads {targets[scenario]}, not"
                    f" {target} as {sources[0]}'s does"
                )
    if not common_settings(batches):
        raise ValueError("--from: the batches have no row (scenario and workers) in common")
    return batches


def setting_of(row: dict[str, Any]) -> Setting:
    return Setting(row["scenario"], row["workers"], row.get("pool_size"))


def common_settings(batches: list[dict[str, Any]]) -> list[Setting]:
    """The rows every batch has, in the first batch's order."""
    first = [setting_of(row) for row in batches[0]["headline"]]
    others = [{setting_of(row) for row in batch["headline"]} for batch in batches[1:]]
    return [setting for setting in first if all(setting in other for other in others)]


def by_setting(batch: dict[str, Any]) -> dict[Setting, dict[str, dict]]:
    """A batch's per-launch values: per row, per figure, each app's list."""
    return {
        setting_of(row): {name: figure["per_repeat"] for name, figure in row["figures"].items()}
        for row in batch["headline"]
    }


def pooled_values(
    batches: list[dict[str, Any]],
) -> tuple[dict[Setting, dict[str, dict]], list[int]]:
    """Every common row's values, the batches' launches one after another, and each
    launch's batch."""
    values = [by_setting(batch) for batch in batches]
    labels = [i for i, batch in enumerate(batches) for _ in range(count(batch))]
    figures: dict[Setting, dict[str, dict]] = {}
    for setting in common_settings(batches):
        figures[setting] = {
            name: {
                app: [value for found in values for value in found[setting][name][app]]
                for app in FRAMEWORKS
            }
            for name in HEADLINE
        }
    return figures, labels


def count(batch: dict[str, Any]) -> int:
    return batch["environment"]["repeats"]["count"]


def between(figure: dict[str, Any]) -> str:
    """The standard deviation between batches, as the reader compares it: a share of the
    ratio, or an amount in the figure's unit."""
    sd = figure.get("between_batches")
    if sd is None:
        return "-"
    if Margin.model_validate(figure["margin"]).scale == "ratio":
        return f"{percent(math.expm1(sd))}%"
    return amount(sd, figure["unit"])[1:]


def pool(sources: list[Path], out: Path, console: Console) -> list[Path]:
    """The pooled report of the sources' batches, written to out; its paths."""
    from compare import charts, report  # matplotlib's: imported once there is one to write

    batches = read_batches(sources)
    first = batches[0]["environment"]
    figures, labels = pooled_values(batches)
    headline, multiplicity = report.estimates(figures, first["names"], labels)
    each = [
        report.estimates(by_setting_common(batch, figures), first["names"])[0] for batch in batches
    ]
    env = {
        **first,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": {
            "count": len(labels),
            "launches": True,
            "first_place": [
                place
                for batch in batches
                for place in batch["environment"]["repeats"].get("first_place") or []
            ],
        },
        "notes": [],
        "batches": [
            {
                "source": str(source),
                "date": batch["environment"]["date"],
                "launches": count(batch),
                "load_average_at_start": batch["environment"]["machine"].get(
                    "load_average_at_start"
                ),
            }
            for source, batch in zip(sources, batches, strict=True)
        ],
    }
    targets = first["settings"]["scenarios"]
    counted, whole = report.counted_now(env, targets)
    for row in headline:
        row["instructions_per_request"] = report.app_counts(counted).get(row["scenario"])
    data = {
        "headline": headline,
        "multiplicity": multiplicity,
        "batch_headlines": each,
        "whole_request": whole,
        "instructions": counted,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"environment": env, **data}, indent=2) + "\n")
    picture = out / "estimates.png"
    charts.estimates_chart(picture, env, data, workers_swept(data))
    (out / "report.md").write_text(markdown(env, data, sources))
    report.print_table(console, env, data)
    return [out / "report.json", out / "report.md", picture]


def by_setting_common(batch: dict[str, Any], figures: dict[Setting, dict]) -> dict[Setting, dict]:
    """A batch's values of the pooled rows only."""
    found = by_setting(batch)
    return {setting: found[setting] for setting in figures}


def batches_section(env: dict[str, Any], data: dict[str, Any], sources: list[Path]) -> list[str]:
    swept = workers_swept(data)
    header = [
        "scenario",
        "figure",
        *(f"batch {i + 1}" for i in range(len(sources))),
        "pooled",
        "SD between batches",
    ]
    rows = []
    for index, row in enumerate(data["headline"]):
        for name, figure in row["figures"].items():
            rows.append(
                [
                    setting_label(row, swept),
                    figure["label"],
                    *(
                        ratio_cell(batch[index]["figures"][name])
                        for batch in data["batch_headlines"]
                    ),
                    ratio_cell(figure),
                    between(figure),
                ]
            )
    listed = [
        f"- batch {i + 1}: {batch['source']}, {batch['date']}, {batch['launches']} launches"
        for i, batch in enumerate(env["batches"])
    ]
    return [
        "## The batches",
        "",
        *listed,
        "",
        "Each batch's ratio [95% CI] alone, the pooled one, and the standard deviation"
        " between the batches that the random effect estimates (of the ratio: a share; of the"
        " idle cost's difference: an amount). Where the batches disagree by more than their"
        " launches do, the pooled interval widens towards one on the batches' means alone.",
        "",
        *md_table(header, rows),
    ]


def markdown(env: dict[str, Any], data: dict[str, Any], sources: list[Path]) -> str:
    names = env["names"]
    lines = [
        f"# {names['flask']} vs {names['fastapi']}, pooled from {len(sources)} batches",
        "",
        f"Pooled on {env['date']} by `./compare.sh --from`, {env['apps']['flask']['server']}:"
        f" {env['repeats']['count']} launches in {len(sources)} batches.",
        "",
        *headline_section(env, data),
        "",
        "![estimates](estimates.png)",
        "",
        *batches_section(env, data, sources),
        "",
    ]
    return "\n".join(lines)
