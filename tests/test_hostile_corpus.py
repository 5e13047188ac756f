"""Every case of the hostile corpus (tests/hostile_corpus.py) run as a person would run clens, under a
sampler of its whole process tree: it ends within its time, stays under its memory limit, exits with the
code allowed, says what went wrong in one message naming the file, and never prints a traceback."""

from __future__ import annotations

import pytest
from hostile_corpus import Case, corpus, run_case


@pytest.fixture(scope="module")
def cases(tmp_path_factory, native_dir) -> dict[str, Case]:
    return {c.name: c for c in corpus(tmp_path_factory.mktemp("hostile"), native_dir)}


NAMES = ["a FIFO as an input", "a 900-megapixel PNG bomb", "a 9000 x 9000 PNG", "a WAV header claiming 2 hours",
         "UTF-16 text", "one 200,000-character word", "a config nested 100,000 deep",
         "a config asking for 200,000-pixel images", "a zip-bomb pickle checkpoint",
         "a manifest naming a FIFO, /dev/zero and ../", "NaN and zero arguments", "a NaN threshold"]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_is_bounded_and_answered_in_one_message(cases, name):
    case = cases[name]
    got = run_case(case)
    assert not got.timed_out, f"{name}: still running after {case.seconds:.0f} s"
    assert got.samples > 0 and got.peak_mb < case.rss_mb, f"{name}: peak {got.peak_mb:.0f} MB"
    assert got.code in case.exits, f"{name}: exit {got.code}\n{got.stderr}"
    assert "Traceback" not in got.stderr, got.stderr
    for text in case.says:
        assert text in got.stderr, f"{name}: {text!r} not in\n{got.stderr}"


def test_the_sampler_sees_a_process_trees_memory(tmp_path):
    """The harness itself: a child that holds 300 MB is measured as holding it."""
    import subprocess
    import sys

    from hostile_corpus import _tree_rss_mb

    proc = subprocess.Popen([sys.executable, "-c", "import sys; b = bytearray(300 * 2**20); "
                             "sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    try:
        assert _tree_rss_mb(proc.pid) > 290
    finally:
        proc.communicate("")
