"""Flask (WSGI) app: the same routes and answers as fastapi-asgi.py.

granian --interface wsgi --port 8080 flask-wsgi:app
curl http://127.0.0.1:8080/stats
"""

import os
import platform
import time
from importlib.metadata import version

from flask import Flask, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

import database
import metrics
import workloads

sampler = metrics.start_sampler()
StatsQuery = metrics.stats_query(sampler.config.slots)
FRAMEWORK_VERSION = version("flask")  # read once: a lookup costs 0.7 ms
pool = database.connection_pool()  # this worker's connections, shared by its threads


app = Flask(__name__)
app.json.sort_keys = False  # keep the models' field order, as FastAPI does
app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # GET and HEAD only, as in FastAPI
# The routes do not depend on the Host header, and FastAPI never reads it: a fixed
# name keeps Werkzeug from encoding the client's Host (a 400 for a label over 63 bytes).
app.config["SERVER_NAME"] = "localhost"


def query(model):
    """The query string validated by `model`, as FastAPI reads it (workloads.query_values)."""
    query_string = request.query_string
    pairs = workloads.query_pairs(query_string) if query_string else []
    return model.model_validate(workloads.query_values(pairs, model))


@app.before_request
def read_as_fastapi():
    """Take the path and the method as written, as Starlette does: Werkzeug would route
    `//status` and `status` to /status, redirect an empty path, and upper-case `get`.
    Then refuse any parameter to a route that takes none, once routing found it, as
    fastapi-asgi.py does."""
    environ = request.environ
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/") or path.startswith("//"):
        raise NotFound()
    rule = request.url_rule
    if rule and environ["REQUEST_METHOD"] not in rule.methods:
        raise MethodNotAllowed()
    if rule and path in workloads.NO_QUERY_PATHS and request.query_string:
        refused = workloads.unknown_parameters(request.query_string)
        if refused:
            return {"detail": refused}, 422
    return None


@app.get("/")
def hello():
    return workloads.Greeting(
        message="Hello from Flask",
        framework="flask",
        framework_version=FRAMEWORK_VERSION,
        python_version=platform.python_version(),
        interface="wsgi",
        pid=os.getpid(),
    ).model_dump()


@app.get("/status")
def status():
    return app.response_class(sampler.status().model_dump_json(), mimetype="application/json")


@app.get("/stats")
def stats():
    stats_json = sampler.stats_json(query(StatsQuery).last)
    return app.response_class(stats_json, mimetype="application/json")


@app.get("/json")
def json_items():
    return workloads.items().model_dump()


@app.get("/io")
def io():
    params = query(workloads.IoQuery)
    time.sleep(params.ms / 1000)
    return workloads.Waited(ms=params.ms).model_dump()


@app.get("/cpu")
def cpu():
    params = query(workloads.CpuQuery)
    return workloads.Primes(n=params.n, primes=workloads.count_primes(params.n)).model_dump()


@app.get("/db")
def db():
    return database.one_world(pool).model_dump()


@app.get("/queries")
def queries():
    params = query(database.RowsQuery)
    return [world.model_dump() for world in database.some_worlds(pool, params.n)]


@app.get("/fortunes")
def fortunes():
    return app.response_class(database.fortunes(pool), mimetype="text/html")


@app.get("/updates")
def updates():
    params = query(database.RowsQuery)
    return [world.model_dump() for world in database.updated_worlds(pool, params.n)]


@app.errorhandler(ValidationError)
def invalid_query(error):
    return {"detail": workloads.query_errors(error)}, 422


@app.errorhandler(database.Unavailable)
def database_unavailable(error):
    return {"detail": str(error)}, 503


@app.errorhandler(HTTPException)
def http_error(error):
    # Answer in JSON like FastAPI, and list the allowed methods in one order.
    headers = {"Allow": workloads.ALLOW} if error.code == 405 else {}
    return {"detail": error.name}, error.code, headers
