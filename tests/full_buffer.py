"""Both apps with their /stats buffer full from the start, served for real.

A buffer of METRICS_SLOTS=20000 samples would take over half an hour to fill at the
shortest interval, so the tests and benchmarks that need /stats's largest answers serve
a copy of the project whose apps fill it as they load, with copies of a real snapshot:

    copy = filled_copy(tmp_path)                  # then ./up.sh of that copy
    fill(sampler, 20_000)                         # or a sampler of this process

This file is imported by the apps of such a copy (under Unit, from VENV): it needs
nothing but the apps' own requirements.
"""

from __future__ import annotations

from pathlib import Path

# Appended to each app of the copy: the module-level sampler is filled at import.
FILL_AT_IMPORT = """
# Added by tests/full_buffer.py: the sampler's buffer full as the app loads.
import sys as _sys

_sys.path.insert(0, {tests!r})
import full_buffer as _full_buffer

_full_buffer.fill(sampler, sampler.config.slots)
"""


def fill(sampler, count: int) -> None:
    """Append `count` samples to the sampler's buffer, as its thread would at each interval."""
    snapshot = sampler.status()
    for i in range(count):
        # Distinct figures in every sample, as a real buffer has.
        sample = snapshot.model_copy(update={"timestamp": snapshot.timestamp + i})
        sample.process = sample.process.model_copy(update={"rss_mb": 40 + i % 1000 / 100})
        sampler._samples.append(sample)


def filled_copy(tmp_path: Path) -> Path:
    """A copy of the project (as a fresh clone has it) whose apps load with full buffers."""
    from conftest import project_copy  # the tests' own: pytest, which the apps need not

    copy = project_copy(tmp_path)
    for app in ("flask-wsgi.py", "fastapi-asgi.py"):
        path = copy / app
        path.write_text(path.read_text() + FILL_AT_IMPORT.format(tests=str(copy / "tests")))
    return copy
