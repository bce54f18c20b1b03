"""A private X display with openbox and a scenario's programs, for the desktop-apps tests (standalone harness)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from visagent.executors.desktop import DesktopExecutor
from visagent.realworld import xwindows
from visagent.realworld.desktop_apps import AppContext, AppScenario, program_env


def _free_display() -> int:
    n = 140 + os.getpid() % 200
    while Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
        n += 1
    return n


@contextmanager
def desktop(sc: AppScenario, root: Path):
    """Start Xvfb + openbox, set up the scenario's home and start its programs; yields the AppContext."""
    n = _free_display()
    display = f":{n}"
    procs: list[subprocess.Popen] = []
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    try:
        procs.append(subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        env = program_env(home, display)
        procs.append(subprocess.Popen(["openbox", "--sm-disable"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        ctx = AppContext(display, home)
        sc.setup(home)
        time.sleep(0.3)
        for prog in sc.programs:
            procs.append(subprocess.Popen(prog.command(home), env=env, cwd=home, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
            win = xwindows.wait_window(display, wm_class=prog.wm_class, timeout_s=15)
            if prog.place is not None:
                w, h = prog.size or (win.width, win.height)
                xwindows.move_resize(display, win, *prog.place, w, h)
        yield ctx
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_oracle(sc: AppScenario, ctx: AppContext, executor: DesktopExecutor, max_actions: int = 80) -> list[dict]:
    """Execute the scenario's oracle through the executor; returns one record per action."""
    records = []
    for action in sc.oracle(ctx):
        res = executor.execute(action)
        records.append({"action": action.to_dict(), "ok": res.ok, "message": res.message,
                        "settle_s": res.settle_s})
        assert res.ok, res.message
        assert len(records) <= max_actions
    return records
