"""Ctrl+C and SIGTERM: a headless job stops after its batch, keeps what it embedded (the cache), exits 130 with
one line; decoder processes end themselves when the app that started them is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from media import make_gallery

DEADLINE_S = 60.0


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie has exited; only its parent's bookkeeping is left


def test_ctrl_c_keeps_what_was_embedded_and_exits_130(native_dir, tmp_path):
    gallery = make_gallery(tmp_path / "g", n=300)
    cmd = [sys.executable, "-m", "cl_core", "index", "build", str(native_dir), str(gallery / "manifest.csv"),
           "--out", str(tmp_path / "idx"), "--cache", str(tmp_path / "cache")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # plain progress lines: the first one of the embedding stage
        if line.startswith("embedding"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=DEADLINE_S)[1]
    assert proc.returncode == 130, rest
    assert "kept in the cache" in rest and "Traceback" not in rest
    kept = int(rest.split("interrupted: ")[-1].split()[0])
    assert kept > 0
    assert not (tmp_path / "idx").exists()
    again = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = next(line for line in again.stderr.splitlines() if "from the cache" in line)
    assert int(summary.split("(")[1].split()[0]) >= kept  # what the first run embedded was not embedded again


def test_decoder_processes_end_when_the_app_is_killed(tmp_path):
    script = (
        "from cl_core.embed.decode_pool import DecodePool\n"
        "from cl_core.embed.worker import warm_up\n"
        "pool = DecodePool(workers=2)\n"
        "list(pool.calls(warm_up, [(pool.reader,), (pool.reader,)]))\n"
        "print(' '.join(map(str, pool._pool._processes)), flush=True)\n"
        "import time\n"
        "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and not any(_gone(p) for p in workers)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + DEADLINE_S
    while not all(_gone(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for processes outside this one: there is no event to wait on
    assert all(_gone(p) for p in workers)


def test_ctrl_c_and_sigterm_close_the_window_with_its_jobs(tmp_path, native_dir):
    """The window gets Ctrl+C (SIGINT) and SIGTERM although Qt's loop runs in C++: it closes the normal way,
    its model job cancelled, and exits 0 promptly."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        ready = tmp_path / f"ready-{sig}"
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CLENS_READY_FILE": str(ready),
               "XDG_CONFIG_HOME": str(tmp_path / "config"), "CLENS_CACHE_DIR": str(tmp_path / "cache")}
        proc = subprocess.Popen([sys.executable, "-m", "cl_core", "gui", str(native_dir)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + DEADLINE_S
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the window's own "ready" file, not timing anything
        assert ready.exists(), proc.communicate(timeout=5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert (tmp_path / "config").exists()  # the layout was saved on the way out
