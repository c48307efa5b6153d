"""Flask as its documentation teaches: the views return dicts (Flask's documented way).

A baseline, not a product app: it answers the scenarios' requests (/, /json,
/io?ms=, /cpu?n=) with the same bytes as flask-wsgi.py, without its parity layer,
its metrics or its checks of bad input. "APIs with JSON" in Flask's quickstart:
https://flask.palletsprojects.com/en/stable/quickstart/#apis-with-json

granian --interface wsgi --port 8080 baselines.flask-plain:app   # from the project's root
"""

import os
import platform
import time
from importlib.metadata import version

from flask import Flask, request

import workloads

FRAMEWORK_VERSION = version("flask")

app = Flask(__name__)
app.json.sort_keys = False  # the answer's own key order, as in flask-wsgi.py


@app.get("/")
def hello():
    return {
        "message": "Hello from Flask",
        "framework": "flask",
        "framework_version": FRAMEWORK_VERSION,
        "interface": "wsgi",
        "python_version": platform.python_version(),
        "pid": os.getpid(),
    }


@app.get("/json")
def json_items():
    return workloads.plain_items()


@app.get("/io")
def io():
    ms = request.args.get("ms", workloads.IO_MS, type=int)
    time.sleep(ms / 1000)
    return {"ms": ms}


@app.get("/cpu")
def cpu():
    n = request.args.get("n", workloads.CPU_N, type=int)
    return {"n": n, "primes": workloads.count_primes(n)}
