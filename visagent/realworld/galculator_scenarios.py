"""galculator scenarios: compute an expression, switch to scientific mode through the View menu.

The checker reads galculator's real state without pixels: asked to close by the window manager (the EWMH
close, as the title bar's x does), galculator writes its config file, whose [general] section holds the mode
(`mode`: 0 basic, 1 scientific, 2 paper) and the number on its display (`remembered_valuex`). galculator only
writes that file when its folder exists, so setup creates it (with a known start: basic mode, 0). Then the
checker starts galculator again, which with `remembers_display=true` shows the same number in the same mode at
the same place: checking leaves the world as it found it (a check before the run, then the run, still works).
Shared helpers: visagent.realworld.desktop_apps.
"""

from __future__ import annotations

import configparser
import time
from pathlib import Path
from typing import Any

from visagent.realworld import xwindows
from visagent.realworld.desktop_apps import (
    Oracle, app_home, await_window, click, done, find, start_app, type_, verdict, wait,
)
from visagent.realworld.errors import ProgramError
from visagent.realworld.world import RealScenario

PLACE = (200, 100)
DISPLAY = (160, 50)  # the number display (a click there only focuses the window)
VIEW_MENU = (103, 12)
SCIENTIFIC_ITEM = (158, 62)  # View > Scientific Mode
# scientific mode's buttons, offsets inside the (wider) window
SCI_FACTORIAL = (170, 173)  # n!
SCI_POWER = (103, 173)  # x^y
SCI_MIN_WIDTH = 600  # the window is wider than this once the scientific layout is on


def _config(world: Any) -> Path:
    return app_home(world, "galculator") / ".config" / "galculator" / "galculator.conf"


def setup(world: Any) -> None:
    conf = _config(world)
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("[general]\nmode=0\nremembers_display=true\nremembered_valuex=\"0\"\n", encoding="utf-8")
    _start(world)


def _start(world: Any) -> None:
    start_app(world, ["galculator"], package="galculator", name="galculator", wm_class="galculator", place=PLACE)


def galculator_state(world: Any, timeout_s: float = 10.0) -> dict[str, str] | None:
    """Close galculator gracefully, read the [general] section it wrote, and start it again (it comes back with
    the same number and mode; the new window is marked expected for the modal guard). None when galculator is
    not running. Raises ProgramError when it does not quit in time."""
    win = find(world, wm_class="galculator")
    if win is None:
        return None
    for program in world.programs:
        if program.name == "galculator":
            program.expected_exit = True
    xwindows.close_window(world.display.name, win)
    deadline = time.monotonic() + timeout_s
    while _alive(win.pid):
        if time.monotonic() >= deadline:
            raise ProgramError(f"galculator (pid {win.pid}) did not quit within {timeout_s:g} s of the close request")
        time.sleep(0.05)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(_config(world), encoding="utf-8")
    except configparser.Error as exc:
        raise ProgramError(f"galculator's config file is unreadable ({' '.join(str(exc).split())[:160]})") from None
    state = {k: v.strip('"') for k, v in parser["general"].items()} if parser.has_section("general") else {}
    _start(world)
    again = find(world, wm_class="galculator")
    if again is not None:
        world.expect_window(again.id)
    return state


def _alive(pid: int | None) -> bool:
    """Whether process `pid` still runs (a zombie waiting for its parent has ended)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# -- arithmetic -------------------------------------------------------------------------------------------
ARITH_EXPR = "(17 + 25) × 3 − 4"
ARITH_RESULT = 122


def check_arith(world: Any) -> bool:
    state = galculator_state(world)
    if state is None:
        return verdict(world, False, "galculator is not running")
    value = state.get("remembered_valuex")
    return verdict(world, _number(value) == ARITH_RESULT, f"galculator's display: {value!r} (expected {ARITH_RESULT})")


def oracle_arith(world: Any) -> Oracle:
    win = yield from await_window(world, wm_class="galculator")
    yield click(win.at(*DISPLAY))
    yield type_("(17+25)*3-4=")
    yield done()


# -- scientific mode through the menu ---------------------------------------------------------------------
SCI_RESULT = 1144  # 5! + 2^10


def check_scientific(world: Any) -> bool:
    state = galculator_state(world)
    if state is None:
        return verdict(world, False, "galculator is not running")
    value, mode = state.get("remembered_valuex"), state.get("mode")
    return verdict(world, mode == "1" and _number(value) == SCI_RESULT,
                   f"galculator mode {mode!r} (scientific is '1'), display {value!r} (expected {SCI_RESULT})")


def oracle_scientific(world: Any) -> Oracle:
    win = yield from await_window(world, wm_class="galculator")
    yield click(win.at(*VIEW_MENU))
    yield click(win.at(*SCIENTIFIC_ITEM))
    while win.width <= SCI_MIN_WIDTH:  # the window grows to the scientific layout
        yield wait()
        win = yield from await_window(world, wm_class="galculator")
    yield click(win.at(*DISPLAY))
    yield type_("5")
    yield click(win.at(*SCI_FACTORIAL))
    yield type_("+2")
    yield click(win.at(*SCI_POWER))
    yield type_("10=")
    yield done()


SCENARIOS = [
    RealScenario(
        id="galculator-arith", apps=("galculator",),
        instruction=f"Use galculator to compute {ARITH_EXPR} and leave the result on its display.",
        setup=setup, check=check_arith, oracle=oracle_arith, max_steps=6,
        tags={"difficulty": "easy", "skill": "keyboard"}),
    RealScenario(
        id="galculator-scientific", apps=("galculator",),
        instruction="Switch galculator to Scientific mode from its View menu, then compute 5! + 2^10 with it "
                    "(its factorial and power buttons) and leave the result on its display.",
        setup=setup, check=check_scientific, oracle=oracle_scientific, max_steps=12,
        tags={"difficulty": "medium", "skill": "menu"}),
]
