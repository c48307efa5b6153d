"""The work behind each route that both apps do alike, and nothing else, as a WSGI app that
compare/app_driver.py counts in-process: what the whole request's split calls the app's own
code. Each route builds its answer's model (the greeting, the 20 items, the primes) and
leaves its serialising to the framework; /io's is its wait, which takes no instruction.
GET /none does no work at all: its count is the driver's own, less which the others'
counts are the work.

    instructions.per_request(ROOT / "compare/own_work.py", ["/none", "/json"], 200)
"""

import os
import platform
from urllib.parse import parse_qs

import workloads


def work(path: str, query_string: str) -> object:
    if path == "/":
        return workloads.Greeting(
            message="Hello from Flask",
            framework="flask",
            framework_version="0",
            interface="wsgi",
            python_version=platform.python_version(),
            pid=os.getpid(),
        )
    if path == "/json":
        return workloads.items()
    if path == "/cpu":  # its n read here: the others' queries cost them nothing
        n = int(parse_qs(query_string).get("n", [workloads.CPU_N])[0])
        return workloads.Primes(n=n, primes=workloads.count_primes(n))
    return None  # /io waits, /none does nothing


def app(environ, start_response):
    work(environ["PATH_INFO"], environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]
