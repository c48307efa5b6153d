"""What a comparison runs, and in which order.

Each repeat (with --launch, a launch of both apps of its own; against running apps, a
round against the same launch) runs, at each --workers level:

1. each app idle for --duration: no request, the cost line's first point;
2. per scenario: a closed-loop warm-up of each app (--warmup), a closed-loop saturation
   run per --connections level (capacity), then an open-loop run at each fixed rate,
   lowest first.

Each repeat sets its own rates from its own capacities: --fractions of the lower of the
two apps' capacity in that repeat, rounded to three figures (or --rate as given, the same
in every repeat), the same for both apps. Capacity moves by up to 60% from one launch to
the next, so rates set once would land at saturation in a slow launch and at a third of
it in a fast one; set per launch, each fraction means the same load in every launch.
openloop's own floor is measured at the first repeat's rates, against a trivial server on
the apps' cores.

The two apps take turns in ABBA order: within a repeat the pairs of runs alternate
Flask-FastAPI, FastAPI-Flask, FastAPI-Flask, Flask-FastAPI..., and each repeat starts one
step further along, so that neither app always goes first, in a repeat or in a pair.
Both runs of a pair at a fixed rate get the same random arrivals (the same seed). With
--launch, the apps also swap their places in up.sh (ports, and which server starts first)
every second launch (compare/__main__.py's placed()).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import httpx2

from compare import loadtools
from compare.figures import Setting, capacity, of
from compare.floor import measure_floor
from compare.measure import SETTLE_S, load_argv, measure, run_load
from compare.numbers import number
from compare.plan import Plan
from compare.run import Level, Run
from compare.targets import APPS

# What a run costs beside its load (/status before and after, /stats, the load tool's
# start), a launch of both apps with its stop, and a floor's trivial server: measured on a
# busy 2-core machine under granian (12 launches of the default plan: 1,248 s, of which
# 1,184 s of load).
RUN_OVERHEAD_S = 0.2
LAUNCH_S = 3.0
FLOOR_OVERHEAD_S = 1.0


def turn(pair: int, repeat: int) -> tuple[str, str]:
    """The apps' order in a pair of runs: ABBA along the pairs, one step on per repeat."""
    return APPS if (pair + repeat) % 4 in (0, 3) else (APPS[1], APPS[0])


def rounded(rate: float) -> float:
    """A rate to three significant figures: 2,468.25 is 2,470."""
    return float(f"{rate:.3g}")


def planned_seconds(plan: Plan) -> tuple[float, float]:
    """The seconds of load the plan asks for, and about how long the rest takes."""
    rates = len(plan.rates or plan.fractions)
    per_setting = 2 * (plan.warmup_s + (len(plan.connections) + rates) * plan.duration_s)
    per_repeat = 2 * plan.duration_s + len(plan.scenarios) * per_setting
    floors = len(plan.scenarios) * rates * plan.duration_s  # the first repeat's
    levels = len(plan.workers) * len(plan.pool_sizes or [None])
    load_s = levels * (plan.repeats * per_repeat + floors)
    runs = levels * plan.repeats * 2 * (1 + len(plan.scenarios) * (len(plan.connections) + rates))
    rest_s = runs * RUN_OVERHEAD_S + len(plan.scenarios) * rates * FLOOR_OVERHEAD_S * levels
    rest_s += levels * plan.repeats * 2 * 2 * SETTLE_S  # each idle run's, either side
    if plan.launch:
        rest_s += levels * plan.repeats * LAUNCH_S
    return load_s, rest_s


class Procedure:
    """Every run of the comparison, in order, with the rates and floors they were set."""

    def __init__(self, plan: Plan, origin: float, advance: Callable[[float, str], None]):
        self.plan, self.origin, self.advance = plan, origin, advance
        self.runs: list[Run] = []
        # Per setting and repeat: (rate, fraction).
        self.rates: dict[tuple[Setting, int], list[tuple[float, float | None]]] = {}
        self.floors: dict[Setting, dict[float, loadtools.LoadResult]] = {}
        self.notes: list[str] = []
        self.seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(2**32)

    def repeat(
        self,
        repeat: int,
        client: httpx2.Client,
        urls: dict[str, str],
        launched: tuple[int, int | None],
        cores: tuple[list[int] | None, list[int]],
    ) -> None:
        """One repeat at one launched level (its workers, and its database pool size where
        --pool-size set one): idle, then each scenario (cores: the apps' and the load
        tool's)."""
        plan = self.plan
        workers, pool_size = launched
        app_cores, tool_cores = cores
        pairs = itertools.count()
        idle = Level(
            kind="idle", scenario=None, workers=workers, connections=None, pool_size=pool_size
        )
        self.pair(next(pairs), repeat, idle, client, urls, tool_cores)
        for scenario in plan.scenarios:
            setting = Setting(scenario, workers, pool_size)
            for index, connections in enumerate(plan.connections):
                pair = next(pairs)
                if index == 0:  # in the order of the pair it warms up for
                    self.warm_up(pair, repeat, setting, urls, tool_cores)
                level = Level(
                    kind="closed",
                    scenario=scenario,
                    workers=workers,
                    connections=connections,
                    pool_size=pool_size,
                )
                self.pair(pair, repeat, level, client, urls, tool_cores)
            rates = self.rates[setting, repeat] = self.set_rates(setting, repeat)
            if setting not in self.floors:
                self.floors[setting] = self.measure_floors(rates, setting, app_cores, tool_cores)
            for rate, fraction in rates:
                level = Level(
                    kind="open",
                    scenario=scenario,
                    workers=workers,
                    connections=max(plan.connections),
                    rate=rate,
                    fraction=fraction,
                    pool_size=pool_size,
                )
                self.pair(next(pairs), repeat, level, client, urls, tool_cores)

    def pair(
        self,
        pair: int,
        repeat: int,
        level: Level,
        client: httpx2.Client,
        urls: dict[str, str],
        tool_cores: list[int],
    ) -> None:
        """Both apps' runs of a level, in their turn, with the same arrivals."""
        seed = random.Random(f"{self.seed}/{repeat}/{pair}").randrange(2**32)
        what = level.scenario or "idle"
        if level.kind == "closed":
            what += f" c={level.connections}"
        elif level.kind == "open":
            what += f" {number(level.rate)}/s"
        for app in turn(pair, repeat):
            description = f"repeat {repeat}/{self.plan.repeats} w={level.workers} {what}: {app}"
            started, base = time.monotonic(), 0.0
            self.advance(0.0, description)

            def tick(started=started, description=description) -> None:
                nonlocal base
                elapsed_s = min(self.plan.duration_s, time.monotonic() - started)
                self.advance(elapsed_s - base, description)
                base = elapsed_s

            where = (repeat, len(self.runs) + 1, seed)
            run = measure(
                client, self.plan, app, urls[app], level, where, tool_cores, self.origin, tick
            )
            self.runs.append(run)
            self.advance(self.plan.duration_s - base, description)

    def warm_up(
        self, pair: int, repeat: int, setting: Setting, urls: dict[str, str], tool_cores: list[int]
    ) -> None:
        """Closed-loop load on each app before its counted runs of a scenario."""
        plan = self.plan
        if not plan.warmup_s:
            return
        level = Level(
            kind="closed",
            scenario=setting.scenario,
            workers=setting.workers,
            connections=plan.connections[0],
            pool_size=setting.pool_size,
        )
        for app in turn(pair, repeat):
            self.advance(
                0.0, f"repeat {repeat} w={setting.workers} {setting.scenario}: warm-up {app}"
            )
            run_load(
                load_argv(plan, urls[app], level, plan.warmup_s, tool_cores),
                plan.tool,
                plan.warmup_s,
            )
            self.advance(plan.warmup_s, "")

    def set_rates(self, setting: Setting, repeat: int) -> list[tuple[float, float | None]]:
        """The fixed rates of a setting, from this repeat's capacities unless --rate gave them;
        those openloop cannot send are left out, and said so."""
        plan = self.plan
        if plan.rates:
            wanted: list[tuple[float, float | None]] = [(rate, None) for rate in plan.rates]
            if repeat > 1:
                return self.rates[setting, 1]
        else:
            capacities = [capacity(of(self.runs, setting, app, repeat)) for app in APPS]
            lower = min(c or 0.0 for c in capacities)
            wanted = [(rounded(share * lower), share) for share in plan.fractions]
            self.notes.append(
                f"{setting.scenario} (w={setting.workers}"
                f"{f' pool={setting.pool_size}' if setting.pool_size else ''}): the rates are"
                f" {', '.join(f'{f:.0%}' for f in plan.fractions)} of the lower closed-loop"
                f" capacity in repeat {repeat}, {number(lower)} req/s:"
                f" {', '.join(number(rate) for rate, _ in wanted)} req/s"
            )
        rates = []
        for rate, share in wanted:
            if rate > loadtools.OPEN_LOOP_MAX_RATE:
                self.notes.append(
                    f"{setting.scenario}: {number(rate)}/s was not run: above the"
                    f" {number(loadtools.OPEN_LOOP_MAX_RATE)}/s openloop holds on one core"
                )
            elif rate * plan.duration_s < 10:
                self.notes.append(
                    f"{setting.scenario}: {number(rate)}/s was not run: under 10 requests in"
                    f" {plan.duration_s} s"
                )
            elif (rate, share) not in rates:
                rates.append((rate, share))
        return rates

    def measure_floors(
        self,
        rates: list[tuple[float, float | None]],
        setting: Setting,
        app_cores: list[int] | None,
        tool_cores: list[int],
    ) -> dict[float, loadtools.LoadResult]:
        """openloop's latency against a trivial server at each of a setting's rates."""
        floors = {}
        for rate, _ in rates:
            self.advance(0.0, f"{setting.scenario}: openloop's own floor at {number(rate)}/s")
            floors[rate] = measure_floor(
                rate,
                self.plan.duration_s,
                arrivals=self.plan.arrivals,
                seed=random.Random(f"{self.seed}/floor/{rate}").randrange(2**32)
                if self.plan.arrivals == "poisson"
                else None,
                connections=max(self.plan.connections),
                server_cores=app_cores,
                tool_cores=tool_cores,
            )
            self.advance(self.plan.duration_s, "")
        return floors
