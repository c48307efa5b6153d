"""compare/callgrind_out.py: a callgrind out file's count and its cost lines per object,
on a file written by hand with known sums, and on one callgrind writes here."""

import shutil
import subprocess
from pathlib import Path

import pytest

from compare.callgrind_out import CallgrindFileError, read_profile, summary

# Two objects, names compressed; a call whose inclusive cost (5000) must not be added to
# the caller's object; relative positions (+2, -1, *); a cost line with no cost.
BY_HAND = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python -m granian --callgrind-out-file=/tmp/x
part: 3

positions: line
events: Ir
summary: 1700

ob=(1) /usr/lib/libpython3.11.so.1.0
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
10 100
+2 200
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(2) memcpy.S
cfn=(2) memcpy
calls=3 0
-1 5000
* 300
20

ob=(2)
fl=(2)
fn=(2)
0 1000
fn=(3) malloc
0 100

totals: 1700
"""


def test_the_summary_and_each_objects_own_lines_are_read_from_a_file_by_hand(tmp_path):
    path = tmp_path / "callgrind.out.4242.3"
    path.write_text(BY_HAND)
    profile = read_profile(path)
    assert (profile.pid, profile.part, profile.instructions) == (4242, 3, 1700)
    assert profile.by_object == {
        "/usr/lib/libpython3.11.so.1.0": 600,
        "/usr/lib/x86_64-linux-gnu/libc.so.6": 1100,
    }
    assert summary(path) == 1700


def test_the_column_of_ir_is_found_among_positions_and_events(tmp_path):
    path = tmp_path / "callgrind.out.1"
    path.write_text(
        "positions: instr line\nevents: sysCount Ir\nsummary: 7 40\n"
        "ob=(1) /bin/x\nfn=(1) f\n0x10 3 1 30\n+4 * 6 10\n"
    )
    assert read_profile(path).by_object == {"/bin/x": 40}


def test_a_file_cut_short_is_refused(tmp_path):
    path = tmp_path / "callgrind.out.1"
    path.write_text("# callgrind format\nversion: 1\nob=(1) /bin/x\n")
    with pytest.raises(CallgrindFileError, match="no summary"):
        read_profile(path)
    with pytest.raises(CallgrindFileError, match="no summary line"):
        summary(path)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not on PATH")
def test_a_real_files_lines_sum_to_its_totals_and_its_summary(tmp_path):
    out = tmp_path / "callgrind.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}", "/bin/ls"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    profile = read_profile(out)
    totals = next(int(line.split()[1]) for line in out.open() if line.startswith("totals:"))
    assert sum(profile.by_object.values()) == totals == profile.instructions
    assert profile.instructions > 100_000  # ls, its loader and its C library
    objects = {Path(name).name for name in profile.by_object}
    assert "ls" in objects and any(name.startswith("libc.so") for name in objects)
