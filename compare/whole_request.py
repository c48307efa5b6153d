"""Instructions per request of the whole serving stack, server included, counted by
valgrind's callgrind in every process that ./up.sh starts; and the kernel's side of the
same requests: system calls and context switches.

    counted, launch = count(Stack("granian"), [Case("hello", "/", 1)], Counting(), log)
    counted[Case("hello", "/", 1)]["fastapi"].per_request      # 420,153.7

The instructions (`count`): up.sh serves both apps as it always does (conf.json, the same
processes and threads), with SERVER_PREFIX running each server under callgrind, every
process it forks or execs included: granian's master and workers; Unit's main,
controller, router, prototypes and application processes (compare/stack.py). The apps'
sampler waits an hour between samples (METRICS_INTERVAL), so that none falls in a count,
and Python's hash seed is fixed. Once both apps serve, every process is zeroed and dumped
once (compare/callgrind_out.py says why). Then for each case, each app in turn (the first
app alternating):

  - a probe: 10 requests counted, for what one costs;
  - a warm-up of about WARMUP_INSTRUCTIONS, at most `warmup` requests (the adaptive
    interpreter settles, lazy set-up is done);
  - three windows of N requests each, N about WINDOW_INSTRUCTIONS' worth (from
    MIN_REQUESTS to `requests`). A window opens its connections and sends one request on
    each (made, accepted and primed), zeroes every process, sends its N requests, and
    dumps every process: the instructions of the app's own processes and of the server's
    shared ones are the window's. The median window, per request, is the figure: a
    garbage collection of the old generation (up to a few million instructions, made due
    by what an earlier case left behind, never by a steady stream of requests) falls in
    one window and is left out with it. What a window costs apart from its requests is
    vgdb's zero and dump, which wake each process: about 3,000 instructions each, as the
    other app's idle processes show in every window.

The other app's processes are dumped too, idle (`idle_others`), and once per launch a
window with no request at all, as long as a counted one, shows what runs on its own
(`background`).

A count does not follow the machine's speed, but it can follow its load: a server whose
threads race for each request (Unit's ASGI app runs one event loop per thread, and each
loop wakes for a request one of them takes) does more of that racing when its threads
wait longer for a core. So a count is taken under a stated condition: `contended`, a busy
loop on every core while counting (busy_cores), which other load then barely moves, or
alone, which holds only on a quiet machine.

The kernel's side (`kernel_side`): the same cases and sizes against a launch with no
prefix, in two windows each: one reading every process's context switches before and
after (from /proc), one under strace -c counting its system calls (strace's stops switch
contexts, so it has a window of its own).

The apps run as whoever counts (APP_USER), not as nobody: vgdb must reach every process
(compare/callgrind_control.py), and a process that drops root after valgrind started it
can no longer open valgrind's pipes. Instructions do not depend on the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compare import answers
from compare.callgrind_control import NAMING, Callgrind
from compare.callgrind_out import Profile
from compare.keepalive import ClientError, Connections
from compare.kernel_side import SystemCalls, context_switches, switches_since
from compare.stack import StackProcess, stack_processes
from serve.launch import Launch, launch
from serve.supervise import dies_with_parent

PROBE = 10  # requests counted first, for what one costs
WARMUP_INSTRUCTIONS = 150e6
WINDOW_INSTRUCTIONS = 100e6  # in each window
WINDOWS = 3
MIN_REQUESTS = 50  # in a window, and a warm-up: however long each request
READY_WITHIN_S = 900  # both apps imported under callgrind, on a busy machine
# The modules APPS names for each style: the project's apps, or the baselines as
# ./compare.sh --style serves them (baselines/observed: /status added, nothing else).
STYLE_APPS = {
    "project": None,
    "plain": "baselines.observed.flask_plain,baselines.observed.fastapi_plain",
    "typed": "baselines.observed.flask_typed,baselines.observed.fastapi_typed",
}
APPS = ("flask", "fastapi")
# Where an object file's instructions go in the split of a worker's count.
KINDS = ("server", "interpreter", "extensions", "system")


class CountError(RuntimeError):
    """An answer was wrong, or the stack could not be counted."""


@dataclass(frozen=True)
class Case:
    scenario: str
    target: str
    connections: int


@dataclass(frozen=True)
class Counting:
    requests: int = 200  # the most in a window
    warmup: int = 300  # the most in the warm-up


@dataclass(frozen=True)
class Stack:
    """What up.sh serves: under which server, which apps (a style), with what else set."""

    server: str  # granian or unit
    style: str = "project"  # a key of STYLE_APPS
    environment: dict[str, str] = field(default_factory=dict)  # VENV, UNITD, DATABASE...

    def env(self) -> dict[str, str | None]:
        return {
            "SERVER": self.server,
            "APP_USER": pwd.getpwuid(os.getuid()).pw_name,
            "METRICS_INTERVAL": "3600",
            "PYTHONHASHSEED": "0",
            "APPS": STYLE_APPS[self.style],
            **self.environment,
        }


@dataclass
class Counted:
    """One app's count for one case."""

    warmup: int  # the requests of its warm-up
    requests: list[int]  # each window's requests: N
    instructions: list[int]  # each window's: the app's own processes and the shared ones
    by_role: dict[str, int]  # all windows, per role (worker, router, master, ...)
    by_kind: dict[str, int]  # all windows: the workers' by KINDS, the server's processes whole
    idle_others: int  # the other app's processes in the same windows

    @property
    def each_window(self) -> list[float]:
        """Each window's instructions per request."""
        return [c / n for c, n in zip(self.instructions, self.requests, strict=True)]

    @property
    def per_request(self) -> float:
        """The median window's instructions per request."""
        return statistics.median(self.each_window)


@dataclass
class Failed:
    """A case that could not be counted for an app: a wrong answer, or no answer in time.
    The count goes on with the next."""

    reason: str


@dataclass
class KernelCounted:
    """One app's kernel side for one case, per role, for `requests` requests."""

    requests: int
    switches: dict[str, tuple[int, int]]  # voluntary, involuntary
    calls: dict[str, dict[str, int]]  # per system call


def object_kind(path: str) -> str:
    """Which of KINDS an object file's instructions are: the server's own code (granian's
    Rust, Unit's Python module), the interpreter, a compiled extension module (or a
    library one brought), or the system's (the C library, the loader, what has no file)."""
    name = Path(path).name
    if name.startswith("_granian") or name.endswith(".unit.so") or name == "unitd":
        return "server"
    if name.startswith("libpython") or name.startswith("python3"):
        return "interpreter"
    if "/site-packages/" in path or "/lib-dynload/" in path:
        return "extensions"
    return "system"


def kinds(profile: Profile) -> Counter[str]:
    """A worker's count split by KINDS: the cost lines' shares, scaled to its count (the
    lines may carry a little of what ran before the zero)."""
    lines: Counter[str] = Counter()
    for path, instructions in profile.by_object.items():
        lines[object_kind(path)] += instructions
    total = sum(lines.values())
    if not total:
        return Counter()
    return Counter({kind: round(n * profile.instructions / total) for kind, n in lines.items()})


def check_answers(case: Case, app: str, got: list[answers.Answer]) -> None:
    for answer in got:
        problem = answers.problem(case.scenario, case.target, app, answer)
        if problem:
            raise CountError(f"{app}: {problem}")


def window(
    port: int,
    case: Case,
    app: str,
    requests: int,
    before: Callable[[], object] = lambda: None,
    after: Callable[[], object] = lambda: None,
) -> None:
    """Connections opened and primed, `before()`, the requests, `after()`; every answer
    checked."""

    async def run() -> list[answers.Answer]:
        async with Connections(port, case.connections) as connections:
            check_answers(case, app, await connections.send(case.target, case.connections))
            await asyncio.to_thread(before)
            got = await connections.send(case.target, requests)
            await asyncio.to_thread(after)
        return got

    check_answers(case, app, asyncio.run(run()))


def sized(budget: float, per_request: float, most: int, connections: int) -> int:
    """Requests worth about `budget` instructions, from MIN_REQUESTS (two per connection at
    the least) to `most`."""
    fewest = max(MIN_REQUESTS, 2 * connections)
    return min(most, max(fewest, round(budget / max(per_request, 1.0))))


class CountedLaunch:
    """One launch of a Stack under callgrind: its processes, and the windows counted."""

    def __init__(self, apps: Launch, callgrind: Callgrind):
        self.apps = apps
        self.callgrind = callgrind
        self.processes = {p.pid: p for p in stack_processes(apps)}
        callgrind.pids = callgrind.running()
        for pid in callgrind.pids:
            self.processes.setdefault(pid, StackProcess(pid, "other", None))
        callgrind.instrument()
        callgrind.zero()
        callgrind.dump()  # leaves out what a thread did across the first zero
        self.background: dict = {}

    def mine(self, app: str, profiles: dict[int, Profile]) -> dict[int, Profile]:
        """The profiles of the app's own processes and of the shared ones."""
        return {pid: p for pid, p in profiles.items() if self.processes[pid].app in (None, app)}

    def window(self, app: str, case: Case, requests: int) -> dict[int, Profile]:
        profiles: dict[int, Profile] = {}
        window(
            self.apps.ports[app],
            case,
            app,
            requests,
            self.callgrind.zero,
            lambda: profiles.update(self.callgrind.dump()),
        )
        return profiles

    def count(self, app: str, case: Case, counting: Counting) -> Counted:
        probe = self.window(app, case, PROBE)
        per_request = sum(p.instructions for p in self.mine(app, probe).values()) / PROBE
        warmup = sized(WARMUP_INSTRUCTIONS, per_request, counting.warmup, case.connections)
        window(self.apps.ports[app], case, app, warmup)
        n = sized(WINDOW_INSTRUCTIONS, per_request, counting.requests, case.connections)
        started = time.monotonic()
        windows = [(n, self.window(app, case, n)) for _ in range(WINDOWS)]
        if not self.background:
            self.background = self.idle((time.monotonic() - started) / WINDOWS)
        return self.summed(app, warmup, windows)

    def idle(self, seconds: float) -> dict:
        """Every process's instructions in `seconds` with no request at all."""
        self.callgrind.zero()
        time.sleep(seconds)
        profiles = self.callgrind.dump()
        return {
            "seconds": round(seconds, 1),
            "instructions": sum(p.instructions for p in profiles.values()),
        }

    def summed(
        self, app: str, warmup: int, windows: list[tuple[int, dict[int, Profile]]]
    ) -> Counted:
        instructions = []
        by_role: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        idle_others = 0
        for _, profiles in windows:
            mine = self.mine(app, profiles)
            idle_others += sum(p.instructions for pid, p in profiles.items() if pid not in mine)
            instructions.append(sum(p.instructions for p in mine.values()))
            for pid, profile in mine.items():
                role = self.processes[pid].role
                by_role[role] += profile.instructions
                if role == "worker":
                    by_kind.update(kinds(profile))
                else:  # the server's own processes: Unit's, granian's master
                    by_kind["server"] += profile.instructions
        return Counted(
            warmup=warmup,
            requests=[requests for requests, _ in windows],
            instructions=instructions,
            by_role=dict(by_role),
            by_kind=dict(by_kind),
            idle_others=idle_others,
        )


@contextlib.contextmanager
def busy_cores(contended: bool) -> Iterator[None]:
    """With `contended`, a busy loop on every core this process may use while the block
    runs: the stack then competes for its cores as it would with any other load, so that
    what else runs on the machine adds little."""
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        for _ in (os.sched_getaffinity(0) if contended else ())
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def count(
    stack: Stack,
    cases: list[Case],
    counting: Counting,
    log: Path,
    contended: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[dict[Case, dict[str, Counted | Failed]], dict]:
    """Each case's count per app (with `contended`, while busy_cores), and what the launch
    was: its processes and its background (the instructions of a window with no request)."""
    folder = Path(tempfile.mkdtemp(prefix="whole-request-"))
    callgrind = Callgrind(folder)
    env: dict[str, str | None] = {
        **stack.env(),
        "SERVER_PREFIX": shlex.join(["valgrind", *callgrind.options()]),
        "READY_WITHIN_S": str(READY_WITHIN_S),
        **dict.fromkeys(NAMING),
    }
    try:
        with launch(log, env) as apps, busy_cores(contended):
            counted_launch = CountedLaunch(apps, callgrind)
            counted: dict[Case, dict[str, Counted | Failed]] = {}
            for index, case in enumerate(cases):
                counted[case] = {}
                for app in APPS if index % 2 == 0 else APPS[::-1]:
                    progress(f"{case.target} on {case.connections} connection(s), {app}")
                    try:
                        counted[case][app] = counted_launch.count(app, case, counting)
                    except (CountError, ClientError) as error:
                        progress(f"  not counted: {error}")
                        counted[case][app] = Failed(str(error))
            return counted, {
                "processes": [vars(p) for p in counted_launch.processes.values()],
                "background": counted_launch.background,
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kernel_side(
    stack: Stack,
    sizes: dict[Case, dict[str, Counted | Failed]],
    log: Path,
    contended: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[Case, dict[str, KernelCounted | Failed]]:
    """Each case's system calls and context switches per app, natively, with the warm-up
    and the N of its count (with `contended`, while busy_cores); none where it has none."""
    found: dict[Case, dict[str, KernelCounted | Failed]] = {}
    with launch(log, stack.env()) as apps, busy_cores(contended):
        processes = stack_processes(apps)
        for index, (case, counted) in enumerate(sizes.items()):
            found[case] = {}
            for app in APPS if index % 2 == 0 else APPS[::-1]:
                progress(f"{case.target} on {case.connections} connection(s), {app}")
                mine = [p for p in processes if p.app in (None, app)]
                if isinstance(counted[app], Failed):
                    continue
                try:
                    found[case][app] = kernel_case(apps.ports[app], case, app, counted[app], mine)
                except (CountError, ClientError) as error:
                    progress(f"  not counted: {error}")
                    found[case][app] = Failed(str(error))
    return found


def kernel_case(
    port: int, case: Case, app: str, counted: Counted, mine: list[StackProcess]
) -> KernelCounted:
    """One app's context switches and system calls in windows of the count's N."""
    pids = [p.pid for p in mine]
    requests = counted.requests[0]
    window(port, case, app, counted.warmup)
    read: list[dict] = []

    def read_switches() -> None:
        read.append(context_switches(pids))

    window(port, case, app, requests, read_switches, read_switches)
    calls = SystemCalls(pids)
    window(port, case, app, requests, calls.__enter__, calls.__exit__)
    return by_role(mine, requests, switches_since(*read), calls)


def by_role(
    mine: list[StackProcess],
    requests: int,
    switched: dict[int, tuple[int, int]],
    calls: SystemCalls,
) -> KernelCounted:
    switches: dict[str, tuple[int, int]] = {}
    per_call: dict[str, Counter[str]] = {}
    for process in mine:
        voluntary, involuntary = switched.get(process.pid, (0, 0))
        v0, i0 = switches.get(process.role, (0, 0))
        switches[process.role] = (v0 + voluntary, i0 + involuntary)
        per_call.setdefault(process.role, Counter()).update(calls.counts.get(process.pid, {}))
    return KernelCounted(
        requests=requests,
        switches=switches,
        calls={role: dict(counted) for role, counted in per_call.items()},
    )
