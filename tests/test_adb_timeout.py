"""A hung adb call ends with everything it started (issue 42: a mid-run adb hang left the adb wrapper and its
child running after the run ended)."""

from __future__ import annotations

import os
import stat
import time

import pytest

from visagent.core.errors import ExecutorError
from visagent.screen.adb import run_adb


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as gone: it runs nothing
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hung_adb_and_its_child_are_gone_after_the_timeout(tmp_path):
    pids = tmp_path / "pids"
    adb = tmp_path / "adb"
    # a wrapper (as a distribution's adb script is) whose child hangs holding adb's output pipe
    adb.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\nwait\n")
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="timed out after 0.5s"):
        run_adb(str(adb), ["-s", "x", "shell", "true"], 0.5)
    assert time.monotonic() - started < 30  # did not wait for the child's 300 s
    wrapper, child = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(wrapper) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(wrapper) and not _alive(child)


def test_a_normal_call_returns_its_output_and_status(tmp_path):
    adb = tmp_path / "adb"
    adb.write_text("#!/bin/sh\necho \"args: $*\"\necho oops >&2\nexit 3\n")
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    proc = run_adb(str(adb), ["devices"], 5)
    assert proc.returncode == 3 and proc.stdout == b"args: devices\n" and proc.stderr == b"oops\n"
