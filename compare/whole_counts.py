"""The whole-request instruction counts as reports read them: from the file that
benchmarks/whole_request.py writes (docs/whole-request.json), each scenario's count per
app under both servers, and whether a wall-clock estimate agrees with it.

A count does not depend on the load, so one committed file serves every comparison: a
report takes the rows counted at its own targets and style, on one connection (as its
headline's CPU per request is measured, one request at a time per connection), under
both conditions: `contended` (every core kept busy while counting: the figure), and
`alone`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compare.numbers import number

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "whole-request.json"
APPS = ("flask", "fastapi")
SERVERS = ("granian", "unit")
CONDITIONS = ("contended", "alone")


def committed(path: Path = COMMITTED) -> dict | None:
    """The committed counts as benchmarks/whole_request.py wrote them; None without."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def for_report(counted: dict | None, targets: dict[str, str], style: str) -> dict | None:
    """Per scenario of `targets` ({scenario: target}) counted at that target in `style`:
    {server: {condition: {app: instructions per request}}}. None without counts."""
    if not counted:
        return None
    rows = []
    for scenario, target in targets.items():
        servers: dict[str, dict] = {}
        for server, found in counted["servers"].items():
            for row in found["rows"]:
                if (row["style"], row["target"], row["connections"]) != (style, target, 1):
                    continue
                per_app = {app: row[app]["per_request"] for app in APPS}
                servers.setdefault(server, {})[row["condition"]] = per_app
        if servers:
            rows.append({"scenario": scenario, "target": target, "servers": servers})
    versions = counted["versions"]
    return {
        "source": str(COMMITTED.relative_to(ROOT)),
        "python": versions["python"],
        "versions": {name: versions[name] for name in (*APPS, *SERVERS) if name in versions},
        "rows": rows,
    }


def ratio(per_app: dict[str, float]) -> float:
    return per_app["fastapi"] / per_app["flask"]


def server_of(name: str) -> str:
    """granian or unit, from how a report names its server ("Unit/1.34.2", "granian")."""
    return next((server for server in SERVERS if name.lower().startswith(server)), name)


def agreement(
    scenario: str, figure: dict[str, Any], counted: float, database_counted: bool = False
) -> str:
    """Whether a wall-clock CPU-per-request estimate holds the instruction ratio `counted`
    within its interval, in one sentence. `database_counted`: the wall clock's CPU holds
    the PostgreSQL beside the apps, which the instructions leave out."""
    found = figure.get("ratio")
    if not found or found["low"] is None:
        return f"{scenario}: no interval to hold the instruction ratio {counted:.2f}."
    low, high = found["low"], found["high"]
    held = f"{number(found['value'])} [{number(low)}-{number(high)}]"
    if low <= counted <= high:
        return (
            f"{scenario}: the wall clock's ratio {held} holds the instruction ratio {counted:.2f}."
        )
    side = "below" if counted < low else "above"
    database = "; the database's CPU, which both share" if database_counted else ""
    return (
        f"{scenario}: the two disagree: the instruction ratio {counted:.2f} lies {side} the"
        f" wall clock's {held}, so what instructions leave out (the kernel's network work,"
        f" cache misses and stalls, the scheduler{database}) tells the apps apart here, or"
        " the launches drifted."
    )
