"""SimWorld: a deterministic GUI world (desktop or phone) rendered with Pillow and driven by raw input.

Input arrives as low-level events in screen pixels (`pointer_down/move/up`, `wheel`, `key`, `text`) so a
real window can forward its events; `apply(action)` turns one "screen"-space `Action` into those events.
Gestures are recognised here: click, double click (two clicks within DOUBLE_CLICK_S), right click,
long press (held >= LONG_PRESS_S on the phone), drag/swipe (moved past the touch slop).
Time comes only from `clock` (a VirtualClock), so the same seed and inputs give the same pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from PIL import Image

from visagent.core import actions as A
from visagent.core.errors import ExecutorError
from visagent.sim.clock import VirtualClock
from visagent.sim.keys import normalise_key
from visagent.sim.overlays import Overlay
from visagent.sim.theme import Canvas, Theme, make_theme
from visagent.sim.widgets import Element, Pointer, Style, Widget

SIZES = {"desktop": (1280, 800), "phone": (1080, 2400)}
UI_SCALES = {"desktop": 1.0, "phone": 2.625}
DOUBLE_CLICK_S = 0.4
LONG_PRESS_S = 0.5
CLICK_HOLD_S = 0.05
TOUCH_SLOP_DP = 8

@dataclass
class _Press:
    x0: float
    y0: float
    button: str
    t0: float
    target: Widget | None
    moved: bool = False


class SimWorld:
    """A simulated screen. `platform` "desktop" (1280x800) or "phone" (1080x2400); `apps` are the installed
    app names (default: all); `open_app` is brought to the front at start; `setup` maps app name → options;
    `seed` randomises theme, window positions, list orders and filler data."""

    def __init__(self, platform: str = "desktop", *, apps: list[str] | None = None, seed: int = 0,
                 setup: dict[str, dict[str, Any]] | None = None, open_app: str | None = None,
                 clock: VirtualClock | None = None, dark: bool | None = None,
                 params: dict[str, Any] | None = None) -> None:
        from visagent.sim.apps import APP_CLASSES

        if platform not in SIZES:
            raise ExecutorError(f"unknown sim platform {platform!r}; use 'desktop' or 'phone'")
        self.platform = platform
        self.size: tuple[int, int] = SIZES[platform]
        self.ui_scale = UI_SCALES[platform]
        self.clock = clock or VirtualClock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = dict(params or {})
        self.dark = self.rng.random() < 0.4 if dark is None else dark
        self.clipboard = ""
        self.fs: dict[str, str] = {}  # the shared Documents folder: file name → text (Notes saves, Files lists)
        self.pointer: tuple[float, float] = (self.size[0] / 2, self.size[1] / 2)
        self.overlays: list[Overlay] = []
        self.version = 0
        self._anims: dict[str, tuple[float, float]] = {}
        self._press: _Press | None = None
        self._last_click: tuple[float, float, float, Widget | None] | None = None
        self._frame: Image.Image | None = None
        self._frame_key: Any = None
        setup = setup or {}
        names = list(apps) if apps else list(APP_CLASSES)
        unknown = [n for n in names if n not in APP_CLASSES]
        if unknown:
            raise ExecutorError(f"unknown sim app(s) {unknown}; known: {', '.join(APP_CLASSES)}")
        self.apps = {n: APP_CLASSES[n](self, random.Random(f"{seed}:{n}"), dict(setup.get(n) or {}))
                     for n in names}
        if platform == "desktop":
            from visagent.sim.desktop import DesktopShell

            self.shell: Any = DesktopShell(self)
        else:
            from visagent.sim.phone import PhoneShell

            self.shell = PhoneShell(self)
        if open_app:
            self.launch(open_app, animate=False)
            for w in self.apps[self.find_app(open_app)].widgets():
                if hasattr(w, "loading_until"):
                    w.loading_until = 0.0  # it was open before the episode: already loaded
        for name, app in self.apps.items():
            hook = getattr(app, "after_setup", None)
            if hook:
                hook()

    # -- theme, time, animation --------------------------------------------------------------------
    @property
    def theme(self) -> Theme:
        return make_theme(self.dark)

    def animate(self, key: str, duration: float) -> None:
        """Start an animation of `duration` seconds now; input is ignored until it ends."""
        self._anims[key] = (self.clock.now(), duration)
        self.version += 1

    def anim_progress(self, key: str) -> float:
        """0..1 progress of animation `key` (1.0 when unknown or done)."""
        if key not in self._anims:
            return 1.0
        t0, d = self._anims[key]
        return 1.0 if d <= 0 else min(1.0, max(0.0, (self.clock.now() - t0) / d))

    def transitioning(self) -> bool:
        """Whether a page/window/dialog animation is running (input is ignored meanwhile)."""
        now = self.clock.now()
        if any(t0 + d > now for t0, d in self._anims.values()):
            return True
        return any(o.progress(now) < 1.0 for o in self.overlays)

    def busy_for(self) -> float:
        """Seconds until nothing moves any more (0 when idle)."""
        now = self.clock.now()
        ends = [t0 + d for t0, d in self._anims.values()]
        ends += [o.opened_at + o.anim_s for o in self.overlays]
        for app in self.running_apps():
            ends += [getattr(w, "loading_until", 0.0) for w in app.widgets()]
        return max([0.0] + [e - now for e in ends])

    def busy(self) -> bool:
        """Whether anything is still moving: an animation or a list spinner. Agents should wait."""
        now = self.clock.now()
        return self.transitioning() or any(a.busy(now) for a in self.running_apps())

    # -- apps and overlays -------------------------------------------------------------------------
    def running_apps(self) -> list[Any]:
        return [self.apps[n] for n in self.shell.open_names()]

    def foreground(self) -> Any:
        """The front app (None on the phone home screen / an empty desktop)."""
        return self.shell.foreground()

    def find_app(self, label: str) -> str:
        """App name for a label, name or package ("Settings", "settings", "com.visagent.settings")."""
        q = label.strip().lower()
        for name, app in self.apps.items():
            if q in (name, app.title.lower()) or q in app.packages:
                return name
        raise ExecutorError(f"no app {label!r} on this {self.platform}; installed: "
                            f"{', '.join(a.title for a in self.apps.values())}")

    def launch(self, label: str, animate: bool = True) -> None:
        """Open (or bring to the front) the app named by label, name or package. Raises ExecutorError."""
        name = self.find_app(label)
        self.overlays = [o for o in self.overlays if o.modal]  # launching closes open menus
        self.shell.launch(name, animate)
        self.version += 1

    def open_popup(self, overlay: Overlay) -> None:
        self.overlays = [o for o in self.overlays if o.modal]
        self._push(overlay)

    def open_dialog(self, overlay: Overlay) -> None:
        self._push(overlay)

    def _push(self, overlay: Overlay) -> None:
        overlay.opened_at = self.clock.now()
        overlay.world = self
        self.overlays.append(overlay)
        overlay.layout(self)
        self.version += 1

    def close_overlay(self, overlay: Overlay) -> None:
        if overlay in self.overlays:
            self.overlays.remove(overlay)
        self.version += 1

    def app_of(self, widget: Widget) -> str:
        fg = self.foreground()
        return fg.name if fg is not None else "system"

    def has_focus(self, app: Any) -> bool:
        return self.foreground() is app and not any(o.modal for o in self.overlays)

    def focused_widget(self) -> Widget | None:
        if self.overlays:
            return self.overlays[-1].focus
        fg = self.foreground()
        return fg.focus if fg is not None else None

    # -- observation -------------------------------------------------------------------------------
    def layout(self) -> None:
        """Position every widget for the current state (done before input, rendering and oracle reads)."""
        self.shell.layout()
        for o in self.overlays:
            o.layout(self)

    def render(self, copy: bool = True) -> Image.Image:
        """The screen as an RGB image of `size` (a fresh copy; cached while nothing changes). `copy=False`
        returns the cached frame itself (the same object until the screen changes): never modify it."""
        now = self.clock.now()
        key = (self.version, now if self.busy() else None, int(now // 60))
        if key != self._frame_key or self._frame is None:
            self.layout()
            img = self.shell.background().copy()
            cv = Canvas(img)
            self.shell.draw(cv)
            for o in self.overlays:
                app = self.apps.get(o.app)
                st = app.style() if app is not None else Style(self.theme, self.ui_scale, now)
                if o.modal:
                    img.paste(Image.blend(img, Image.new("RGB", img.size, (0, 0, 0)), 0.35 * o.progress(now)))
                o.draw(cv, st)
            self._frame, self._frame_key = img, key
        return self._frame.copy() if copy else self._frame

    def element_at(self, x: float, y: float) -> Element | None:
        """The smallest visible element whose box holds the screen point (x, y), or None."""
        hits = [e for e in self.visible_elements() if e.bbox[0] <= x < e.bbox[2] and e.bbox[1] <= y < e.bbox[3]]
        return min(hits, key=lambda e: (e.bbox[2] - e.bbox[0]) * (e.bbox[3] - e.bbox[1]), default=None)

    def visible_elements(self) -> list[Element]:
        """Every visible interactive element, top-most layer first for overlays, in screen pixels."""
        self.layout()
        modal = [o for o in self.overlays if o.modal]
        if modal:
            return modal[-1].elements() + [e for o in self.overlays[self.overlays.index(modal[-1]) + 1:]
                                           for e in o.elements()]
        out: list[Element] = []
        covers = []
        for o in reversed(self.overlays):
            out += o.elements()
            covers.append(o.rect)
        for e in self.shell.elements():
            cx, cy = e.center
            if not any(r[0] <= cx < r[2] and r[1] <= cy < r[3] for r in covers):
                out.append(e)
        return out

    def state(self) -> dict[str, Any]:
        """Observable state for success predicates (JSON-serialisable)."""
        fg = self.foreground()
        top = self.overlays[-1] if self.overlays else None
        data: dict[str, Any] = {
            "platform": self.platform, "time": round(self.clock.now(), 3), "theme": "dark" if self.dark else "light",
            "foreground": fg.name if fg is not None else None, "open_apps": self.shell.open_names(),
            "dialog": getattr(top, "title", None) if top is not None and top.modal else None,
            "popup": top.oid if top is not None and not top.modal else None, "clipboard": self.clipboard,
        }
        for name, app in self.apps.items():
            data[name] = app.state()
        return data

    # -- low-level input ---------------------------------------------------------------------------
    def _hit(self, x: float, y: float) -> Widget | None:
        """Top-most widget at a point; closes a popup when the point is outside it (None then)."""
        if self.overlays:
            top = self.overlays[-1]
            if top.contains(x, y):
                w = top.hit(x, y)
                if w is not None and w.focusable:
                    top.focus = w
                return w
            if top.modal:
                return None
            self.close_overlay(top)
            return None
        w, app = self.shell.hit(x, y)
        if app is not None and w is not None and w.focusable:
            app.focus = w
        return w

    def _ev(self, x: float, y: float, button: str) -> Pointer:
        p = self._press
        return Pointer(x, y, p.x0 if p else x, p.y0 if p else y, button, self)

    def pointer_down(self, x: float, y: float, button: str = "left") -> None:
        """Press a pointer button ("left", "right", "middle") at screen pixel (x, y)."""
        self.pointer = (x, y)
        self.version += 1
        if self.transitioning():
            self._press = None
            return
        self.layout()
        target = self._hit(x, y)
        self._press = _Press(x, y, button, self.clock.now(), target)
        if target is not None and target.draggable and button == "left":
            target.press(self._ev(x, y, button))

    def pointer_move(self, x: float, y: float) -> None:
        """Move the pointer to (x, y); drags the pressed widget once past the touch slop."""
        self.pointer = (x, y)
        p = self._press
        if p is None:
            return
        if not p.moved and abs(x - p.x0) + abs(y - p.y0) > TOUCH_SLOP_DP * self.ui_scale:
            p.moved = True
        if p.moved and p.target is not None and p.target.draggable:
            p.target.drag(self._ev(x, y, p.button))
            self.version += 1

    def pointer_up(self, x: float, y: float, button: str = "left") -> None:
        """Release: a click, double click, right click or long press when it did not move; ends drags."""
        self.pointer_move(x, y)
        p, self._press = self._press, None
        self.version += 1
        if p is None:
            return
        ev = Pointer(x, y, p.x0, p.y0, p.button, self)
        t = p.target
        if p.moved:
            if t is not None and t.draggable:
                t.release(ev)
            self._last_click = None
            return
        if t is None:
            self._last_click = None
            return
        now = self.clock.now()
        if p.button == "right" or (self.platform == "phone" and now - p.t0 >= LONG_PRESS_S):
            t.context(ev)
            self._last_click = None
            return
        if p.button != "left":
            return
        last = self._last_click
        if (last is not None and last[3] is t and now - last[0] <= DOUBLE_CLICK_S
                and abs(last[1] - x) + abs(last[2] - y) <= TOUCH_SLOP_DP * self.ui_scale):
            self._last_click = None
            t.double_click(ev)
        else:
            self._last_click = (now, x, y, t)
            t.click(ev)

    def wheel(self, x: float, y: float, dx: float = 0, dy: float = 0) -> None:
        """Scroll wheel at (x, y) in clicks; dy > 0 scrolls up (content moves down), dx > 0 scrolls left."""
        self.pointer = (x, y)
        self.version += 1
        if self.transitioning() or not dy:
            return
        self.layout()
        if self.overlays and self.overlays[-1].modal:
            return
        w, _ = self.shell.hit(x, y)
        while w is not None:
            if w.wheel(dy, self):
                return
            w = getattr(w, "parent", None)
        fg = self.foreground()
        if fg is not None:
            for cand in fg.widgets():
                if cand.visible and cand.hit(x, y) and cand.wheel(dy, self):
                    return

    def key(self, name: str, modifiers: tuple[str, ...] | list[str] = ()) -> None:
        """Press a named key ("enter", "tab", "backspace", "a", "f5" ...) with modifiers ("ctrl", "shift" ...).
        A printable character without ctrl/alt/meta types itself."""
        k = normalise_key(name)
        mods = frozenset(normalise_key(m) for m in modifiers)
        self.version += 1
        if self.transitioning():
            return
        self.layout()
        if len(k) == 1 and not (mods & {"ctrl", "alt", "meta"}):
            self.text(k.upper() if "shift" in mods else k)
            return
        if k == "space" and not (mods & {"ctrl", "alt", "meta"}):
            w = self.focused_widget()
            if w is not None and w.key("space", mods, self):
                return
            self.text(" ")
            return
        if k == "tab":
            self._tab("shift" in mods)
            return
        if self.overlays:
            top = self.overlays[-1]
            if top.focus is not None and top.focus.key(k, mods, self):
                return
            top.key(k, mods, self)
            return
        fg = self.foreground()
        if fg is not None:
            if fg.focus is not None and fg.focus.visible and fg.focus.key(k, mods, self):
                return
            if fg.key(k, mods):
                return
        self.shell.key(k, mods)

    def text(self, s: str) -> None:
        """Type unicode text into the focused widget."""
        self.version += 1
        if self.transitioning() or not s:
            return
        w = self.focused_widget()
        if w is not None:
            w.text_input(s, self)

    def _tab(self, backwards: bool) -> None:
        if self.overlays:
            holder: Any = self.overlays[-1]
            order = [w for w in holder.widgets if w.focusable and w.visible]
        else:
            holder = self.foreground()
            if holder is None:
                return
            order = holder.focusables()
        if not order:
            return
        i = order.index(holder.focus) if holder.focus in order else -1
        holder.focus = order[(i + (-1 if backwards else 1)) % len(order)] if i >= 0 or not backwards else order[-1]

    def system_button(self, name: str) -> None:
        """Phone system buttons: Back, Home, Menu, Enter. Raises ExecutorError on the desktop (except Enter)."""
        self.version += 1
        if name == "Enter":
            self.key("enter")
            return
        if self.platform != "phone":
            raise ExecutorError(f"system_button {name!r} exists only on the phone; use key actions on the desktop")
        if self.transitioning():
            return
        self.layout()
        self.shell.system_button(name)

    # -- actions -----------------------------------------------------------------------------------
    def click(self, x: float, y: float, button: str = "left", hold: float = CLICK_HOLD_S) -> None:
        self.pointer_move(x, y)
        self.pointer_down(x, y, button)
        self.clock.advance(hold)
        self.pointer_up(x, y, button)

    def drag(self, start: tuple[float, float], end: tuple[float, float], duration: float = 0.3,
             steps: int = 8) -> None:
        self.pointer_move(*start)
        self.pointer_down(*start)
        for i in range(1, steps + 1):
            self.clock.advance(duration / steps)
            f = i / steps
            self.pointer_move(start[0] + (end[0] - start[0]) * f, start[1] + (end[1] - start[1]) * f)
        self.pointer_up(*end)

    def apply(self, action: A.Action) -> str:
        """Execute one action given in "screen" (or "absolute") pixels through the low-level events.
        Returns a short description. Raises ExecutorError for actions this world cannot perform."""
        from visagent.sim.gestures import apply_action

        if action.space not in ("screen", "absolute"):
            raise ExecutorError(f"the sim executes actions in screen pixels, got space {action.space!r}; "
                                "convert with visagent.loop.coords.to_screen first")
        self._last_click = None  # separate actions never merge into one double click
        return apply_action(self, action)
