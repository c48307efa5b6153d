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
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, UnprocessableEntity
from werkzeug.routing import Map

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


def query(model):
    """The query string validated by `model`, as FastAPI reads it (workloads.query_values)."""
    query_string = request.query_string
    pairs = workloads.query_pairs(query_string) if query_string else []
    return model.model_validate(workloads.query_values(pairs, model))


class ReadAsFastAPI(Map):
    """Werkzeug's routing, reading a request as Starlette does: the path and the method
    exactly as written (Werkzeug would route `//status` and `status` to /status, and
    upper-case `get`), whatever the Host (Werkzeug answers 400 to a label over 63
    bytes; FastAPI never reads it). Then any parameter to a route that takes none is
    refused, as fastapi-asgi.py does. Werkzeug binds every request to its routes here:
    a request that needs none of this pays a call and a few string tests."""

    def bind_to_environ(self, environ, server_name=None, subdomain=None):
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if not path.startswith("/") or path.startswith("//"):
            raise NotFound()
        adapter = super().bind_to_environ(environ, "localhost", subdomain)  # not the Host
        if method != method.upper():
            adapter.match()  # a 404 if no route has the path
            raise MethodNotAllowed()
        query_string = environ.get("QUERY_STRING")
        if query_string and path in workloads.NO_QUERY_PATHS:
            adapter.match()  # a 405 if the route does not take the method
            refused = workloads.unknown_parameters(query_string.encode("latin-1"))
            if refused:
                raise UnprocessableEntity(refused)
        return adapter


app.url_map = ReadAsFastAPI()  # before any route is added


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


# The metrics routes last, as in fastapi-asgi.py (where the order has a cost).
@app.get("/status")
def status():
    return app.response_class(sampler.status().model_dump_json(), mimetype="application/json")


@app.get("/stats")
def stats():
    stats_json = sampler.stats_json(query(StatsQuery).last)
    return app.response_class(stats_json, mimetype="application/json")


@app.errorhandler(ValidationError)
def invalid_query(error):
    return {"detail": workloads.query_errors(error)}, 422


@app.errorhandler(database.Unavailable)
def database_unavailable(error):
    return {"detail": str(error)}, 503


@app.errorhandler(UnprocessableEntity)
def refused_parameters(error):
    return {"detail": error.description}, 422


@app.errorhandler(HTTPException)
def http_error(error):
    # Answer in JSON like FastAPI, and list the allowed methods in one order.
    headers = {"Allow": workloads.ALLOW} if error.code == 405 else {}
    return {"detail": error.name}, error.code, headers
