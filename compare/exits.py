"""compare.sh's exit codes, each with what it means: --help lists them from here."""

from __future__ import annotations

import textwrap

EXIT_DONE = 0
EXIT_BAD_FLAGS = 2
EXIT_TARGET = 3
EXIT_LOAD_TOOL = 4
EXIT_ERRORS = 5
EXIT_CODES = {
    EXIT_DONE: "done",
    EXIT_BAD_FLAGS: "a bad flag or value, named in one line",
    EXIT_TARGET: "a target is unreachable, is not one of these apps, both URLs serve the same"
    " app (or, with --same-app, not that app, or one instance), the apps cannot be launched,"
    " --pin cannot keep the load tool on cores of its own, or the database scenarios have"
    " no database (it says how to get one)",
    EXIT_LOAD_TOOL: "the load tool is missing (it says how to install it) or failed",
    EXIT_ERRORS: "a run's errors and non-2xx answers passed --max-error-rate (the report is"
    " still written, and says which run)",
}
# Stopped by signal N, as a shell reports it: a launch is stopped on the way out.
EXIT_SIGNAL_BASE = 128
INTERRUPTED = (
    "stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 a closed terminal); no report written"
)


def exit_codes() -> str:
    """The exit codes as --help lists them, each meaning wrapped under its code."""
    rows = [*EXIT_CODES.items(), (f"{EXIT_SIGNAL_BASE}+N", INTERRUPTED)]
    return "exit codes:\n" + "\n".join(
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<7}", subsequent_indent=" " * 9)
        for code, meaning in rows
    )
