"""One app's own callable, called in-process for a number of requests: what
compare/instructions.py runs under valgrind's callgrind.

    python -m compare.app_driver APP_FILE REQUESTS WARMUP TARGET...   # from the root

Imports APP_FILE (its `app`: a WSGI or an ASGI callable, told apart as uvicorn
does) once. Then, for each TARGET, a forked child sends it WARMUP requests
`GET TARGET` and forks twice more: one grandchild sends nothing more, the other
REQUESTS more, and each prints one JSON line (its pid, the target, its count and
the last answer: status, content-type, body) and exits at once. The two
grandchildren share everything before their fork, import and warm-up included, so
the difference of their instruction counts is the cost of REQUESTS requests.

Requests are handed over as a server would (a WSGI environ; an ASGI scope with
receive and send) but with no server, socket or thread. Every answer must be a
200: the instructions of an error page are not what is counted. No thread but the
main one may run: another's work, on its own clock, would fall into some runs only.

The metrics sampler of the project's apps is stopped as soon as it starts, at
import and again after each fork (which starts it anew), well before its first
sample is due (1 s later): it samples on a clock, so whether a sample fell inside
a run would depend on the machine's speed. A run fails if one did. Its cost per
sample is what benchmarks/sampler_cost.py measures.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import io
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1:8000"  # the one header wrk sends

started_samplers: list = []


class DriverError(RuntimeError):
    """The app could not be driven, or answered other than 200."""


def stop_each_sampler_at_start() -> None:
    """Stop the metrics sampler that the app about to be imported starts, once started,
    and note it, to stop it again after each fork."""
    import metrics

    start_sampler = metrics.start_sampler

    def start_and_note():
        sampler = start_sampler()
        started_samplers.append(sampler)
        stop_samplers()
        return sampler

    metrics.start_sampler = start_and_note


def stop_samplers() -> None:
    for sampler in started_samplers:
        sampler.stop()
        if sampler.samples():
            raise DriverError("the metrics sampler took a sample before it was stopped")


def load_app(app_file: Path):
    """The `app` of a module file, imported with the project's root on sys.path."""
    sys.path.insert(0, str(ROOT))
    stop_each_sampler_at_start()
    spec = importlib.util.spec_from_file_location(app_file.stem, app_file)
    if spec is None or spec.loader is None:
        raise DriverError(f"{app_file} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[app_file.stem] = module
    spec.loader.exec_module(module)
    return module.app


def is_asgi(app) -> bool:
    """Whether `app` is an ASGI callable (a coroutine function), as uvicorn decides."""
    call = app if inspect.isfunction(app) else type(app).__call__
    return inspect.iscoroutinefunction(call)


def wsgi_environ(target: str) -> dict:
    """The environ of `GET target` with a Host header, as a WSGI server builds it."""
    path, _, query = target.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": HOST,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def asgi_scope(target: str) -> dict:
    """The scope of `GET target` with a Host header, as an ASGI server builds it."""
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(b"host", HOST.encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


def wsgi_driver(app, target: str) -> Callable[[int], dict]:
    """A function that calls the WSGI `app` for `GET target` a number of times."""
    template = wsgi_environ(target)
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = headers

    def drive(count: int) -> dict:
        for _ in range(count):
            body = app({**template, "wsgi.input": io.BytesIO()}, start_response)
            try:
                answer["body"] = b"".join(body)
            finally:
                if hasattr(body, "close"):
                    body.close()
            check(answer, target)
        return answer

    return drive


def asgi_driver(app, target: str) -> Callable[[int], dict]:
    """A function that awaits the ASGI `app` for `GET target` a number of times, in turn."""
    template = asgi_scope(target)
    request = {"type": "http.request", "body": b"", "more_body": False}
    answer: dict = {}
    loop = asyncio.new_event_loop()

    async def receive():
        return request

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = [(k.decode(), v.decode()) for k, v in message["headers"]]
            answer["body"] = b""
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    async def requests(count: int) -> dict:
        for _ in range(count):
            await app(dict(template), receive, send)
            check(answer, target)
        return answer

    return lambda count: loop.run_until_complete(requests(count))


def check(answer: dict, target: str) -> None:
    if answer.get("status") != 200:
        raise DriverError(f"GET {target} answered {answer.get('status')}: {answer.get('body')!r}")


def in_child(work: Callable[[], None]) -> None:
    """Run `work` in a forked child and wait for it; fail if it failed."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            stop_samplers()  # the fork started the sampler anew
            work()
        except BaseException as error:
            print(f"app_driver: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)  # no teardown: its cost would depend on the heap left behind
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise DriverError(f"a forked run (pid {pid}) failed")


def count_target(app, target: str, requests: int, warmup: int) -> None:
    """Warm up on `target`, then send 0 and `requests` requests, each in its own child."""
    drive = (asgi_driver if is_asgi(app) else wsgi_driver)(app, target)
    drive(warmup)
    # The counted runs start from a collected heap, so that no full collection made due
    # by the import and the warm-up falls into them. Requests make only young ones due,
    # and those are counted: neither app made a full one due in 30,000 requests of /.
    gc.collect()

    def run(count: int) -> None:
        answer = drive(count)  # drive(0): the loop's fixed cost in both runs alike
        if threading.active_count() != 1:
            threads = [thread.name for thread in threading.enumerate()]
            raise DriverError(f"threads besides the main one ran during the count: {threads}")
        headers = {name.lower(): value for name, value in answer["headers"]}
        line = {
            "pid": os.getpid(),
            "target": target,
            "requests": count,
            "status": answer["status"],
            "content_type": headers.get("content-type"),
            "body": answer["body"].decode("utf-8", "replace"),
        }
        print(json.dumps(line), flush=True)

    for count in (0, requests):
        in_child(lambda count=count: run(count))


def main() -> int:
    app_file, requests, warmup, *targets = sys.argv[1:]
    try:
        app = load_app(Path(app_file))
        for target in targets:
            in_child(lambda target=target: count_target(app, target, int(requests), int(warmup)))
    except DriverError as error:
        print(f"app_driver: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
