"""How a benchmark ends when it fails after its flags were read, for a reason it can name:
the apps not launched, a setting or the database refused, a load tool missing or failed.
One line on stderr, `NAME.py: reason`, and compare.sh's exit code for that failure
(compare/exits.py), not a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

from compare.exits import EXIT_LOAD_TOOL, EXIT_TARGET
from compare.loadtools import LoadToolError
from serve.exits import Refused
from serve.launch import LaunchError


def run_benchmark(main: Callable[[], int | None]) -> int:
    """main()'s exit code (None: 0), or a failure it names said in one line, and its code
    (130 for Ctrl-C, as a shell reports it)."""
    # Ctrl-C stops the benchmark and what it launched even where SIGINT came in ignored
    # (a job started with & by a non-interactive shell), as compare.sh does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return main() or 0
    except LaunchError as error:
        reason, code = error.reason, EXIT_TARGET
    except Refused as error:
        reason, code = str(error), EXIT_TARGET
    except LoadToolError as error:
        reason, code = str(error), EXIT_LOAD_TOOL
    except KeyboardInterrupt:  # Ctrl-C: whatever main() launched has been stopped
        reason, code = "interrupted", 128 + signal.SIGINT
    print(f"{Path(sys.argv[0]).name}: {(reason.splitlines() or [''])[0]}", file=sys.stderr)
    return code
