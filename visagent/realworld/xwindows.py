"""Top-level windows of an X display, read through the window manager's EWMH lists (python-xlib).

What a real-desktop scenario needs to know about its programs without looking at pixels: which windows are
mapped (`_NET_CLIENT_LIST`), their titles (`_NET_WM_NAME`, UTF-8, else `WM_NAME`), class (`WM_CLASS`), pid
(`_NET_WM_PID`) and where their client area is on the screen (translated to root coordinates: the window
manager reparents clients into frames, so a client's own x/y is relative to its frame; `xdotool
getwindowgeometry` reports frame-shifted positions under openbox, `xwininfo`'s "Absolute upper-left" is what
this returns). Moving and closing go through `wmctrl`, which sends the EWMH requests a window manager obeys.
Each call opens its own short connection, so callers on any thread may use it.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

from visagent.core.errors import ExecutorError


@dataclass(frozen=True)
class XWindow:
    """A managed top-level window: id, title, WM_CLASS (instance, class), pid, client area in root pixels."""

    id: int
    title: str
    wm_class: tuple[str, ...]
    pid: int | None
    x: int
    y: int
    width: int
    height: int

    def at(self, dx: float, dy: float) -> tuple[int, int]:
        """The screen point `dx, dy` pixels from the client area's top-left corner."""
        return self.x + round(dx), self.y + round(dy)

    def center(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2


def _open(display: str):
    from visagent.screen.xsession import open_x_display

    return open_x_display(display)


def _text(value) -> str:
    if value is None:
        return ""
    raw = value.value
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def list_windows(display: str) -> list[XWindow]:
    """The window manager's client list, in mapping order. Raises ExecutorError when the display is gone."""
    from Xlib import X
    from Xlib.error import BadWindow, XError

    d = _open(display)
    try:
        root = d.screen().root
        atom = d.intern_atom
        clients = root.get_full_property(atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
        utf8, net_name, net_pid = atom("UTF8_STRING"), atom("_NET_WM_NAME"), atom("_NET_WM_PID")
        out = []
        for wid in (clients.value if clients else ()):
            win = d.create_resource_object("window", int(wid))
            try:
                title = _text(win.get_full_property(net_name, utf8)) or (win.get_wm_name() or "")
                if isinstance(title, bytes):
                    title = title.decode("latin-1")
                wm_class = tuple(win.get_wm_class() or ())
                pid_prop = win.get_full_property(net_pid, X.AnyPropertyType)
                geo = win.get_geometry()
                pos = win.translate_coords(root, 0, 0)
            except (BadWindow, XError):
                continue  # closed while we looked
            out.append(XWindow(int(wid), title, wm_class, int(pid_prop.value[0]) if pid_prop else None,
                               -pos.x, -pos.y, geo.width, geo.height))
        return out
    finally:
        d.close()


def find_window(display: str, title: str | None = None, wm_class: str | None = None) -> XWindow | None:
    """The newest window whose title matches the regex `title` (search) and whose WM_CLASS contains `wm_class`
    (either part, case-insensitive); None when there is none."""
    pattern = re.compile(title) if title is not None else None
    for win in reversed(list_windows(display)):
        if pattern is not None and not pattern.search(win.title):
            continue
        if wm_class is not None and wm_class.lower() not in (c.lower() for c in win.wm_class):
            continue
        return win
    return None


def wait_window(display: str, title: str | None = None, wm_class: str | None = None,
                timeout_s: float = 10.0, interval_s: float = 0.05) -> XWindow:
    """Wait until `find_window` finds a window. Raises ExecutorError naming what never appeared."""
    deadline = time.monotonic() + timeout_s
    while True:
        win = find_window(display, title, wm_class)
        if win is not None:
            return win
        if time.monotonic() >= deadline:
            what = " and ".join(p for p in (f"title ~ {title!r}" if title else "",
                                            f"class {wm_class!r}" if wm_class else "") if p)
            raise ExecutorError(f"no window with {what} appeared on {display} within {timeout_s:g} s")
        time.sleep(interval_s)


def _wmctrl(display: str, *args: str) -> None:
    try:
        proc = subprocess.run(["wmctrl", *args], env={"DISPLAY": display, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise ExecutorError("wmctrl is not installed; run scripts/system-deps.sh") from None
    if proc.returncode != 0:
        raise ExecutorError(f"wmctrl {' '.join(args)} failed on {display}: {proc.stderr.strip() or proc.returncode}")


def move_resize(display: str, win: XWindow, x: int, y: int, width: int, height: int,
                timeout_s: float = 5.0) -> XWindow:
    """Ask the window manager to put the window's frame at x, y with a client area of width x height; waits
    until the client area has that size and returns the window as it now is."""
    _wmctrl(display, "-i", "-r", hex(win.id), "-e", f"0,{x},{y},{width},{height}")
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        now = next((w for w in list_windows(display) if w.id == win.id), None)
        if now is None:
            raise ExecutorError(f"window {win.title!r} closed while being placed")
        if (now.width, now.height) == (width, height) and now == last:  # the size asked, and no longer moving
            return now
        if time.monotonic() >= deadline:
            return now
        last = now
        time.sleep(0.05)


def close_window(display: str, win: XWindow) -> None:
    """Ask the window's program to close it gracefully (EWMH _NET_CLOSE_WINDOW → WM_DELETE_WINDOW)."""
    _wmctrl(display, "-i", "-c", hex(win.id))
