"""Things drawn above apps: popup menus (menu bar menus, context menus, dropdown options) and modal dialogs.

An overlay owns its widgets; while a modal dialog is open nothing below it takes input. Popups close on a
click outside them (the click is consumed) or Escape. Dialogs animate in over `ANIM_S` seconds of the
world's clock and ignore input until then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visagent.sim.icons import draw_icon
from visagent.sim.theme import Canvas, Rect, inside, mix, text_width
from visagent.sim.widgets import Button, Element, Pointer, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.textfield import TextField
    from visagent.sim.world import SimWorld

DIALOG_ANIM_S = 0.3


@dataclass
class MenuItem:
    label: str
    action: Callable[[], Any] | None = None
    shortcut: str = ""
    enabled: bool = True
    checked: bool = False


class Overlay:
    """Base: a rect, widgets in Tab order, a focused widget, modality and an owning app."""

    modal = False
    anim_s = 0.0

    def __init__(self, oid: str, app: str) -> None:
        self.oid = oid
        self.app = app
        self.rect: Rect = (0, 0, 0, 0)
        self.widgets: list[Widget] = []
        self.focus: Widget | None = None
        self.opened_at = 0.0
        self.world: SimWorld | None = None

    def layout(self, world: SimWorld) -> None: ...

    def progress(self, now: float) -> float:
        if self.anim_s <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - self.opened_at) / self.anim_s))

    def contains(self, x: float, y: float) -> bool:
        return inside(self.rect, x, y)

    def hit(self, x: float, y: float) -> Widget | None:
        for w in reversed(self.widgets):
            if w.hit(x, y):
                return w
        return None

    def elements(self) -> list[Element]:
        return [e for w in self.widgets for e in w.elements(self.app)]

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        return False

    def close(self) -> None:
        if self.world is not None:
            self.world.close_overlay(self)

    def draw(self, cv: Canvas, st: Style) -> None: ...


class MenuItemWidget(Widget):
    role = "menu_item"

    def __init__(self, popup: PopupMenu, item: MenuItem, role: str) -> None:
        super().__init__(f"{popup.oid}.{item.label}", item.label)
        self.popup, self.item = popup, item
        self.role = role
        self.enabled = item.enabled

    def click(self, ev: Pointer) -> bool:
        if not self.enabled:
            return False
        self.popup.close()
        if self.item.action:
            self.item.action()
        return True


class PopupMenu(Overlay):
    """A list of menu items at `anchor` (top-left, screen px), clamped onto the screen."""

    def __init__(self, oid: str, items: list[MenuItem], anchor: tuple[float, float], *, app: str,
                 width: int | None = None, role: str = "menu_item") -> None:
        super().__init__(oid, app)
        self.items = items
        self.anchor = anchor
        self.width = width
        self.widgets = [MenuItemWidget(self, it, role) for it in items]
        self.hover = -1

    def layout(self, world: SimWorld) -> None:
        s = world.ui_scale
        row = int((32 if world.platform == "desktop" else 52) * s)
        fs = int(14 * s)
        w = max([self.width or 0] + [text_width(it.label, fs) + text_width(it.shortcut, fs) + int(70 * s)
                                     for it in self.items])
        h = row * len(self.items) + int(8 * s)
        x, y = self.anchor
        sw, sh = world.size
        x = min(max(0, x), sw - w - 2)
        if y + h > sh - 2:
            y = max(0, y - h)
        self.rect = (int(x), int(y), int(x + w), int(y + h))
        for i, wd in enumerate(self.widgets):
            y1 = self.rect[1] + int(4 * s) + i * row
            wd.place((self.rect[0], y1, self.rect[2], y1 + row))

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name == "escape":
            self.close()
            return True
        if name in ("down", "up"):
            n = len(self.widgets)
            self.hover = (self.hover + (1 if name == "down" else -1)) % n
            return True
        if name == "enter" and 0 <= self.hover < len(self.widgets):
            return self.widgets[self.hover].click(Pointer(0, 0, 0, 0, "left", world))
        return True  # a menu swallows other keys

    def draw(self, cv: Canvas, st: Style) -> None:
        th, r = st.th, self.rect
        sh = st.px(4)
        cv.rect((r[0] + sh, r[1] + sh, r[2] + sh, r[3] + sh), fill=mix(th.shadow, th.bg, 0.5), radius=st.px(6))
        cv.rect(r, fill=th.surface, outline=th.border, radius=st.px(6), width=max(1, st.px(1)))
        for i, wd in enumerate(self.widgets):
            wr = wd.rect
            if i == self.hover:
                cv.rect((wr[0] + st.px(4), wr[1], wr[2] - st.px(4), wr[3]), fill=th.surface2, radius=st.px(4))
            fg = th.text if wd.enabled else th.muted
            if wd.item.checked:
                a = st.px(14)
                cy = (wr[1] + wr[3]) // 2
                draw_icon(cv, "check", (wr[0] + st.px(8), cy - a // 2, wr[0] + st.px(8) + a, cy + a // 2), th.accent)
            cv.text_in((wr[0] + st.px(28), wr[1], wr[2], wr[3]), wd.item.label, st.fs, fg, False, "left")
            if wd.item.shortcut:
                cv.text_in((wr[0], wr[1], wr[2] - st.px(12), wr[3]), wd.item.shortcut, int(st.fs * 0.9), th.muted,
                           False, "right")


class Dialog(Overlay):
    """A modal dialog: title, message, optional text fields, buttons (last = default, Enter), Escape cancels.

    `fields` are TextFields shown under the message; `error` is a red line under them (validation).
    """

    modal = True
    anim_s = DIALOG_ANIM_S

    def __init__(self, oid: str, title: str, message: str, buttons: list[Button], *, app: str,
                 fields: list[TextField] | None = None, cancel: Button | None = None,
                 default: Button | None = None, width_dp: int = 420) -> None:
        super().__init__(oid, app)
        self.title, self.message = title, message
        self.fields = fields or []
        self.buttons = buttons
        self.cancel = cancel
        self.default = default if default is not None else (buttons[-1] if buttons else None)
        self.width_dp = width_dp
        self.error = ""
        self.widgets = [*self.fields, *self.buttons]
        self.focus = self.fields[0] if self.fields else self.default

    def layout(self, world: SimWorld) -> None:
        s = world.ui_scale
        area = world.shell.dialog_area(self.app)
        w = min(int(self.width_dp * s), area[2] - area[0] - int(24 * s))
        pad = int(20 * s)
        h = int(56 * s) + (int(26 * s) * max(1, len(self._lines(w - 2 * pad, int(14 * s)))) if self.message else 0)
        h += len(self.fields) * int(48 * s) + (int(24 * s) if self.error else 0) + int(64 * s)
        p = self.progress(world.clock.now())
        slide = int((1 - p) * 40 * s)
        x = (area[0] + area[2] - w) // 2
        y = (area[1] + area[3] - h) // 2 + slide
        self.rect = (x, y, x + w, y + h)
        fy = y + int(56 * s) + (int(26 * s) * max(1, len(self._lines(w - 2 * pad, int(14 * s)))) if self.message else 0)
        for f in self.fields:
            f.place((x + pad, fy, x + w - pad, fy + int(38 * s)))
            fy += int(48 * s)
        bw, bh = int(104 * s), int(36 * s)
        bx = x + w - pad
        for b in reversed(self.buttons):
            b.place((bx - bw, y + h - pad - bh, bx, y + h - pad))
            bx -= bw + int(10 * s)

    def _lines(self, width: int, fs: int) -> list[str]:
        out, cur = [], ""
        for word in self.message.split():
            cand = f"{cur} {word}".strip()
            if text_width(cand, fs) > width and cur:
                out.append(cur)
                cur = word
            else:
                cur = cand
        return out + ([cur] if cur else [])

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name == "escape" and self.cancel is not None:
            return self.cancel.click(Pointer(0, 0, 0, 0, "left", world))
        if name == "enter" and not (isinstance(self.focus, Button)) and self.default is not None:
            return self.default.click(Pointer(0, 0, 0, 0, "left", world))
        return False

    def draw(self, cv: Canvas, st: Style) -> None:
        th, r = st.th, self.rect
        pad = st.px(20)
        sh = st.px(6)
        cv.rect((r[0] + sh, r[1] + sh, r[2] + sh, r[3] + sh), fill=mix(th.shadow, (0, 0, 0), 0.5), radius=st.px(10))
        cv.rect(r, fill=th.surface, outline=th.border, radius=st.px(10), width=max(1, st.px(1)))
        cv.text((r[0] + pad, r[1] + pad), self.title, st.px(17), th.text, True)
        y = r[1] + st.px(56)
        for line in self._lines(r[2] - r[0] - 2 * pad, st.fs) if self.message else []:
            cv.text((r[0] + pad, y), line, st.fs, th.muted)
            y += st.px(26)
        for f in self.fields:
            cv.text((f.rect[0], f.rect[1] - st.px(2)), "", st.fs, th.muted)
            f.draw(cv, st, f is self.focus)
        if self.error:
            fy = self.fields[-1].rect[3] + st.px(6) if self.fields else y
            cv.text((r[0] + pad, fy), self.error, int(st.fs * 0.9), th.danger)
        for b in self.buttons:
            b.draw(cv, st, b is self.focus)
