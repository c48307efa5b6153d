"""The baselines as ./compare.sh serves them: each baseline's own app, with /status and /stats
added last, as the project's apps have them, so that the comparison can read its CPU and
memory. Nothing else of the baseline changes: its routes, its answers and its style stay
its own, and the routes added after them cost its requests nothing.

    APPS=baselines.observed:flask_plain,baselines.observed:fastapi_typed ./up.sh

`flask_plain`, `flask_typed`, `fastapi_plain` and `fastapi_typed` are the apps of
baselines/flask-plain.py and the others; each is imported only when asked for, so that
a worker imports its own framework alone (its memory is its own). The sampler starts as
the project's apps start it. benchmarks/instructions.py counts the baselines without
these routes: this module is only for serving them.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, which
# name a model made in observed() (StatsQuery), so they must be evaluated there.
import importlib
from typing import Any

STYLES = ("plain", "typed")
FRAMEWORKS = ("flask", "fastapi")
NAMES = tuple(f"{framework}_{style}" for framework in FRAMEWORKS for style in STYLES)


def observed(name: str) -> Any:
    """The baseline `name` (flask_plain, ...) with /status and /stats of its own sampler."""
    import metrics

    framework, _, style = name.partition("_")
    app = importlib.import_module(f"baselines.{framework}-{style}").app
    sampler = metrics.start_sampler()
    StatsQuery = metrics.stats_query(sampler.config.slots)
    if framework == "flask":
        from flask import request

        @app.get("/status")
        def status():
            return app.response_class(
                sampler.status().model_dump_json(), mimetype="application/json"
            )

        @app.get("/stats")
        def stats():
            last = StatsQuery.model_validate(request.args.to_dict()).last
            return app.response_class(sampler.stats_json(last), mimetype="application/json")

        return app

    from typing import Annotated

    from fastapi import Query, Response

    @app.get("/status", response_model=metrics.Snapshot)
    def fastapi_status() -> Response:
        return Response(sampler.status().model_dump_json(), media_type="application/json")

    @app.get("/stats", response_model=metrics.Stats)
    def fastapi_stats(params: Annotated[StatsQuery, Query()]) -> Response:
        return Response(sampler.stats_json(params.last), media_type="application/json")

    return app


def __getattr__(name: str) -> Any:
    """A baseline, made observable the first time it is asked for (PEP 562)."""
    if name not in NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = observed(name)
    globals()[name] = app
    return app
