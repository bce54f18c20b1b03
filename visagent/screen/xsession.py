"""What kind of desktop session we are in (X11, Wayland, Windows, macOS), and X11 helpers the desktop executor needs.

Wayland: mss and pyautogui speak X11 only. Under a Wayland session with XWayland (DISPLAY set), they see and
drive only XWayland windows: screenshots of native Wayland windows come back black and input to them is
dropped; without DISPLAY nothing works. The fix is an X11 session ("GNOME on Xorg") or a nested X server
(Xephyr, Xvfb) for the apps the agent drives.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Mapping

from visagent.core.errors import ExecutorError

log = logging.getLogger(__name__)

WAYLAND_NOTE = (
    "Wayland session: mss and pyautogui reach only XWayland windows (native Wayland windows capture black and "
    "ignore input); log into an X11 session or run the apps in a nested X server (Xephyr/Xvfb)"
)


def session_kind(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """One of "windows", "darwin", "x11", "xwayland" (Wayland session with DISPLAY), "wayland" (no DISPLAY),
    "none" (Linux without any display)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        return "windows"
    if platform == "darwin":
        return "darwin"
    wayland = env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(env.get("WAYLAND_DISPLAY"))
    if env.get("DISPLAY"):
        return "xwayland" if wayland else "x11"
    return "wayland" if wayland else "none"


def check_session(display: str | None, env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The session kind for a desktop executor on `display`; raises ExecutorError where nothing can work."""
    env = dict(os.environ if env is None else env)
    if display:
        env["DISPLAY"] = display
    kind = session_kind(env, platform)
    if kind == "wayland":
        raise ExecutorError(f"{WAYLAND_NOTE}; no DISPLAY is set, so there is no X server to use")
    if kind == "none":
        raise ExecutorError(
            "no display: DISPLAY is not set; run inside an X11 session, set DISPLAY=:N for a running X server, "
            "or start one (Xvfb :99 & export DISPLAY=:99)"
        )
    return kind


@contextlib.contextmanager
def quiet_xlib() -> Iterator[None]:
    """python-xlib prints "Xlib.xauth: warning ..." on stdout for an empty ~/.Xauthority, which would corrupt
    JSON output (`visagent do`); capture it and log it at debug level instead."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        if buf.getvalue().strip():
            log.debug("python-xlib: %s", " ".join(buf.getvalue().split()))


def open_x_display(display: str):  # -> Xlib.display.Display
    """Connect to an X server with python-xlib. Raises ExecutorError naming the display and the fix."""
    import Xlib.display
    import Xlib.error

    try:
        with quiet_xlib():
            return Xlib.display.Display(display)
    except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
        raise ExecutorError(
            f"cannot open X display {display!r} ({' '.join(str(exc).split())}); is its X server running? "
            "start one (e.g. Xvfb :99 &) or set DISPLAY to a live one"
        ) from None
