"""FastAPI as its documentation teaches: the handlers declare their query and answer as
pydantic models (a query parameter model, a return annotation), and FastAPI validates
the one and serialises the other with pydantic-core (FastAPI's documented way).

https://fastapi.tiangolo.com/tutorial/response-model/ and
https://fastapi.tiangolo.com/tutorial/query-param-models/

A baseline, not a product app: it answers the scenarios' requests (/, /json,
/io?ms=, /cpu?n=) with the same bytes as fastapi-asgi.py, without its parity layer,
its metrics or its error handlers.

granian --interface asgi --port 8081 baselines.fastapi-typed:app   # from the project's root
"""

import asyncio
import os
import platform
from importlib.metadata import version
from typing import Annotated

from fastapi import FastAPI, Query

import workloads

FRAMEWORK_VERSION = version("fastapi")

app = FastAPI()


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
