"""What a callgrind out file says: the instructions it counts, and where they ran.

    >>> profile = read_profile(Path("callgrind.out.4242.3"))
    >>> profile.instructions, profile.by_object["/usr/lib/x86_64-linux-gnu/libc.so.6"]
    (89338373, 2265052)

A file holds one dump of one process: at its exit, or when asked (vgdb's `dump`), of
what it ran since its start or its last `zero`. Its `summary:` line is what the process
executed in that time; its cost lines, each under the object (`ob=`) of the function it
is in, say where. A cost line right after a `calls=` line is the call's inclusive cost,
already counted in the callee's own lines: it is not added again. The cost lines sum to
the `totals:` line, which can exceed the summary in the first dump after a `zero`, when a
thread was inside a function across it: compare/whole_request.py dumps once first, to
leave that out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# `ob=(3) /usr/lib/libc.so.6` names object 3 and enters it; `ob=(3)` enters it again.
COMPRESSED = re.compile(r"\((\d+)\)(?: (.*))?")


class CallgrindFileError(RuntimeError):
    """The file is not a whole callgrind out file."""


@dataclass(frozen=True)
class Profile:
    """One dump of one process."""

    pid: int
    part: int  # 1 for the first dump of the process, and so on; 0 where the file has none
    instructions: int  # the summary: executed since the start or the last zero
    by_object: dict[str, int]  # instructions per object file, from the cost lines


def summary(path: Path) -> int:
    """The instructions the file counts: its `summary:` line (older files: `totals:`)."""
    with path.open() as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("summary", "totals"):
                return int(value.split()[0])
    raise CallgrindFileError(f"{path} has no summary line")


def read_profile(path: Path) -> Profile:
    """The file's count, and its cost lines summed per object file."""
    header: dict[str, str] = {}
    names: dict[str, str] = {}
    by_object: Counter[str] = Counter()
    positions = 1
    event = 0  # the column of Ir among the events
    current = "???"
    call_cost_next = False
    with path.open() as lines:
        for line in lines:
            first = line[:1]
            if first.isdigit() or first in "+-*":
                if call_cost_next:
                    call_cost_next = False
                    continue
                fields = line.split()
                if len(fields) > positions + event:
                    by_object[current] += int(fields[positions + event])
                continue
            key, sep, value = line.rstrip("\n").partition("=")
            if sep and key in ("ob", "cob"):
                found = COMPRESSED.fullmatch(value)
                if found is None:  # a file written without name compression
                    name = value
                else:
                    if found[2]:
                        names[found[1]] = found[2]
                    name = names.get(found[1], "???")
                if key == "ob":
                    current = name
            elif sep and key == "calls":
                call_cost_next = True
            elif not sep:
                key, sep, value = line.partition(":")
                if sep:
                    header[key] = value.strip()
                    if key == "positions":
                        positions = len(value.split())
                    elif key == "events":
                        event = value.split().index("Ir")
    if "summary" not in header and "totals" not in header:
        raise CallgrindFileError(f"{path} is not a whole callgrind out file (no summary)")
    return Profile(
        pid=int(header.get("pid", 0)),
        part=int(header.get("part", 0)),
        instructions=int(header.get("summary", header.get("totals", "0")).split()[0]),
        by_object=dict(by_object),
    )
