"""Desktop executor: mss captures one monitor, pyautogui drives mouse and keyboard.

Tested on X11 (Xvfb). Windows and macOS use the same libraries and code paths but are untested here: on
macOS mss captures physical (Retina) pixels while pyautogui moves in points, which the recorded
`ScreenGeometry.scale` accounts for; non-ASCII typing is X11-only (XTEST with spare keycodes, visagent.screen.xtype). Wayland: see
`visagent.screen.xsession` (XWayland windows only).

Coordinates: actions arrive in "screen" space (global logical pixels; visagent.loop.coords.to_screen adds the
monitor offset). Monitors are mss's (1 = first physical monitor), or a layout given by configuration
(`monitor_layout="1280x800+0+0,1280x800+1280+0"` or VISAGENT_MONITORS) for a framebuffer that spans several
screens without RandR monitors (Xvfb, some VNC servers). pyautogui's fail-safe stays on: moving the mouse into
a screen corner stops the agent with an ExecutorError.

Scroll: `pixels` counts wheel clicks, as Qwen's reference agents run `pyautogui.scroll(pixels)` (capped at
visagent.core.actions.MAX_SCROLL_CLICKS), sent as X11 buttons 4/5 (scroll) and 6/7 (hscroll). Typing: pyautogui.write for ASCII; other characters through XTEST
with spare keycodes (visagent.screen.xtype), X11 only.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Any

from PIL import Image, ImageDraw

from visagent.core import actions as A
from visagent.core.actions import Action, scroll_note
from visagent.core.errors import ActionError, ExecutorError
from visagent.screen.base import ExecResult, Observation, ScreenGeometry
from visagent.screen.keynames import pyautogui_key
from visagent.screen.monitors import describe_monitor, list_monitors, mss_factory, parse_monitor_layout
from visagent.screen.xsession import WAYLAND_NOTE, check_session, open_x_display, quiet_xlib
from visagent.screen.xtype import UnicodeTyper
from visagent.screen.settle import SettleDetector, resolve_settle
from visagent.sim.gestures import wheel_clicks

__all__ = ["DesktopExecutor", "default_desktop_settle", "list_monitors", "parse_monitor_layout", "pyautogui_key"]
log = logging.getLogger(__name__)
_DRAG_S = 0.3


def default_desktop_settle() -> SettleDetector:
    """Settle parameters for a real desktop: 50 ms captures, 3 quiet comparisons (150 ms), up to 0.3 s for the
    app to start reacting, 5 s cap."""
    return SettleDetector(threshold=0.0, consecutive=3, interval_s=0.05, max_wait_s=5.0, wait_for_change_s=0.3)


class DesktopExecutor:
    """Captures monitor `monitor` with mss and drives it with pyautogui. See the module docstring.

    display: X display (default $DISPLAY; X11 only). draw_cursor: draw the mouse pointer into screenshots.
    settle: how a Screen over this executor settles after an action: True (desktop defaults), a SettleDetector,
    or False (the Screen's default detector). monitor_layout: see module docstring.
    pause_s: pyautogui.PAUSE, the pause after every pyautogui call (a process-wide setting).
    Raises ExecutorError for an unreachable display, a Wayland session without X, or a bad monitor number.
    """

    platform = "desktop"
    name = "desktop"
    fresh_before = True  # a capture is cheap (~16 ms): settle compares with the screen right before the action

    def __init__(
        self,
        monitor: int = 1,
        display: str | None = None,
        draw_cursor: bool = False,
        settle: SettleDetector | bool = True,
        monitor_layout: str | None = None,
        pause_s: float = 0.02,
    ) -> None:
        self.session = check_session(display)
        self.display = display or os.environ.get("DISPLAY")
        self.note = WAYLAND_NOTE if self.session == "xwayland" else ""
        if self.note:
            log.warning(self.note)
        self.draw_cursor = draw_cursor
        self.settle = resolve_settle(settle, default_desktop_settle)
        self.closed = False
        self._local = threading.local()
        self._xdisplay: Any = None
        self._typer: UnicodeTyper | None = None
        if self.session in ("x11", "xwayland"):
            self._xdisplay = open_x_display(self.display or "")
        self._pyautogui = self._import_pyautogui()
        self._pyautogui.FAILSAFE = True  # the user's emergency stop: mouse into a corner
        self._pyautogui.PAUSE = pause_s
        layout = monitor_layout or os.environ.get("VISAGENT_MONITORS")
        self.monitors = parse_monitor_layout(layout) if layout else self._mss_monitors()
        if not 1 <= monitor <= len(self.monitors):
            raise ExecutorError(f"monitor {monitor} does not exist; this display has monitors 1..{len(self.monitors)} "
                                f"({', '.join(describe_monitor(m) for m in self.monitors)})")
        self.monitor = monitor
        mon = self.monitors[monitor - 1]
        probe = self._grab_raw()
        self._geometry = ScreenGeometry(mon["width"], mon["height"], probe.width, probe.height,
                                        mon["left"], mon["top"], monitor)

    # -- setup ----------------------------------------------------------------------------------------
    def _import_pyautogui(self):
        saved = os.environ.get("DISPLAY")
        if self.display and self.session in ("x11", "xwayland"):
            os.environ["DISPLAY"] = self.display  # pyautogui connects to $DISPLAY once, at import
        try:
            with quiet_xlib():
                import pyautogui
        except Exception as exc:  # Xlib raises its own errors at import when the display is gone
            raise ExecutorError(f"pyautogui cannot start on display {self.display!r} ({exc}); "
                                "check DISPLAY and that ~/.Xauthority exists (touch it)") from None
        finally:
            if saved is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = saved
        self._bind_x()
        return pyautogui

    def _bind_x(self) -> None:
        """Point pyautogui's X11 backend at this executor's display (it holds one module-wide connection)."""
        if self._xdisplay is not None:
            import pyautogui._pyautogui_x11 as x11

            x11._display = self._xdisplay

    def _mss(self):
        """One mss instance per thread (its X connection must not cross threads)."""
        inst = getattr(self._local, "mss", None)
        if inst is None:
            factory = mss_factory()
            kwargs = {"display": self.display} if sys.platform.startswith("linux") and self.display else {}
            try:
                inst = factory(**kwargs)
            except Exception as exc:  # mss.ScreenShotError and ctypes errors
                raise ExecutorError(f"mss cannot open display {self.display!r} ({exc}); is the X server running?") from None
            self._local.mss = inst
        return inst

    def _mss_monitors(self) -> list[dict[str, int]]:
        try:
            mons = self._mss().monitors
        except Exception as exc:
            raise ExecutorError(f"cannot list monitors on {self.display!r} ({exc})") from None
        physical = [dict(m) for m in mons[1:]]
        return physical or [dict(mons[0])]

    # -- capture --------------------------------------------------------------------------------------
    def _grab_raw(self) -> Image.Image:
        mon = self.monitors[self.monitor - 1]
        region = {k: mon[k] for k in ("left", "top", "width", "height")}
        try:
            shot = self._mss().grab(region)
        except Exception as exc:  # mss raises ScreenShotError, or asserts on a dead XCB connection
            if self._xdisplay is not None and not _x_reachable(self.display or ""):
                raise ExecutorError(f"screen capture failed: the X server on display {self.display!r} has closed; "
                                    "restart it and rerun") from None
            raise ExecutorError(f"screen capture failed on display {self.display!r} ({_why(exc)})") from None
        return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")

    def capture(self) -> Image.Image:
        """The monitor's pixels (physical, RGB), with the pointer drawn in when draw_cursor is set."""
        image = self._grab_raw()
        if self.draw_cursor:
            self._draw_pointer(image)
        return image

    def _draw_pointer(self, image: Image.Image) -> None:
        x, y = self.position()
        g = self._geometry
        if not g.contains(x, y):
            return
        px, py = (x - g.offset_x) * g.scale, (y - g.offset_y) * g.scale
        s = 1.5 * g.scale
        arrow = [(0, 0), (0, 16), (4, 12), (7, 19), (10, 18), (7, 11), (12, 11)]
        ImageDraw.Draw(image).polygon([(px + ax * s, py + ay * s) for ax, ay in arrow], fill=(255, 255, 255),
                                      outline=(0, 0, 0))

    def position(self) -> tuple[int, int]:
        """The pointer in global logical pixels. Raises ExecutorError when the display is gone."""
        return self._input(lambda p: tuple(p.position()), "read the pointer")

    def geometry(self) -> ScreenGeometry:
        return self._geometry

    def screenshot(self) -> Observation:
        return Observation(self.capture(), self._geometry, time.time())

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        self.closed = True
        inst = getattr(self._local, "mss", None)
        if inst is not None:
            inst.close()
            self._local.mss = None
        if self._xdisplay is not None:
            try:
                if self._typer is not None:
                    self._typer.close()
                self._xdisplay.close()
            except Exception as exc:  # noqa: BLE001 - the server may be gone already; nothing left to release
                log.debug("closing X display %s: %s", self.display, exc)
            self._typer = None
            self._xdisplay = None

    # -- input ----------------------------------------------------------------------------------------
    def _input(self, fn, what: str):
        """Run one pyautogui call; X and fail-safe errors become one-line ExecutorErrors."""
        import Xlib.error

        p = self._pyautogui
        self._bind_x()
        try:
            return fn(p)
        except p.FailSafeException:
            raise ExecutorError("pyautogui fail-safe: the mouse is in a screen corner (the emergency stop); "
                                "move it away from the corner to continue") from None
        except (Xlib.error.ConnectionClosedError, Xlib.error.XError, OSError) as exc:
            raise ExecutorError(f"cannot {what} on display {self.display!r} ({_why(exc)}); "
                                "the X server may have closed: restart it and rerun") from None
        except TypeError:
            # python3-xlib 0.15 turns a broken pipe into a TypeError; tell a dead server from a real bug
            if self._xdisplay is not None and not _x_reachable(self.display or ""):
                raise ExecutorError(f"cannot {what}: the X server on display {self.display!r} has closed; "
                                    "restart it and rerun") from None
            raise

    def execute(self, action: Action) -> ExecResult:
        """Execute a "screen"-space action (settling is the Screen's: visagent.screen.seam).

        A model mistake (unknown key, an action a desktop lacks) returns ok=False with a message for the model;
        a lost display raises ExecutorError.
        """
        if action.space != "screen" and (action.coordinate is not None or action.coordinate2 is not None):
            raise ExecutorError("DesktopExecutor needs screen-space actions; convert with visagent.loop.coords.to_screen "
                                f"first (got space {action.space!r})")
        start = time.monotonic()
        try:
            message = self._perform(action)
        except ActionError as exc:
            message = str(exc)
        execute_s = time.monotonic() - start
        if message is not None:
            return ExecResult(ok=False, message=message, execute_s=execute_s)
        return ExecResult(ok=True, message=_done_message(action), execute_s=execute_s)

    def _perform(self, action: Action) -> str | None:
        name = action.action
        xy = self._xy(action.coordinate)
        if name in (A.LEFT_CLICK, A.CLICK, A.RIGHT_CLICK, A.MIDDLE_CLICK, A.DOUBLE_CLICK, A.TRIPLE_CLICK):
            button = {A.RIGHT_CLICK: "right", A.MIDDLE_CLICK: "middle"}.get(name, "left")
            clicks = {A.DOUBLE_CLICK: 2, A.TRIPLE_CLICK: 3}.get(name, 1)
            held = [pyautogui_key(k) for k in action.keys or ()]
            self._input(lambda p: _click_holding(p, xy, button, clicks, held), name)
        elif name == A.MOUSE_MOVE:
            self._input(lambda p: p.moveTo(*xy), name)
        elif name in (A.LEFT_CLICK_DRAG, A.SWIPE):
            start, end = (xy, self._xy(action.coordinate2)) if action.coordinate2 else (None, xy)
            duration = action.time if action.time is not None else _DRAG_S
            self._input(lambda p: _drag(p, start, end, duration), name)
        elif name == A.LONG_PRESS:
            hold = action.time if action.time is not None else 1.0
            self._input(lambda p: (p.mouseDown(*xy), time.sleep(hold), p.mouseUp(*xy)), name)
        elif name in (A.SCROLL, A.HSCROLL):
            # pixels counts wheel clicks (pyautogui.scroll(pixels), as Qwen's reference agents), capped
            clicks = wheel_clicks(int(action.pixels or 0))
            where = xy if xy is not None else (None, None)
            if name == A.SCROLL:  # positive scrolls up, as pyautogui (X11 button 4)
                self._input(lambda p: p.scroll(clicks, *where), name)
            else:  # positive scrolls left (X11 button 6); pyautogui.hscroll's positive is right
                self._input(lambda p: p.hscroll(-clicks, *where), name)
        elif name == A.TYPE:
            if xy is not None:
                self._input(lambda p: p.click(*xy), "click before typing")
            self.type_text(action.text or "")
        elif name == A.KEY:
            keys = [pyautogui_key(k) for k in (action.keys or (action.text or "",))]
            self._check_mapped(keys)
            self._input(lambda p: p.hotkey(*keys), name)
        elif name == A.SYSTEM_BUTTON and action.button == "Enter":
            self._input(lambda p: p.press("enter"), name)
        elif name == A.WAIT:
            self.sleep(action.time if action.time is not None else 1.0)
        elif name in (A.TERMINATE, A.ANSWER, A.CALL_USER):
            pass
        else:
            return f"action {name!r} is not supported on a desktop; use computer_use actions (left_click, type, key ...)"
        return None

    def _xy(self, point: tuple[float, float] | None) -> tuple[int, int] | None:
        return None if point is None else (round(point[0]), round(point[1]))

    def _check_mapped(self, keys: list[str]) -> None:
        """pyautogui's X11 backend silently skips keys without a keycode; say so instead."""
        if self._xdisplay is None:
            return
        import pyautogui._pyautogui_x11 as x11

        for key in keys:
            if len(key) > 1 and x11.keyboardMapping.get(key) is None:
                raise ActionError(f"key {key!r} has no keycode on display {self.display}; use another key")

    def type_text(self, text: str) -> None:
        """Type `text`: pyautogui.write for printable ASCII, XTEST with spare keycodes on X11 for anything else
        (visagent.screen.xtype). Raises ExecutorError for non-ASCII text off X11.
        """
        if not text:
            return
        runs = re.findall(r"[\x20-\x7e\n\t]+|[^\x20-\x7e\n\t]+", text)
        if len(runs) > 1 or not _is_ascii(runs[0]):
            if self._xdisplay is None:
                raise ExecutorError(f"typing non-ASCII text ({text[:20]!r}) is supported on X11 only; "
                                    f"this is {self.session}")
            if self._typer is None:
                self._typer = self._input(lambda p: UnicodeTyper(self._xdisplay), "prepare the keyboard map")
        for run in runs:
            if _is_ascii(run):
                self._input(lambda p: p.write(run, interval=0.005), "type")
            else:
                self._input(lambda p: self._typer.type(run), "type")


def _click_holding(p, xy: tuple[int, int] | None, button: str, clicks: int, held: list[str]) -> None:
    for key in held:
        p.keyDown(key)
    try:
        x, y = xy if xy is not None else (None, None)
        p.click(x=x, y=y, clicks=clicks, interval=0.05, button=button)
    finally:
        for key in reversed(held):
            p.keyUp(key)


def _drag(p, start: tuple[int, int] | None, end: tuple[int, int] | None, duration: float) -> None:
    if start is not None:
        p.moveTo(*start)
    p.mouseDown(button="left")
    p.moveTo(*end, duration=max(duration, 0.15))  # intermediate motion events, so apps see a drag
    p.mouseUp(button="left")


def _is_ascii(run: str) -> bool:
    return all(32 <= ord(c) <= 126 or c in "\n\t" for c in run)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _x_reachable(display: str) -> bool:
    """Whether a new connection to `display` succeeds (closed at once)."""
    try:
        open_x_display(display).close()
        return True
    except ExecutorError:
        return False


def _done_message(action: Action) -> str:
    """What ran: the action, and for a scroll above the cap the wheel clicks actually turned."""
    note = scroll_note(action.pixels) if action.action in (A.SCROLL, A.HSCROLL) and action.pixels else ""
    return f"{action.summary()} ({note})" if note else action.summary()
