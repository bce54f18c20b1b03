"""What the desktop-program scenarios (mousepad_, xterm_ and galculator_scenarios) share: starting a program in a
home prepared by setup and putting its window where the oracle expects it, the oracle's action helpers, and
checker helpers that record what they saw.

Oracles are generators of screen-space actions (keyboard shortcuts, and clicks at offsets inside windows whose
position they read from the window manager's client list, visagent.realworld.xwindows); they never look at
pixels. When a window an oracle needs has not appeared yet it emits a `wait` action, as an agent would, so a
settle that returned too early costs a counted step instead of a misclick. A dialog the task opens itself is
told to the world's modal guard before the action that opens it (`world.expect_title`), and every window an
oracle waits for is marked expected (`world.expect_window`).

Offsets inside windows were measured on this project's setup (Xvfb 24-bit, openbox, Debian bookworm's GTK 3
with its default theme and DejaVu fonts, mousepad 0.5.10, galculator 2.1.4, xterm 379): they are the
geometry the scenario knows.

Programs run with a private home (HOME and XDG dirs inside the world), GSETTINGS_BACKEND=memory (mousepad
keeps its settings in GSettings: no dconf database is read or written, so no preference or session restore
leaks between runs), no D-Bus session bus (mousepad --disable-server), LANG=C.UTF-8.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from visagent.core.actions import Action
from visagent.realworld import xwindows
from visagent.realworld.errors import ProgramError, require

Oracle = Iterator[Action]
#: Longest an oracle waits (in `wait` actions) for a window before it gives up.
WINDOW_WAIT_S = 10.0
WAIT_STEP_S = 0.25
#: Environment the desktop programs get on top of the world's (Display.env).
APP_ENV = {"GSETTINGS_BACKEND": "memory", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "GTK_A11Y": "none",
           "PS1": "$ ", "TERM": "xterm"}


def app_home(world: Any, name: str) -> Path:
    """The private home of program `name` in this world (created; setup writes its files and config here)."""
    home = world.root / f"home-{name}"
    home.mkdir(parents=True, exist_ok=True)
    return home


def start_app(world: Any, argv: list[str], *, package: str, name: str, wm_class: str,
              place: tuple[int, int] | None = None, size: tuple[int, int] | None = None,
              env: dict[str, str] | None = None) -> xwindows.XWindow:
    """Launch a program in its home (`app_home`, also its working directory), wait for its window and put the
    window's frame at `place` with client size `size` (None: its own). Returns the window as placed."""
    home = app_home(world, name)
    if place is not None:
        require("wmctrl", "wmctrl")
    world.launch(argv, package=package, name=name, wait_class=wm_class, env={**APP_ENV, **(env or {})}, cwd=home,
                 home=home)
    win = xwindows.wait_window(world.display.name, wm_class=wm_class, timeout_s=20)
    if place is not None:
        width, height = size or (win.width, win.height)
        win = xwindows.move_resize(world.display.name, win, *place, width, height)
    world.data.setdefault("app_windows", {})[name] = win.id
    return win


# -- oracle helpers -------------------------------------------------------------------------------------------

def find(world: Any, title: str | None = None, wm_class: str | None = None) -> xwindows.XWindow | None:
    return xwindows.find_window(world.display.name, title, wm_class)


def await_window(world: Any, title: str | None = None, wm_class: str | None = None,
                 gone: bool = False) -> Iterator[Action]:
    """`win = yield from await_window(...)`: yields `wait` actions until a matching window exists (told to the
    modal guard as expected), or with gone=True until none does; returns it. ProgramError after WINDOW_WAIT_S."""
    deadline = time.monotonic() + WINDOW_WAIT_S
    while True:
        win = find(world, title, wm_class)
        if (win is None) == gone:
            if win is not None:
                world.expect_window(win.id)
            return win
        if time.monotonic() >= deadline:
            state = "is still open" if gone else "never appeared"
            raise ProgramError(f"oracle: the window (title ~ {title!r}, class {wm_class!r}) {state}")
        yield wait()


def wait() -> Action:
    return Action("wait", time=WAIT_STEP_S, space="screen")


def click(point: tuple[int, int]) -> Action:
    return Action("left_click", coordinate=point, space="screen")


def key(*keys: str) -> Action:
    return Action("key", keys=keys, space="screen")


def type_(text: str, at: tuple[int, int] | None = None) -> Action:
    """Type `text`; with `at`, click there first (one action). The oracles click and type in separate steps:
    typing right after the click could lose its first keys to the old focus on a busy machine (found on r38a's
    Chromium oracles)."""
    return Action("type", text=text, coordinate=at, space="screen")


def done() -> Action:
    return Action("terminate", status="success", space="screen")


# -- checker helpers -----------------------------------------------------------------------------------------

def verdict(world: Any, ok: bool, detail: str) -> bool:
    """Record what the checker saw (world.data["check_detail"], for messages and tests) and return `ok`."""
    world.data["check_detail"] = detail
    return ok


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def same_text(got: str | None, want: str) -> bool:
    """Equal up to one trailing newline (editors differ on adding one; printf adds one)."""
    return got is not None and got.removesuffix("\n") == want.removesuffix("\n")


def show(text: str | None, limit: int = 160) -> str:
    return "missing" if text is None else repr(text if len(text) <= limit else text[:limit] + "…")
