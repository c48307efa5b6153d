"""What the report says in words, in the terminal and in report.md alike: what the
intervals cover, the apps' response styles, the database, the observer's own CPU."""

from __future__ import annotations

from typing import Any

from compare.targets import APPS


def repeats_sentence(env: dict[str, Any]) -> str:
    """What the intervals cover: independent launches, or rounds within one."""
    count = env["repeats"]["count"]
    if env["repeats"]["launches"] and count == 1:
        return (
            "The one repeat was a launch of both apps of its own: one launch gives no"
            " interval, so no difference is named; --repeats 5 gives intervals across five."
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
            f" in every figure (one poll every {env['settings']['poll_s']:g} s adds to the idle"
            " cost, not to the CPU per request)."
        )
    return (
        "The observer's own CPU (the /status polls and the sampler, as the apps report it)"
        " is subtracted from every run's CPU: it was"
        f" {observer['idle_median_share']:.0%} of an idle app's CPU (median), and at most"
        f" {observer['loaded_max_share']:.1%} of a loaded app's."
    )
