"""The Plan of a comparison, what compare.cli reads the flags into, and the scenarios and
apps a Plan names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from compare.instructions import PROJECT_STYLE

# The database scenarios need a database: asked by name, they are not in the default list,
# which stays the same wherever it runs.
DATABASE_SCENARIOS = ("db", "queries", "fortunes", "updates")
# Those that the baselines (baselines/) answer too: every scenario without a database.
BASELINE_SCENARIOS = ("hello", "json", "io", "cpu")
SCENARIOS = (*BASELINE_SCENARIOS, *DATABASE_SCENARIOS)
APP_NAMES = {"flask": "Flask", "fastapi": "FastAPI"}
FRAMEWORKS = tuple(APP_NAMES)  # the frameworks compared, each with its name


class Plan(BaseModel):
    """What to run: validated once, then passed to every part of the comparison."""

    model_config = ConfigDict(frozen=True)

    flask_url: str
    fastapi_url: str
    launch: bool
    same_app: Literal["flask", "fastapi"] | None  # an A/A comparison: that app on both ports
    # The apps compared: the project's (typed), or the baselines of one response style.
    style: Literal["project", "plain", "typed"] = "project"
    workers: list[int]  # with launch: one level per entry (a worker sweep when several)
    # With launch: database connections per worker, one launch per entry (a pool-size
    # sweep when several); None: conf.json's.
    pool_sizes: list[int] | None = None
    tool: Literal["wrk", "ab", "hey"]  # the closed-loop runs' load tool
    scenarios: list[str]
    connections: list[int]  # closed-loop levels (a connection sweep when several)
    fractions: list[float]  # open-loop rates as shares of the lower closed-loop capacity
    rates: list[float] | None  # open-loop rates given instead of fractions
    arrivals: Literal["poisson", "uniform"]
    seed: int | None  # of the open-loop arrivals; None: drawn, and reported
    duration_s: int
    warmup_s: int
    repeats: int  # with launch: independent launches; else rounds against the same apps
    poll_s: float
    io_ms: int
    cpu_n: int
    queries_n: int = 20
    updates_n: int = 5
    max_error_rate: float
    pin: bool | None  # None: pin where there are cores enough
    out: Path
    sources: list[Path] | None = None  # --from: batches' reports to pool; nothing is run

    def path(self, scenario: str) -> str:
        return {
            "hello": "/",
            "json": "/json",
            "io": f"/io?ms={self.io_ms}",
            "cpu": f"/cpu?n={self.cpu_n}",
            "db": "/db",
            "queries": f"/queries?n={self.queries_n}",
            "fortunes": "/fortunes",
            "updates": f"/updates?n={self.updates_n}",
        }[scenario]

    @property
    def names(self) -> dict[str, str]:
        """What the report calls the app on each port: Flask and FastAPI, or in an A/A
        comparison the one app's A (the Flask port) and B (the FastAPI port)."""
        if self.same_app:
            return {
                app: f"{APP_NAMES[self.same_app]} {ab}"
                for app, ab in zip(APP_NAMES, "AB", strict=True)
            }
        return dict(APP_NAMES)

    @property
    def styles(self) -> dict[str, str]:
        """Each port's app's response style: plain (dicts) or typed (pydantic models)."""
        style = PROJECT_STYLE if self.style == "project" else self.style
        return dict.fromkeys(APP_NAMES, style)

    @property
    def uses_database(self) -> bool:
        return any(scenario in DATABASE_SCENARIOS for scenario in self.scenarios)
