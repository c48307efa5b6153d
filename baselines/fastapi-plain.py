"""FastAPI with dicts: the handlers take plain query parameters and return dicts, which
FastAPI walks with jsonable_encoder before it serialises them.

FastAPI's documented way is the typed one (baselines/fastapi-typed.py); this is its
first steps: https://fastapi.tiangolo.com/tutorial/first-steps/ and
https://fastapi.tiangolo.com/tutorial/query-params/

A baseline, not a product app: it answers the scenarios' requests (/, /json,
/io?ms=, /cpu?n=) with the same bytes as fastapi-asgi.py, without its parity layer,
its metrics or its error handlers.

granian --interface asgi --port 8081 baselines.fastapi-plain:app   # from the project's root
"""

import asyncio
import os
import platform
from importlib.metadata import version

from fastapi import FastAPI

import workloads

FRAMEWORK_VERSION = version("fastapi")

app = FastAPI()


@app.get("/")
async def hello():
    return {
        "message": "Hello from FastAPI",
        "framework": "fastapi",
        "framework_version": FRAMEWORK_VERSION,
        "interface": "asgi",
        "python_version": platform.python_version(),
        "pid": os.getpid(),
    }


@app.get("/json")
async def json_items():
    return workloads.plain_items()


@app.get("/io")
async def io(ms: int = workloads.IO_MS):
    await asyncio.sleep(ms / 1000)
    return {"ms": ms}


@app.get("/cpu")
async def cpu(n: int = workloads.CPU_N):
    return {"n": n, "primes": workloads.count_primes(n)}
