"""Scrollable lists (wheel on the desktop, swipe on the phone, a spinner while loading) and dropdowns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from visagent.sim.controls import ChoiceWidget
from visagent.sim.icons import draw_icon
from visagent.sim.theme import Canvas, Rect, inside, intersect
from visagent.sim.widgets import Element, Pointer, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

#: Logical pixels (dp) one wheel click scrolls; `SimWorld.apply` turns scroll `pixels` into clicks with it.
WHEEL_CLICK_DP = 48


@dataclass
class ListItem:
    """One row: `key` is stable, `label` is shown; `button` adds a per-row button with that label."""

    key: str
    label: str
    sublabel: str = ""
    icon: str | None = None
    trailing: str = ""
    button: str | None = None


class ListView(Widget):
    """A vertical list of rows clipped to its rect. `scroll` is the content offset in screen px.

    Callbacks get the ListItem: `on_item` (click / tap), `on_double` (double click), `on_context`
    (right click / long press, with the pointer), `on_button` (the row's button).
    """

    role = "list"
    focusable = True

    def __init__(self, wid: str, items: list[ListItem], *, row_dp: float = 44,
                 on_item: Callable[[ListItem], Any] | None = None,
                 on_double: Callable[[ListItem], Any] | None = None,
                 on_context: Callable[[ListItem, Pointer], Any] | None = None,
                 on_button: Callable[[ListItem], Any] | None = None, touch: bool = False,
                 clock: Any = None) -> None:
        super().__init__(wid, "list")
        self.items = items
        self.row_dp = row_dp
        self.row_h = int(row_dp)
        self.scroll = 0
        self.selected: str | None = None
        self.on_item, self.on_double, self.on_context, self.on_button = on_item, on_double, on_context, on_button
        self.touch = touch
        self.clock = clock  # the world's VirtualClock: rows are hidden from elements() while loading
        self.loading_until = 0.0
        self._scroll0 = 0
        self.empty_text = "Nothing here"

    def layout(self, rect: Rect, s: float) -> None:
        self.place(rect)
        self.row_h = int(round(self.row_dp * s))
        self.clamp()

    # -- scrolling --------------------------------------------------------------------------------
    @property
    def max_scroll(self) -> int:
        return max(0, len(self.items) * self.row_h - (self.rect[3] - self.rect[1]))

    def clamp(self) -> None:
        self.scroll = int(min(max(0, self.scroll), self.max_scroll))

    def loading(self, now: float) -> bool:
        return now < self.loading_until

    def row_rect(self, i: int) -> Rect:
        y = self.rect[1] + i * self.row_h - self.scroll
        return (self.rect[0], y, self.rect[2], y + self.row_h)

    def button_rect(self, row: Rect, s: float) -> Rect:
        w, h = int(110 * s), int(min(30 * s, (row[3] - row[1]) * 0.7))
        cy = (row[1] + row[3]) // 2
        return (row[2] - w - int(10 * s), cy - h // 2, row[2] - int(10 * s), cy - h // 2 + h)

    def visible_range(self) -> tuple[int, int]:
        """Indices [first, last] of rows at least half visible (last < first when none)."""
        first = math.ceil((self.scroll - self.row_h / 2) / self.row_h) if self.row_h else 0
        last = math.floor((self.scroll + (self.rect[3] - self.rect[1]) - self.row_h / 2) / self.row_h)
        return max(0, first), min(len(self.items) - 1, last)

    def index_of(self, key: str) -> int:
        for i, it in enumerate(self.items):
            if it.key == key:
                return i
        return -1

    def wheel(self, clicks: float, world: SimWorld) -> bool:
        before = self.scroll
        self.scroll -= int(clicks * WHEEL_CLICK_DP * world.ui_scale)
        self.clamp()
        return self.scroll != before

    @property
    def draggable(self) -> bool:
        return self.touch

    def press(self, ev: Pointer) -> bool:
        self._scroll0 = self.scroll
        return False

    def drag(self, ev: Pointer) -> bool:
        before = self.scroll
        self.scroll = int(self._scroll0 - (ev.y - ev.y0))
        self.clamp()
        return before != self.scroll

    # -- hits -------------------------------------------------------------------------------------
    def item_at(self, x: float, y: float) -> tuple[ListItem | None, bool]:
        """(item under the point, whether the point is on its row button)."""
        if not inside(self.rect, x, y) or not self.row_h:
            return None, False
        i = int((y - self.rect[1] + self.scroll) // self.row_h)
        if not 0 <= i < len(self.items):
            return None, False
        it = self.items[i]
        s = self.row_h / self.row_dp
        on_btn = bool(it.button) and inside(self.button_rect(self.row_rect(i), s), x, y)
        return it, on_btn

    def click(self, ev: Pointer) -> bool:
        if self.loading(ev.world.clock.now()):
            return False
        it, on_btn = self.item_at(ev.x, ev.y)
        if it is None:
            return False
        if on_btn and self.on_button:
            self.on_button(it)
            return True
        self.selected = it.key
        if self.on_item:
            self.on_item(it)
        return True

    def double_click(self, ev: Pointer) -> bool:
        it, on_btn = self.item_at(ev.x, ev.y)
        if it is not None and not on_btn and self.on_double:
            self.on_double(it)
            return True
        return self.click(ev)

    def context(self, ev: Pointer) -> bool:
        it, _ = self.item_at(ev.x, ev.y)
        if it is None or self.on_context is None or self.loading(ev.world.clock.now()):
            return False
        self.selected = it.key
        self.on_context(it, ev)
        return True

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        keys = [it.key for it in self.items]
        if not keys:
            return False
        i = keys.index(self.selected) if self.selected in keys else -1
        if name in ("down", "up"):
            i = min(len(keys) - 1, i + 1) if name == "down" else max(0, i - 1)
            self.selected = keys[i]
            r = self.row_rect(i)
            if r[1] < self.rect[1]:
                self.scroll -= self.rect[1] - r[1]
            elif r[3] > self.rect[3]:
                self.scroll += r[3] - self.rect[3]
            self.clamp()
            return True
        if name == "enter" and i >= 0:
            cb = self.on_double or self.on_item
            if cb:
                cb(self.items[i])
                return True
        return False

    def elements(self, app: str) -> list[Element]:
        if not self.visible or self.row_h <= 0 or (self.clock is not None and self.loading(self.clock.now())):
            return []
        out: list[Element] = []
        a, b = self.visible_range()
        s = self.row_h / self.row_dp
        for i in range(a, b + 1):
            it = self.items[i]
            row = intersect(self.row_rect(i), self.rect)
            if row is None:
                continue
            out.append(Element(it.label, row, "text", "list_item", app))
            if it.button:
                out.append(Element(it.button, self.button_rect(self.row_rect(i), s), "text", "button", app))
        return out

    # -- painting ---------------------------------------------------------------------------------
    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        w, h = r[2] - r[0], r[3] - r[1]
        if w <= 0 or h <= 0:
            return
        if self.loading(st.now):
            cv.rect(r, fill=th.surface)
            rad = st.px(16)
            cx, cy = (r[0] + r[2]) // 2, r[1] + min(h // 2, st.px(80))
            start = (st.now * 400) % 360
            cv.arc((cx - rad, cy - rad, cx + rad, cy + rad), start, start + 270, th.accent, max(2, st.px(3)))
            cv.text_in((r[0], cy + rad, r[2], cy + rad + st.px(30)), "Loading…", st.fs, th.muted)
            return
        img = Image.new("RGB", (w, h), th.surface)
        sub = Canvas(img, (r[0], r[1]))
        if not self.items:
            sub.text_in((r[0], r[1], r[2], r[1] + st.px(60)), self.empty_text, st.fs, th.muted)
        a, b = max(0, self.scroll // max(1, self.row_h)), min(len(self.items) - 1,
                                                               (self.scroll + h) // max(1, self.row_h))
        for i in range(a, b + 1):
            it = self.items[i]
            row = self.row_rect(i)
            if it.key == self.selected:
                sub.rect(row, fill=th.surface2)
                sub.rect((row[0], row[1], row[0] + st.px(3), row[3]), fill=th.accent)
            x = row[0] + st.px(12)
            if it.icon:
                isz = int(self.row_h * 0.5)
                iy = (row[1] + row[3] - isz) // 2
                draw_icon(sub, it.icon, (x, iy, x + isz, iy + isz), th.accent, th.surface)
                x += isz + st.px(12)
            right = row[2] - st.px(12)
            if it.button:
                br = self.button_rect(row, st.s)
                sub.rect(br, fill=th.accent, radius=st.px(5))
                sub.text_in(br, it.button, int(st.fs * 0.9), th.on_accent, True)
                right = br[0] - st.px(8)
            if it.trailing:
                sub.text_in((x, row[1], right, row[3]), it.trailing, st.fs, th.muted, False, "right")
                right -= st.px(90)
            if it.sublabel:
                mid = (row[1] + row[3]) // 2
                sub.text_in((x, row[1], right, mid + st.px(2)), it.label, st.fs, th.text, False, "left")
                sub.text_in((x, mid, right, row[3] - st.px(2)), it.sublabel, int(st.fs * 0.85), th.muted, False,
                            "left")
            else:
                sub.text_in((x, row[1], right, row[3]), it.label, st.fs, th.text, False, "left")
            sub.line([(row[0] + st.px(12), row[3] - 1), (row[2], row[3] - 1)], th.border, 1)
        if not self.touch and self.max_scroll > 0:
            total = len(self.items) * self.row_h
            bh = max(st.px(24), h * h // total)
            by = r[1] + (h - bh) * self.scroll // self.max_scroll
            sub.rect((r[2] - st.px(6), by, r[2] - st.px(2), by + bh), fill=th.border, radius=st.px(2))
        cv.image.paste(img, (r[0] - cv.ox, r[1] - cv.oy))
        if focused:
            cv.rect(r, outline=th.accent, width=max(1, st.px(1)))


class Dropdown(ChoiceWidget):
    """A closed combo box showing `value`; a click opens a popup of `options` below it."""

    role = "dropdown"
    focusable = True

    def click(self, ev: Pointer) -> bool:
        from visagent.sim.overlays import MenuItem, PopupMenu

        w = ev.world
        items = [MenuItem(o, (lambda o=o: self.select(o)), checked=o == self.value) for o in self.options]
        w.open_popup(PopupMenu(f"{self.wid}.options", items, (self.rect[0], self.rect[3] + 2),
                               app=w.app_of(self), width=self.rect[2] - self.rect[0], role="option"))
        return True

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name == "down":
            return self.step(1)
        if name == "up":
            return self.step(-1)
        return False

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        cv.rect(r, fill=th.surface2, outline=th.accent if focused else th.border, radius=st.px(5),
                width=max(1, st.px(1)))
        cv.text_in((r[0], r[1], r[2] - st.px(28), r[3]), self.value, st.fs, th.text, False, "left", st.px(10))
        a = st.px(20)
        cy = (r[1] + r[3]) // 2
        draw_icon(cv, "down", (r[2] - a - st.px(6), cy - a // 2, r[2] - st.px(6), cy + a // 2), th.muted)
