"""Flask with pydantic models: the views validate the query with the query models and
return a response model's model_dump(), which Flask serialises as it does any dict.

Flask has no response models of its own: "typed" here is what flask-wsgi.py does,
the models of workloads.py on both sides of Flask's own request.args and JSON.
Flask's documented way is the plain one (baselines/flask-plain.py).

A baseline, not a product app: it answers the scenarios' requests (/, /json,
/io?ms=, /cpu?n=) with the same bytes as flask-wsgi.py, without its parity layer,
its metrics or its checks of bad input (a bad query is a 500 here).

granian --interface wsgi --port 8080 baselines.flask-typed:app   # from the project's root
"""

import os
import platform
import time
from importlib.metadata import version

from flask import Flask, request

import workloads

FRAMEWORK_VERSION = version("flask")

app = Flask(__name__)
app.json.sort_keys = False  # the models' field order, as in flask-wsgi.py


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
    params = workloads.IoQuery.model_validate(request.args.to_dict())
    time.sleep(params.ms / 1000)
    return workloads.Waited(ms=params.ms).model_dump()


@app.get("/cpu")
def cpu():
    params = workloads.CpuQuery.model_validate(request.args.to_dict())
    return workloads.Primes(n=params.n, primes=workloads.count_primes(params.n)).model_dump()
