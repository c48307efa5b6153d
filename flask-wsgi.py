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
from werkzeug.exceptions import HTTPException

import metrics
import workloads

sampler = metrics.start_sampler()
StatsQuery = metrics.stats_query(sampler.config.slots)
FRAMEWORK_VERSION = version("flask")  # read once: a lookup costs 0.7 ms

app = Flask(__name__)
app.json.sort_keys = False  # keep the models' field order, as FastAPI does


def query(model):
    """The query string validated by `model`; the last of repeated keys wins, as in Starlette."""
    return model.model_validate(dict(request.args.items(multi=True)))


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
    return sampler.status().model_dump(mode="json")


@app.get("/stats")
def stats():
    return sampler.stats(query(StatsQuery).last).model_dump(mode="json")


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


@app.errorhandler(ValidationError)
def invalid_query(error):
    detail = [{**err, "loc": ["query", *err["loc"]]} for err in error.errors(include_url=False)]
    return {"detail": detail}, 422


@app.errorhandler(HTTPException)
def http_error(error):
    # Keep headers such as Allow on 405, but answer in JSON like FastAPI.
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return {"detail": error.name}, error.code, headers
