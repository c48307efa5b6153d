"""Instructions per request of an app's own callable, counted by valgrind's callgrind:
a figure that no load on the machine can move.

    >>> from compare import instructions
    >>> instructions.per_request(Path("flask-wsgi.py"), ["/", "/json"], requests=200)
    {'/': Counted(per_request=402546.34, status=200, content_type='application/json',
    body='{"message":"Hello from Flask",...'), '/json': Counted(per_request=1210081.43, ...)}

compare/app_driver.py imports the app once under callgrind, warms it up on each
target, then forks two runs that differ only in their count of requests, 0 and
`requests`: their difference, divided by `requests`, is what one request costs.
Python's hash seed is fixed, so that the interpreter does the same work each time.

What the figure counts: the framework, the app and the interpreter running them,
from the server's hand-over (a WSGI environ, an ASGI scope) to the answer's last
byte, with the garbage collections the requests make due. What it leaves out: the
server (parsing, sockets, granian's or Unit's own work, its task per request), the
kernel (system calls are one instruction each), waiting, the metrics sampler
(stopped: benchmarks/sampler_cost.py measures it), and the cost of an instruction
(cache misses, branch mispredictions): two apps with the same count may still take
different times.

A count repeats to within 0.02% here, on a loaded machine too. What it also follows
is the heap the import leaves, where pymalloc's pools and dicts stand: the same app
and target counted beside other targets (as above: 403,762 for / in the benchmark's
four), or after a change that touches no request's code, may move by up to 1% (2% on
/cpu). Compare apps counted alike.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compare.callgrind_out import summary

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 50  # requests before counting: caches filled, lazy set-up done
HASH_SEED = "0"
# The counts that reports quote, written by benchmarks/instructions.py --json: a count does
# not depend on the load, so one committed file serves every comparison.
COMMITTED = ROOT / "docs" / "instructions.json"
# Each app's response style: the baselines' in their names, the project's apps typed
# (flask-wsgi.py dumps workloads' models; fastapi-asgi.py returns them).
STYLES = ("plain", "typed")
PROJECT_STYLE = "typed"


class InstructionsError(RuntimeError):
    """valgrind is missing, or the app could not be counted."""


@dataclass(frozen=True)
class Counted:
    """One target of one app: instructions per request, and the answer it gave."""

    per_request: float
    status: int
    content_type: str | None
    body: str


def per_request(
    app_file: Path,
    targets: list[str],
    requests: int,
    warmup: int = WARMUP,
    python: str = sys.executable,
) -> dict[str, Counted]:
    """Instructions per `GET target` request of `app_file`'s app, for each of `targets`,
    run by `python` (by default, this one)."""
    if shutil.which("valgrind") is None:
        raise InstructionsError("valgrind is not on PATH (Debian: apt-get install valgrind)")
    if requests < 1 or warmup < 1:
        raise InstructionsError(f"requests ({requests}) and warmup ({warmup}) must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="callgrind-") as out_dir:
        callgrind = ["valgrind", "--tool=callgrind", "--quiet"]
        command = [*callgrind, f"--callgrind-out-file={out_dir}/callgrind.out.%p"]
        command += driver_command(app_file, targets, requests, warmup, python)
        done = subprocess.run(command, cwd=ROOT, env=driver_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise InstructionsError(f"{app_file} could not be counted:\n{done.stderr.strip()}")
        runs = [json.loads(line) for line in done.stdout.splitlines()]
        totals = {run["pid"]: summary(Path(out_dir, f"callgrind.out.{run['pid']}")) for run in runs}
    counted = {}
    for target in targets:
        none, some = (
            next(run for run in runs if run["target"] == target and run["requests"] == count)
            for count in (0, requests)
        )
        counted[target] = Counted(
            per_request=(totals[some["pid"]] - totals[none["pid"]]) / requests,
            status=some["status"],
            content_type=some["content_type"],
            body=some["body"],
        )
    return counted


def driver_command(
    app_file: Path, targets: list[str], requests: int, warmup: int, python: str = sys.executable
) -> list[str]:
    """compare/app_driver.py's command line, to run from the project's root (ROOT)."""
    app = str(Path(app_file).resolve())
    return [python, "-m", "compare.app_driver", app, str(requests), str(warmup), *targets]


def driver_env() -> dict[str, str]:
    """The driver's environment: this one, with Python's hash seed fixed."""
    return {**os.environ, "PYTHONHASHSEED": HASH_SEED}


def committed(path: Path = COMMITTED) -> dict | None:
    """docs/instructions.json as benchmarks/instructions.py wrote it; None if there is none."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
