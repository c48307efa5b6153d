"""FastAPI (ASGI) app: the same routes and answers as flask-wsgi.py.

granian --interface asgi --port 8081 fastapi-asgi:app
curl http://127.0.0.1:8081/stats
"""

import asyncio
import contextlib
import functools
import os
import platform
from importlib.metadata import version
from typing import Annotated
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

import database
import metrics
import workloads

sampler = metrics.start_sampler()
StatsQuery = metrics.stats_query(sampler.config.slots)
FRAMEWORK_VERSION = version("fastapi")  # read once: a lookup costs 0.7 ms


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    # Once per event loop (under Unit, once per thread): a pool belongs to one loop.
    async with database.event_loop_pool() as pool:
        yield {"pool": pool}


# Flask answers 404 to a trailing slash it has no route for; FastAPI would redirect.
app = FastAPI(
    title="flask-vs-fastapi: FastAPI",
    version=FRAMEWORK_VERSION,
    redirect_slashes=False,
    lifespan=lifespan,
)


class ReadAsFlask:
    """Read a request as Flask does: HEAD as GET without the body (Unit would send it),
    and raw non-ASCII bytes in the query as UTF-8 (Starlette would read them as latin-1).
    Then refuse any parameter to a route that takes none, as flask-wsgi.py does: a
    parameter model on those routes would cost every request 9 us, query or not."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if scope["method"] == "HEAD":
                scope = {**scope, "method": "GET"}
                send = functools.partial(self.send_no_body, send)
            if not scope["query_string"].isascii():
                pairs = workloads.query_pairs(scope["query_string"])
                scope = {**scope, "query_string": urlencode(pairs).encode()}
            if scope["query_string"] and scope["method"] == "GET":
                refused = scope["path"] in workloads.NO_QUERY_PATHS and (
                    workloads.unknown_parameters(scope["query_string"])
                )
                if refused:
                    await JSONResponse({"detail": refused}, 422)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def send_no_body(send, message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)


app.add_middleware(ReadAsFlask)


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


@app.get("/db")
async def db(request: Request) -> database.World:
    return await database.one_world_async(request.state.pool)


@app.get("/queries")
async def queries(
    request: Request, params: Annotated[database.RowsQuery, Query()]
) -> list[database.World]:
    return await database.some_worlds_async(request.state.pool, params.n)


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes(request: Request) -> HTMLResponse:
    return HTMLResponse(await database.fortunes_async(request.state.pool))


@app.get("/updates")
async def updates(
    request: Request, params: Annotated[database.RowsQuery, Query()]
) -> list[database.World]:
    return await database.updated_worlds_async(request.state.pool, params.n)


# The metrics routes come last: Starlette tries the routes in turn, and each one tried
# before a scenario's own costs its every request about 11,000 instructions (with
# benchmarks/instructions.py). /status and /stats are plain `def`, unlike the other
# routes: FastAPI runs them in its threadpool, so a snapshot's psutil reads (and its
# wait of up to 0.1 s just after start) or a long /stats never hold the one event loop
# that every request waits on. Both answer JSON that pydantic made once, rather than a
# model for FastAPI to validate and serialise again: /status is what the comparison polls.
@app.get("/status", response_model=metrics.Snapshot)
def status() -> Response:
    return Response(sampler.status().model_dump_json(), media_type="application/json")


@app.get("/stats", response_model=metrics.Stats)
def stats(params: Annotated[StatsQuery, Query()]) -> Response:
    return Response(sampler.stats_json(params.last), media_type="application/json")


@app.exception_handler(database.Unavailable)
async def database_unavailable(request: Request, error: database.Unavailable) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, 503)


@app.exception_handler(HTTPException)
async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    # List the allowed methods in one order, as Flask does.
    headers = {"Allow": workloads.ALLOW} if error.status_code == 405 else error.headers
    return JSONResponse({"detail": error.detail}, error.status_code, headers)


@app.exception_handler(Exception)
async def server_error(request: Request, error: Exception) -> JSONResponse:
    # Starlette answers an unhandled error in plain text; Flask's handler answers JSON.
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
