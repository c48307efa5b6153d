"""The baselines as ./compare.sh serves them: each baseline's own app, with /status and /stats
added last, as the project's apps have them, so that the comparison can read its CPU and
memory. Nothing else of the baseline changes: its routes, its answers and its style stay
its own, and the routes added after them cost its requests nothing.

    APPS=baselines.observed.flask_plain,baselines.observed.fastapi_typed ./up.sh

One module per baseline here (flask_plain.py for baselines/flask-plain.py, and so on),
its `app` made by observed(): a worker imports its own framework alone (its memory is
its own), and Unit, which looks an app up in its module's own names, finds it. The
sampler starts as the project's apps start it. benchmarks/instructions.py counts the
baselines without these routes: these modules are only for serving them.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, which
# name a model made in observed() (StatsQuery), so they must be evaluated there.
import importlib
from typing import Any


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
