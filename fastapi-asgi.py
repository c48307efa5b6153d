"""FastAPI (ASGI) app: the same routes and answers as flask-wsgi.py.

granian --interface asgi --port 8081 fastapi-asgi:app
curl http://127.0.0.1:8081/stats
"""

import asyncio
import os
import platform
from importlib.metadata import version
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

import metrics
import workloads

sampler = metrics.start_sampler()
StatsQuery = metrics.stats_query(sampler.config.slots)
FRAMEWORK_VERSION = version("fastapi")  # read once: a lookup costs 0.7 ms

# Flask answers 404 to a trailing slash it has no route for; FastAPI would redirect.
app = FastAPI(title="flask-vs-fastapi: FastAPI", version=FRAMEWORK_VERSION, redirect_slashes=False)


@app.get("/")
async def hello() -> workloads.Greeting:
    return workloads.Greeting(
        message="Hello from FastAPI",
        framework="fastapi",
        framework_version=FRAMEWORK_VERSION,
        python_version=platform.python_version(),
        interface="asgi",
        pid=os.getpid(),
    )


@app.get("/status")
async def status() -> metrics.Snapshot:
    return sampler.status()


@app.get("/stats")
async def stats(params: Annotated[StatsQuery, Query()]) -> metrics.Stats:
    return sampler.stats(params.last)


@app.get("/json")
async def json_items() -> workloads.ItemList:
    return workloads.items()


@app.get("/io")
async def io(params: Annotated[workloads.IoQuery, Query()]) -> workloads.Waited:
    await asyncio.sleep(params.ms / 1000)
    return workloads.Waited(ms=params.ms)


@app.get("/cpu")
async def cpu(params: Annotated[workloads.CpuQuery, Query()]) -> workloads.Primes:
    return workloads.Primes(n=params.n, primes=workloads.count_primes(params.n))


@app.exception_handler(Exception)
async def server_error(request: Request, error: Exception) -> JSONResponse:
    # Starlette answers an unhandled error in plain text; Flask's handler answers JSON.
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
