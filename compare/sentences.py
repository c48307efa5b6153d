"""What the report says in words, in the terminal and in report.md alike: what the
intervals cover, the apps' response styles, the database, the observer's own CPU."""

from __future__ import annotations

from typing import Any

from compare.numbers import number
from compare.statistics import Margin
from compare.targets import APPS


def repeats_sentence(env: dict[str, Any]) -> str:
    """What the intervals cover: independent launches, or rounds within one."""
    count = env["repeats"]["count"]
    batches = env.get("batches")
    if batches:
        dates = ", ".join(batch["date"] for batch in batches)
        return (
            f"The {count} launches come from {len(batches)} batches (runs of compare at"
            f" {dates}), each launch of both apps of its own; each interval pools them with the"
            " batch as a random effect (a batch's launches share its afternoon): it widens"
            " where the batches disagree by more than their launches do."
        )
    if env["repeats"]["launches"] and count == 1:
        return (
            "The one repeat was a launch of both apps of its own: one launch gives no"
            " interval, so no difference is named; --repeats 6 gives intervals across six."
        )
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


def observer_sentence(env: dict[str, Any]) -> str:
    observer = env["observer"]
    if observer["loaded_max_share"] is None:
        return (
            "These apps do not report the CPU their own /status polls and sampler take: it is"
            f" in every loaded figure (one poll every {env['settings']['poll_s']:g} s adds to"
            " a run's CPU, not to the CPU per request); the idle runs have no poll."
        )
    idle = observer["idle_median_share"]
    return (
        "The observer's own CPU (the /status polls and the sampler, as the apps report it)"
        " is subtracted from every run's CPU: it was at most"
        f" {observer['loaded_max_share']:.1%} of a loaded app's"
        + (f", and {idle:.0%} of an idle app's (median: its sampler)." if idle is not None else ".")
        + " The idle runs have no poll: their CPU is read from outside the apps (the kernel's"
        " CPU clock of each of their processes) between two /status a settle apart, and only"
        " the sampler's own work in the window is subtracted."
    )


def reading_sentence(names: dict[str, str]) -> str:
    """How each cell's words are decided."""
    return (
        f"Each cell tests the per-launch pairs {names['fastapi']}/{names['flask']} of one figure"
        " (the logarithm of their ratio; of the idle cost, their difference): a difference"
        " where the 95% interval excludes no difference (a t-test at 5%), equivalence where the 90%"
        " interval lies wholly inside the figure's margin (two one-sided tests at 5%, TOST),"
        " both where a difference lies inside the margin, and otherwise inconclusive, with"
        " the launches that would give 80% power to decide it, were the observed effect and"
        " spread the truth: a batch of that size planned before it runs (and pooled with"
        " --from), not launches added until an answer appears. Beside each ratio, the"
        f" difference in the figure's unit (of a ratio: its change at {names['flask']}'s level)."
    )


def margins_sentence(data: dict[str, Any]) -> str:
    """Each figure's margin, and why it is that size."""
    seen: dict[str, str] = {}
    for row in data["headline"]:
        for figure in row["figures"].values():
            margin = Margin.model_validate(figure["margin"])
            seen.setdefault(
                figure["label"],
                f"{figure['label']} {margin.said(figure['unit'])} ({margin.reason})",
            )
    return "Margins: " + "; ".join(seen.values()) + "."


def multiplicity_sentence(data: dict[str, Any]) -> str:
    """How many tests the report makes, and what that means for the differences it names."""
    found = data.get("multiplicity")
    if not found or not found["tests"]:
        return ""
    tests, differences, held = found["tests"], found["differences"], found["after_holm"]
    named = (
        "It names no difference."
        if not differences
        else f"It names {differences}; {held} of them"
        f" {'survives' if held == 1 else 'survive'} Holm's correction across the {tests}"
        f" (a rate of {found['alpha']:.0%} for the whole report)."
    )
    return (
        f"This report makes {tests} tests of a difference (a figure that several rows share,"
        f" once); were the apps alike in all, about {number(found['expected_false'])} of them"
        f" would name one by chance at {found['alpha']:.0%} each. {named}"
    )
