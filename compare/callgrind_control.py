"""Processes running under callgrind, zeroed and dumped while they run, through vgdb (what
callgrind_control does): the counts of a window of requests, taken from every process of a
server at once.

    callgrind = Callgrind(folder)
    # run the server under: valgrind + callgrind.options(), then
    callgrind.pids = callgrind.running()
    callgrind.zero()
    ...                                  # the requests
    profiles = callgrind.dump()          # {pid: Profile}

vgdb reaches a process blocked in a system call by ptrace: root, or the same user where
ptrace is allowed. valgrind names a process's pipes after the user and host that its
environment names (LOGNAME or USER, HOST or HOSTNAME), as it finds them each time it
looks, and vgdb looks for them by its own: Unit's processes write their titles over their
environment, so that a name made at the start is no longer found, and valgrind then ends
the process. So neither the processes nor vgdb may have any of these set (NAMING): every
name then says ???.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

from compare.callgrind_out import Profile, read_profile

NAMING = ("LOGNAME", "USER", "HOST", "HOSTNAME")
WITHIN_S = 120.0  # one zero or dump, under valgrind on a busy machine


class ControlError(RuntimeError):
    """vgdb could not reach a process, or its dump is missing."""


def without_naming(environ: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name not in NAMING}


class Callgrind:
    """The processes of one run under callgrind, their out files in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.prefix = folder / "vgdb"
        self.parts: Counter[int] = Counter()
        self.pids: list[int] = []

    def options(self) -> list[str]:
        """valgrind's options: callgrind, in every process started or forked."""
        return [
            "--tool=callgrind",
            "--trace-children=yes",
            "--instr-atstart=no",
            f"--callgrind-out-file={self.folder}/callgrind.out.%p",
            f"--vgdb-prefix={self.prefix}",
        ]

    def running(self) -> list[int]:
        """The processes running under valgrind with these options now."""
        listed = subprocess.run(
            ["vgdb", f"--vgdb-prefix={self.prefix}", "-l"],
            env=without_naming(dict(os.environ)),
            capture_output=True,
            text=True,
        ).stdout
        return sorted(int(pid) for pid in re.findall(r"--pid=(\d+)", listed))

    def instrument(self) -> None:
        self.command("instrumentation on")

    def zero(self) -> None:
        self.command("zero")

    def dump(self) -> dict[int, Profile]:
        """Every process's counts since its last zero, read and their files removed."""
        self.command("dump")
        profiles = {}
        for pid in self.pids:
            self.parts[pid] += 1
            path = self.folder / f"callgrind.out.{pid}.{self.parts[pid]}"
            if not path.exists():
                raise ControlError(f"process {pid} wrote no dump {path.name}")
            profiles[pid] = read_profile(path)
            path.unlink()
        return profiles

    def command(self, command: str) -> None:
        """`command` to every process at once; wait until each has done it."""
        sent = {
            pid: subprocess.Popen(
                ["vgdb", f"--vgdb-prefix={self.prefix}", f"--pid={pid}", command],
                env=without_naming(dict(os.environ)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for pid in self.pids
        }
        failed = []
        for pid, process in sent.items():
            try:
                _, said = process.communicate(timeout=WITHIN_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                failed.append(f"{pid}: no answer within {WITHIN_S:g} s")
                continue
            if process.returncode != 0:
                failed.append(f"{pid}: {(said.strip().splitlines() or ['no word'])[-1]}")
        if failed:
            raise ControlError(f"vgdb could not {command} every process ({'; '.join(failed)})")
