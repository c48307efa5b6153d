"""metrics/ against real psutil readings: config, cgroup parsing, summary, the sampler."""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from statistics import fmean

import httpx2
import psutil
import pytest
from conftest import ROOT
from test_serve import assert_a_killed_worker_is_replaced

import metrics.cpu
import metrics.observer
import metrics.sampler
from metrics.cgroup import read_cgroup
from metrics.cpu import process_cpu_s
from metrics.processes import find_roles, is_worker_of
from metrics.ring_buffer import RingBuffer
from metrics.sampler import FIRST_SAMPLE_S, MIN_STATUS_WINDOW_S, SHORTEST_WINDOW_S, Sampler
from metrics.schema import Cgroup, cpu_percent
from metrics.snapshot import take_snapshot, usable_cores
from metrics.summary import summarize
from serve.settings import MAX_SLOTS, ConfigError, MetricsConfig


def burn_cpu(seconds: float) -> None:
    """Burn `seconds` of this thread's CPU, which takes at least that long in wall time.

    The process's CPU clock would not do: other threads (a sampler left by an earlier
    test) add to it, so the loop could end sooner than `seconds` of wall time.
    """
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.fixture
def sampler_factory():
    started: list[Sampler] = []

    def start(interval_s: float = 0.1, slots: int = 5) -> Sampler:
        sampler = Sampler(MetricsConfig(interval_s=interval_s, slots=slots))
        started.append(sampler.start())
        return sampler

    yield start
    for sampler in started:
        sampler.stop()


def wait_for(predicate, timeout_s: float = 10.0, step_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step_s)
    raise AssertionError(f"not true within {timeout_s} s")


# --- the schema ----------------------------------------------------------------------


def test_the_runner_imports_only_the_schema_and_the_summary_and_they_no_psutil():
    # The schema is the contract between the apps and the runner: the runner reads
    # snapshots without the sampler, and without psutil through metrics/.
    code = (
        "import sys, metrics.schema, metrics.summary\n"
        "print(sorted(m for m in sys.modules if m == 'psutil' or m.startswith('metrics')))\n"
        "import compare.__main__\n"
        "print(sorted(m for m in sys.modules if m.startswith('metrics')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    alone, with_the_runner = result.stdout.splitlines()
    assert alone == "['metrics', 'metrics.schema', 'metrics.summary']"
    # And the id of a process's CPU clock, by which it reads an idle app from outside.
    assert with_the_runner == "['metrics', 'metrics.clock', 'metrics.schema', 'metrics.summary']"


# --- configuration -------------------------------------------------------------------


def test_config_defaults_to_ten_minutes_of_ten_second_samples():
    config = MetricsConfig.from_env({})
    assert (config.interval_s, config.slots) == (10.0, 60)


def test_config_reads_the_environment():
    config = MetricsConfig.from_env({"METRICS_INTERVAL": "0.5", "METRICS_SLOTS": "7"})
    assert (config.interval_s, config.slots) == (0.5, 7)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("METRICS_INTERVAL", "0", "greater than or equal to 0.1"),
        ("METRICS_INTERVAL", "-5", "greater than or equal to 0.1"),
        ("METRICS_INTERVAL", "3601", "less than or equal to 3600"),
        ("METRICS_SLOTS", "0", "greater than or equal to 1"),
        ("METRICS_SLOTS", "-1", "greater than or equal to 1"),
        ("METRICS_SLOTS", str(MAX_SLOTS + 1), f"less than or equal to {MAX_SLOTS}"),
        # Only plain decimals: what pydantic alone would read as a number is refused.
        *[
            ("METRICS_INTERVAL", value, "a plain decimal number such as 10 or 0.5")
            for value in [
                "abc",
                "",
                " 5",
                "5 ",
                "1_0",
                "1e1",
                "0x10",
                "+5",
                "5.",
                ".5",
                "nan",
                "inf",
                "\u0665",  # ARABIC-INDIC DIGIT FIVE: a digit to \d, not to us
            ]
        ],
        *[
            ("METRICS_SLOTS", value, "a plain decimal integer such as 60")
            for value in ["ten", "", "1.0", "2.5", "1_000", "1e1", " 5", "0x10", "+5"]
        ],
    ],
)
def test_bad_setting_stops_start_up_with_its_name_and_value(name, value, says):
    with pytest.raises(ConfigError) as error:
        MetricsConfig.from_env({name: value})
    message = str(error.value)
    assert f"{name}={value!r}" in message
    assert says in message


# --- cgroup --------------------------------------------------------------------------


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_container_with_limits(tmp_path):
    root = tmp_path / "sys"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "memory.max", str(512 * 1024 * 1024) + "\n")
    write(root / "memory.current", str(100 * 1024 * 1024) + "\n")
    write(root / "cpu.max", "150000 100000\n")
    write(tmp_path / "cgroup", "0::/\n")
    cgroup = read_cgroup(root, tmp_path / "cgroup")
    assert cgroup.model_dump() == {
        "version": 2,
        "memory_limit_mb": 512.0,
        "memory_usage_mb": 100.0,
        "cpu_quota_cores": 1.5,
    }


def test_cgroup_v2_without_limits_reports_null(tmp_path):
    root = tmp_path / "sys"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "app/memory.max", "max\n")
    write(root / "app/memory.current", "4096\n")
    write(root / "app/cpu.max", "max 100000\n")
    write(tmp_path / "cgroup", "0::/app\n")
    cgroup = read_cgroup(root, tmp_path / "cgroup")
    assert cgroup.memory_limit_mb is None
    assert cgroup.cpu_quota_cores is None
    assert cgroup.memory_usage_mb == round(4096 / 1024 / 1024, 2)


def test_cgroup_v2_limit_set_on_a_parent_applies(tmp_path):
    root = tmp_path / "sys"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "slice/memory.max", str(256 * 1024 * 1024))
    write(root / "slice/cpu.max", "50000 100000")
    write(root / "slice/app/memory.max", "max")
    write(root / "slice/app/memory.current", str(64 * 1024 * 1024))
    write(tmp_path / "cgroup", "0::/slice/app\n")
    cgroup = read_cgroup(root, tmp_path / "cgroup")
    assert (cgroup.memory_limit_mb, cgroup.cpu_quota_cores) == (256.0, 0.5)
    assert cgroup.memory_usage_mb == 64.0


def test_cgroup_v1_with_quota_and_unlimited_memory(tmp_path):
    root = tmp_path / "sys"
    write(root / "memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory/docker/abc/memory.usage_in_bytes", str(32 * 1024 * 1024))
    write(root / "cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    write(root / "cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cgroup", "4:memory:/docker/abc\n2:cpu,cpuacct:/\n0::/\n")
    cgroup = read_cgroup(root, tmp_path / "cgroup")
    assert cgroup.model_dump() == {
        "version": 1,
        "memory_limit_mb": None,
        "memory_usage_mb": 32.0,
        "cpu_quota_cores": 2.0,
    }


def test_cgroup_v1_container_mounted_at_its_own_root(tmp_path):
    # Without a cgroup namespace the path names the host's cgroup, which the
    # container sees mounted at the controller's root.
    root = tmp_path / "sys"
    write(root / "memory/memory.limit_in_bytes", str(1024 * 1024 * 1024))
    write(root / "memory/memory.usage_in_bytes", str(10 * 1024 * 1024))
    write(root / "cpu/cpu.cfs_quota_us", "-1")
    write(root / "cpu/cpu.cfs_period_us", "100000")
    write(tmp_path / "cgroup", "4:memory:/docker/abc\n1:cpu:/docker/abc\n")
    cgroup = read_cgroup(root, tmp_path / "cgroup")
    assert (cgroup.memory_limit_mb, cgroup.cpu_quota_cores) == (1024.0, None)


def test_no_cgroup_filesystem_gives_none(tmp_path):
    assert read_cgroup(tmp_path / "sys", tmp_path / "missing") is None


def test_cgroup_of_this_machine_reads_without_error():
    cgroup = read_cgroup()
    if cgroup is not None:
        assert cgroup.version in (1, 2)
        assert cgroup.memory_usage_mb is None or cgroup.memory_usage_mb > 0


# --- which processes are the app ----------------------------------------------------


@pytest.mark.parametrize(
    ("title", "parent_title", "group"),
    [
        ('unit: "flask" application', 'unit: "flask" prototype', True),
        ('unit: "flask" application', 'unit: "fastapi" prototype', False),
        (
            "python -m granian --interface wsgi app:app",
            "python -m granian --interface wsgi app:app",
            True,
        ),
        ("python app.py", "-bash", False),
        ("python app.py", "unit: main v1.34.2", False),
    ],
)
def test_worker_group_is_recognised_by_process_titles(title, parent_title, group):
    assert is_worker_of(title, parent_title) is group


def test_a_lone_process_is_its_own_only_worker_with_no_server():
    roles = find_roles(os.getpid())
    assert [p.pid for p in roles.workers] == [os.getpid()]
    assert roles.parent is None
    assert roles.server == ()


# A server in miniature: a master that forks workers with its own command line (as
# granian does), each burning CPU_EACH_S of CPU and then waiting, and reaps them.
MASTER = """
import os, sys, time
workers = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + float(sys.argv[2])
        while time.process_time() < end:
            pass
        time.sleep(600)
        os._exit(0)
    workers.append(pid)
print(" ".join(map(str, workers)), flush=True)
while True:
    os.wait()
"""
CPU_EACH_S = 0.3


@pytest.fixture
def forking_master():
    master = subprocess.Popen(
        [sys.executable, "-c", MASTER, "2", str(CPU_EACH_S)], stdout=subprocess.PIPE, text=True
    )
    workers = [int(pid) for pid in master.stdout.readline().split()]
    yield master, workers
    for pid in [*workers, master.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    master.wait(10)


def cpu_s(pid: int) -> float:
    return sum(psutil.Process(pid).cpu_times()[:2])


TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# Two threads that keep a core busy until killed.
BUSY = """
import threading
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
spin()
"""


def stat_cpu_s(pid: int) -> float:
    """utime + stime of /proc/<pid>/stat (fields 14 and 15), in ticks, as seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def test_a_process_cpu_time_agrees_with_proc_stat_to_the_tick_and_is_finer():
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        process = psutil.Process(busy.pid)
        wait_for(lambda: stat_cpu_s(busy.pid) >= 0.2)
        readings = []
        for _ in range(30):
            before = process_cpu_s(process)
            ticks_s = stat_cpu_s(busy.pid)
            after = process_cpu_s(process)
            # Both sum the scheduler's runtime of all its threads: the kernel rounds
            # /proc's user and system parts down to ticks, each less than one short.
            assert before - 2 * TICK_S < ticks_s <= after
            readings.append(after)
            time.sleep(0.01)
        assert readings == sorted(readings)
        # Finer than the tick: the clock's readings are not whole ticks.
        assert any(abs(r / TICK_S - round(r / TICK_S)) > 0.01 for r in readings)
    finally:
        busy.kill()
        busy.wait(10)


def test_workers_and_their_master_are_found_through_the_process_tree(forking_master):
    master, workers = forking_master
    roles = find_roles(workers[0])
    assert sorted(p.pid for p in roles.workers) == sorted(workers)
    assert roles.workers[0].pid == workers[0]
    assert roles.parent.pid == master.pid
    assert [p.pid for p in roles.server] == [master.pid]
    assert roles.names == ("master",)
    snapshot = take_snapshot(take_snapshot(None, roles)[1], roles)[0]
    assert snapshot.process.pids == sorted(workers)
    assert snapshot.server.pids == [master.pid]
    assert snapshot.server.rss_mb > 1
    # The master serves this app alone: its PSS is the app's, none is shared.
    assert snapshot.server.pss_mb == pytest.approx(
        psutil.Process(master.pid).memory_full_info().pss / 2**20, rel=0.2
    )
    assert (snapshot.server.shared_pids, snapshot.server.shared_pss_mb) == ([], 0)
    assert snapshot.app_pss_mb == round(snapshot.process.pss_mb + snapshot.server.pss_mb, 2)


def test_cpu_time_keeps_the_cpu_of_a_worker_that_exited(forking_master):
    _, (survivor, victim) = forking_master
    wait_for(lambda: min(cpu_s(survivor), cpu_s(victim)) >= CPU_EACH_S - 0.01)
    roles = find_roles(survivor)
    _, before = take_snapshot(None, roles)
    assert before.app_s >= 2 * CPU_EACH_S - 0.03
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(victim))  # killed and reaped by its master
    roles = find_roles(survivor)
    assert [p.pid for p in roles.workers] == [survivor]
    snapshot, after = take_snapshot(before, roles)
    # The figure never steps back, so no window gives a negative percentage...
    assert after.app_s >= before.app_s
    assert snapshot.process.cpu_percent >= 0
    assert snapshot.process.workers == 1
    # ...and the dead worker's CPU is in the counters themselves (its master reaped it,
    # in ticks): read alone, without the highest figure this process has seen, at most
    # the two rounded-down ticks of the reaped counters are missing.
    metrics.cpu._highest_seen.clear()
    _, counters = take_snapshot(None, roles)
    assert counters.app_s >= before.app_s - 2 * TICK_S
    assert counters.app_s >= 2 * CPU_EACH_S - 0.03


def test_the_observers_cost_is_the_cpu_of_its_snapshots_not_the_apps(sampler_factory):
    sampler = sampler_factory(interval_s=3600)  # no sample due: only what is asked for
    first = sampler.status()
    burn_cpu(0.3)  # the app's work, not the observer's
    sampler.stats_json()
    second = sampler.status()
    spent_s = second.process.cpu_time_s - first.process.cpu_time_s
    observed_s = second.process.observer_cpu_s - first.process.observer_cpu_s
    assert spent_s >= 0.29
    # The first /status and the /stats cost something, and a small part of all spent.
    assert 0 < observed_s < 0.1
    assert first.process.observer_cpu_s > 0  # the sampler's first reading, at start


def observer_files(parent_pid: int) -> dict[int, float]:
    """The observer figures the workers of `parent_pid` published, by worker pid."""
    directory = metrics.observer._parent_dir(psutil.Process(parent_pid))
    return {
        int(path.name): metrics.observer._read_record(str(path)) for path in directory.iterdir()
    }


def test_each_status_sums_the_observers_cost_of_every_worker_dead_ones_too(served_factory):
    served = served_factory(WORKERS="2")
    url = served.urls["flask"]
    status = httpx2.get(url + "/status", timeout=10).json()
    master = status["server"]["pids"][0]
    before = observer_files(master)
    status = httpx2.get(url + "/status", timeout=10).json()
    after = observer_files(master)
    # Each worker publishes its own; the one that answered added them all up.
    assert set(before) == set(after) == set(status["process"]["pids"])
    assert all(figure > 0 for figure in before.values())
    total_s = status["process"]["observer_cpu_s"]  # rounded to the microsecond
    assert sum(before.values()) - 1e-6 <= total_s <= sum(after.values()) + 1e-6
    assert_a_killed_worker_is_replaced(served, "flask", workers=2)
    replaced = httpx2.get(url + "/status", timeout=10).json()
    # The dead worker's figure stays in the sum, as its CPU stays in cpu_time_s.
    wait_for(lambda: len(observer_files(master)) == 3)  # the new worker's, at its start
    assert replaced["process"]["observer_cpu_s"] >= status["process"]["observer_cpu_s"]
    assert replaced["process"]["cpu_time_s"] >= status["process"]["cpu_time_s"]
    directory = metrics.observer._parent_dir(psutil.Process(master))
    served.stop()
    assert directory.is_dir()
    # The next app to open its file clears the directories of servers that are gone.
    again = served_factory()
    assert httpx2.get(again.urls["flask"] + "/status", timeout=10).status_code == 200
    assert not directory.exists()


def test_cpu_percent_never_exceeds_the_usable_cores():
    # A window's counters may run a clock tick ahead: the bound takes that tick off.
    assert cpu_percent(1.01, 1.0, 1.0) == 100.0
    assert cpu_percent(0.5, 1.0, 1.0) == 50.0
    assert usable_cores([0, 1, 2, 3], None) == 4
    quota = Cgroup(version=2, memory_limit_mb=None, memory_usage_mb=None, cpu_quota_cores=1.5)
    assert usable_cores([0, 1, 2, 3], quota) == 1.5
    assert usable_cores([1], quota) == 1


# --- summary -------------------------------------------------------------------------


def test_summary_gives_min_max_avg_of_every_figure_and_skips_identifiers():
    rows = [
        {"timestamp": 1.0, "time": "t", "cpu": 10.0, "g": {"pid": 3, "rss": 2, "lim": None}},
        {"timestamp": 2.0, "time": "t", "cpu": 30.0, "g": {"pid": 4, "rss": 4, "lim": None}},
        {"timestamp": 3.0, "time": "t", "cpu": 20.0, "g": {"pid": 5, "rss": 9, "lim": None}},
    ]
    assert summarize(rows) == {
        "cpu": {"min": 10.0, "max": 30.0, "avg": 20.0},
        "g": {"rss": {"min": 2, "max": 9, "avg": 5.0}, "lim": None},
    }


def test_summary_skips_missing_values_and_null_blocks():
    rows = [{"cgroup": None, "x": 1.0}, {"cgroup": {"mem": 5.0}, "x": None}]
    assert summarize(rows) == {
        "cgroup": {"mem": {"min": 5.0, "max": 5.0, "avg": 5.0}},
        "x": {"min": 1.0, "max": 1.0, "avg": 1.0},
    }


def test_ring_buffer_summary_is_summarize_of_its_samples_null_blocks_and_integers_too():
    _, reference = take_snapshot(None)
    snapshot, _ = take_snapshot(reference)
    samples = [snapshot.model_copy(update={"timestamp": snapshot.timestamp + i}) for i in range(4)]
    samples[1].process = samples[1].process.model_copy(update={"uss_mb": None, "rss_mb": 1.5})
    samples[2].system = samples[2].system.model_copy(update={"cgroup": None})
    buffer = RingBuffer(3)
    for sample in samples:
        buffer.append(sample)
    rows = buffer.newest()
    assert len(buffer) == len(rows) == 3  # the oldest is gone
    summary = buffer.summary(rows)
    assert summary == summarize([sample.model_dump() for sample in samples[1:]])
    assert summary["process"]["rss_mb"]["min"] == 1.5
    assert type(summary["process"]["num_threads"]["max"]) is int
    assert buffer.summary(buffer.newest(1)) == summarize([samples[3].model_dump()])
    assert buffer.summary([]) is None


def test_stats_json_is_the_stats_of_the_samples_it_holds():
    sampler = Sampler(MetricsConfig(interval_s=0.1, slots=4)).start()
    try:
        wait_for(lambda: len(sampler.samples()) >= 3)
    finally:
        sampler.stop()
    stats = sampler.stats(last=2)
    samples = sampler.samples()[-2:]
    assert stats.samples == samples
    assert (stats.count, stats.slots, stats.window_s) == (2, 4, 0.2)
    assert stats.summary == summarize([sample.model_dump() for sample in samples])


# --- the sampler ---------------------------------------------------------------------


def test_snapshot_reports_real_figures_of_this_process():
    reference = take_snapshot(None)[1]
    burn_cpu(0.3)
    snapshot, _ = take_snapshot(reference)
    me = psutil.Process()
    assert snapshot.process.pid == os.getpid()
    assert snapshot.process.pids == [os.getpid()]
    assert snapshot.process.workers == 1
    assert snapshot.process.cpu_time_s == pytest.approx(sum(me.cpu_times()[:2]), abs=0.05)
    # The percentage, over its window, accounts for the 0.3 s burnt, however busy the
    # machine was. The kernel counts in 10 ms ticks, so either end may be a tick short.
    assert snapshot.process.cpu_percent / 100 * snapshot.cpu_window_s >= 0.275
    assert snapshot.process.rss_mb == pytest.approx(me.memory_info().rss / 2**20, rel=0.2)
    assert 0 < snapshot.process.uss_mb <= snapshot.process.pss_mb <= snapshot.process.rss_mb
    assert snapshot.process.num_threads >= 1
    assert snapshot.server is None  # no server forked this process
    assert snapshot.system.cpu_affinity == sorted(os.sched_getaffinity(0))
    assert 0 < snapshot.system.cpu_usable_cores <= len(snapshot.system.cpu_affinity)
    assert snapshot.system.cpu_count == psutil.cpu_count()
    assert snapshot.system.memory_total_mb == round(psutil.virtual_memory().total / 2**20, 2)
    assert 0 <= snapshot.system.cpu_percent <= 100
    assert snapshot.cpu_window_s >= 0.3
    assert abs(snapshot.timestamp - time.time()) < 5
    assert snapshot.time.tzinfo is not None


def test_first_sample_comes_early_with_a_real_cpu_figure(sampler_factory):
    cpu_before_s = sum(psutil.Process().cpu_times()[:2])
    sampler = sampler_factory(interval_s=60.0)
    burn_cpu(1.2)
    wait_for(lambda: sampler.samples(), timeout_s=30)
    first = sampler.samples()[0]
    # After about a second, not after the 60 s interval: bounds with a loaded machine's
    # headroom (while the main thread burns, the sampler waits for the GIL at each read).
    assert FIRST_SAMPLE_S - 0.01 <= first.cpu_window_s < 30
    # Not psutil's meaningless first 0.0: the percentage matches the CPU time really
    # spent in its window, whatever share of a core the burn got on a busy machine.
    spent_s = first.process.cpu_time_s - cpu_before_s
    assert spent_s > 0.1
    assert first.process.cpu_percent / 100 * first.cpu_window_s == pytest.approx(spent_s, abs=0.05)


def test_buffer_fills_then_wraps_keeping_the_newest(sampler_factory):
    sampler = sampler_factory(interval_s=0.1, slots=4)
    seen = []
    deadline = time.monotonic() + 10
    while len(seen) < 8 and time.monotonic() < deadline:
        samples = sampler.samples()
        assert len(samples) <= 4
        seen = sorted({s.timestamp for s in samples} | set(seen))
        time.sleep(0.05)
    # Stop sampling, so that no new sample lands between the reads below.
    sampler.stop()
    seen = sorted({s.timestamp for s in sampler.samples()} | set(seen))
    samples = sampler.samples()
    assert len(samples) == 4
    assert [s.timestamp for s in samples] == sorted(seen)[-4:]
    assert sampler.stats().count == 4
    assert [s.timestamp for s in sampler.stats(last=2).samples] == sorted(seen)[-2:]


class VirtualClock:
    """metrics.sampler's time and stop event on a clock that only its waits and the
    sampling's work move: the schedule's arithmetic, whatever else the machine runs."""

    def __init__(self, waits: int):
        self.now = 1000.0
        self.left = waits
        self.stopped = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()

    def wait(self, timeout: float) -> bool:  # the sampler's stop event
        if self.left == 0 or self.stopped.is_set():
            self.stopped.set()
            return True
        self.left -= 1
        self.now += timeout
        return False

    def set(self) -> None:
        self.stopped.set()


def test_schedule_does_not_drift_when_sampling_is_slow_and_skips_what_a_stall_missed(
    monkeypatch,
):
    clock = VirtualClock(waits=12)
    started = []
    costs = iter([0.0] + [0.05] * 4 + [0.37] + [0.05] * 20)  # the baseline, then work
    real = take_snapshot

    def slow(reference, **options):
        started.append(clock.now)
        clock.now += next(costs)  # sampling costs half the interval; once, a stall
        return real(reference, **options)

    monkeypatch.setattr(metrics.sampler, "take_snapshot", slow)
    monkeypatch.setattr(metrics.sampler, "time", clock)
    monkeypatch.setattr(
        metrics.sampler,
        "threading",
        type(
            "Threads",
            (),
            {"Event": lambda: clock, "Lock": threading.Lock, "Thread": threading.Thread},
        ),
    )
    sampler = Sampler(MetricsConfig(interval_s=0.1, slots=20)).start()
    assert clock.stopped.wait(30)
    sampler.stop()
    offsets = [round(t - 1000.0, 6) for t in started]
    # The baseline at 0, the first sample after 0.1 (the interval, under FIRST_SAMPLE_S),
    # then every 0.1 on the grid, not 0.15 apart as sleep-after-work would; the stall that
    # ran from 0.5 to 0.87 skips the ticks at 0.6, 0.7 and 0.8 rather than bunching them.
    assert offsets == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]


def test_status_calls_leave_the_samplers_windows_whole(sampler_factory):
    sampler = sampler_factory(interval_s=0.3, slots=20)
    end = time.monotonic() + 1.6
    while time.monotonic() < end:
        status = sampler.status()
        assert status.cpu_window_s >= SHORTEST_WINDOW_S
    windows = [s.cpu_window_s for s in sampler.samples()[1:]]
    assert len(windows) >= 2
    assert all(w == pytest.approx(0.3, abs=0.1) for w in windows)
    # Once two samples are in, /status measures over at least one interval (or 1 s).
    assert sampler.status().cpu_window_s >= 0.3


def test_status_right_after_start_waits_for_a_real_window():
    sampler = Sampler(MetricsConfig(interval_s=5, slots=5)).start()
    try:
        assert sampler.status().cpu_window_s >= SHORTEST_WINDOW_S
    finally:
        sampler.stop()


def test_status_of_a_sampler_never_started_still_covers_a_window():
    status = Sampler(MetricsConfig()).status()
    assert status.cpu_window_s >= SHORTEST_WINDOW_S
    assert status.process.pid == os.getpid()


def test_status_window_is_at_least_a_second_at_long_intervals(sampler_factory):
    sampler = sampler_factory(interval_s=5.0)
    time.sleep(FIRST_SAMPLE_S + 0.2)
    assert sampler.status().cpu_window_s >= MIN_STATUS_WINDOW_S
    assert len(sampler.samples()) == 1


def test_sampler_survives_psutil_errors_and_logs_them(sampler_factory, monkeypatch, caplog):
    sampler = sampler_factory(interval_s=0.1, slots=50)
    wait_for(lambda: len(sampler.samples()) >= 1)
    real = psutil.virtual_memory

    def denied():
        raise psutil.AccessDenied(os.getpid())

    with caplog.at_level(logging.ERROR, logger="metrics"):
        monkeypatch.setattr(psutil, "virtual_memory", denied)
        count = len(sampler.samples())
        time.sleep(0.5)
        assert len(sampler.samples()) == count  # no sample while psutil fails
        monkeypatch.setattr(psutil, "virtual_memory", real)
    assert "a sample failed" in caplog.text
    wait_for(lambda: len(sampler.samples()) > count)
    assert sampler._thread.is_alive()


def test_concurrent_readers_get_consistent_copies(sampler_factory):
    sampler = sampler_factory(interval_s=0.1, slots=5)
    errors = []

    def read(n):
        try:
            for _ in range(n):
                stats = sampler.stats()
                assert stats.count == len(stats.samples) <= 5
                if stats.samples:
                    rss = [s.process.rss_mb for s in stats.samples]
                    assert stats.summary["process"]["rss_mb"]["max"] == max(rss)
                    assert stats.summary["process"]["rss_mb"]["avg"] == round(fmean(rss), 3)
                sampler.status()
        except Exception as error:  # reported below, from the main thread
            errors.append(error)

    threads = [threading.Thread(target=read, args=(40,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sampler._thread.is_alive()


def test_start_is_idempotent(sampler_factory):
    sampler = sampler_factory()
    thread = sampler._thread
    assert sampler.start()._thread is thread
    names = [t.name for t in threading.enumerate()].count("metrics-sampler")
    sampler.start()
    assert [t.name for t in threading.enumerate()].count("metrics-sampler") == names


def test_forked_child_runs_its_own_sampler(sampler_factory):
    sampler = sampler_factory(interval_s=0.1, slots=5)
    wait_for(lambda: len(sampler.samples()) >= 2)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its sampler does, then leave at once
        try:
            # Its own sampler starts at the child's first sample; on a loaded machine the
            # first two may take a while: wait for them, up to 10 s, not a fixed time.
            deadline = time.monotonic() + 10
            while len(sampler.samples()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            samples = sampler.samples()
            ok = (
                sampler._thread is not None
                and sampler._thread.is_alive()
                and len(samples) >= 2
                and all(s.process.pid == os.getpid() for s in samples)
            )
            os.write(write_end, b"ok" if ok else repr(samples).encode()[:500])
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1000)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert all(s.process.pid == os.getpid() for s in sampler.samples())
