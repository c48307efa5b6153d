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

import os
from pathlib import Path

from serve.settings import MAX_SLOTS

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


def served_full(tmp_path: Path) -> dict[str, Path | str]:
    """serve()'s arguments (conftest) for both apps with MAX_SLOTS samples from the start."""
    from conftest import ROOT  # the tests' own, as in filled_copy

    return {
        "root": filled_copy(tmp_path),
        "VENV": os.environ.get("VENV") or str(ROOT / ".venv"),  # the copy has none
        "METRICS_SLOTS": str(MAX_SLOTS),
        "METRICS_INTERVAL": "3600",  # the buffer as filled: no sample pushes one out
    }


def filled_copy(tmp_path: Path) -> Path:
    """A copy of the project (as a fresh clone has it) whose apps load with full buffers."""
    from conftest import project_copy  # the tests' own: pytest, which the apps need not

    copy = project_copy(tmp_path)
    for app in ("flask-wsgi.py", "fastapi-asgi.py"):
        path = copy / app
        path.write_text(path.read_text() + FILL_AT_IMPORT.format(tests=str(copy / "tests")))
    return copy
