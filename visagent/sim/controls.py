"""Choice and range widgets: radio group, slider, tabs (see widgets.Widget for the event model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from visagent.sim.theme import Canvas, Rect, inside
from visagent.sim.widgets import Element, Pointer, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld


class ChoiceWidget(Widget):
    """Base for widgets holding one `value` out of `options` (radio group, tabs, dropdown).

    `select` sets the value and calls `on_change` only on a real change to a listed option; `step` moves
    by `delta` options (clamped at the ends, or wrapping round with `wrap`); `pick_at` selects the option
    whose rect (screen px, from `option_rects`) holds the pointer.
    """

    def __init__(self, wid: str, label: str, options: list[str], value: str,
                 on_change: Callable[[str], Any] | None = None) -> None:
        super().__init__(wid, label)
        self.options = list(options)
        self.value = value
        self.on_change = on_change

    def option_rects(self) -> list[Rect]:
        """One rect per option in screen px; widgets that show their options inline override this."""
        return []

    def select(self, value: str) -> bool:
        if value == self.value or value not in self.options:
            return False
        self.value = value
        if self.on_change:
            self.on_change(value)
        return True

    def step(self, delta: int, *, wrap: bool = False) -> bool:
        """Select the option `delta` places from the current one (index 0 if the value is not listed)."""
        i = self.options.index(self.value) if self.value in self.options else 0
        j = (i + delta) % len(self.options) if wrap else max(0, min(len(self.options) - 1, i + delta))
        return self.select(self.options[j])

    def pick_at(self, ev: Pointer) -> bool:
        for o, r in zip(self.options, self.option_rects()):
            if inside(r, ev.x, ev.y):
                return self.select(o)
        return False


class RadioGroup(ChoiceWidget):
    """Mutually exclusive options stacked vertically (or in a row with `horizontal`); each is an element."""

    role = "radio"
    focusable = True

    def __init__(self, wid: str, label: str, options: list[str], value: str,
                 on_change: Callable[[str], Any] | None = None, *, horizontal: bool = False) -> None:
        super().__init__(wid, label, options, value, on_change)
        self.horizontal = horizontal

    def option_rects(self) -> list[Rect]:
        x1, y1, x2, y2 = self.rect
        n = max(1, len(self.options))
        if self.horizontal:
            w = (x2 - x1) / n
            return [(int(x1 + i * w), y1, int(x1 + (i + 1) * w), y2) for i in range(n)]
        h = (y2 - y1) / n
        return [(x1, int(y1 + i * h), x2, int(y1 + (i + 1) * h)) for i in range(n)]

    def elements(self, app: str) -> list[Element]:
        if not self.visible:
            return []
        return [Element(o, r, "text", "radio", app) for o, r in zip(self.options, self.option_rects())]

    def click(self, ev: Pointer) -> bool:
        return self.pick_at(ev)

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name in ("down", "right"):
            return self.step(1)
        if name in ("up", "left"):
            return self.step(-1)
        return False

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th = st.th
        b = st.px(18)
        for o, r in zip(self.options, self.option_rects()):
            y = (r[1] + r[3] - b) // 2
            cv.ellipse((r[0], y, r[0] + b, y + b), outline=th.accent if o == self.value else th.muted,
                       width=max(1, st.px(2)))
            if o == self.value:
                g = st.px(5)
                cv.ellipse((r[0] + g, y + g, r[0] + b - g, y + b - g), fill=th.accent)
            cv.text_in((r[0] + b + st.px(8), r[1], r[2], r[3]), o, st.fs, th.text, False, "left")
        self.focus_ring(cv, st, focused, st.px(3))


class Slider(Widget):
    """A horizontal slider over integers min..max; click or drag the track, arrow keys step."""

    role = "slider"
    focusable = True

    def __init__(self, wid: str, label: str, value: int, lo: int = 0, hi: int = 100, step: int = 1,
                 on_change: Callable[[int], Any] | None = None) -> None:
        super().__init__(wid, label)
        self.value, self.lo, self.hi, self.step = value, lo, hi, step
        self.on_change = on_change

    def track(self) -> tuple[int, int]:
        """Track x-range (screen px) after the label column and before the value text."""
        x1, _, x2, _ = self.rect
        w = x2 - x1
        return (x1 + int(w * 0.32), x2 - int(w * 0.12))

    def x_for(self, value: float) -> float:
        a, b = self.track()
        return a + (b - a) * (value - self.lo) / (self.hi - self.lo)

    def set_from_x(self, x: float) -> bool:
        a, b = self.track()
        frac = min(1.0, max(0.0, (x - a) / max(1, b - a)))
        v = self.lo + round(frac * (self.hi - self.lo) / self.step) * self.step
        return self.set(int(v))

    def set(self, v: int) -> bool:
        v = max(self.lo, min(self.hi, v))
        if v == self.value:
            return False
        self.value = v
        if self.on_change:
            self.on_change(v)
        return True

    @property
    def draggable(self) -> bool:
        return True

    def press(self, ev: Pointer) -> bool:
        return self.set_from_x(ev.x)

    def drag(self, ev: Pointer) -> bool:
        return self.set_from_x(ev.x)

    def click(self, ev: Pointer) -> bool:
        return self.set_from_x(ev.x)

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name in ("right", "up"):
            return self.set(self.value + self.step)
        if name in ("left", "down"):
            return self.set(self.value - self.step)
        return False

    def elements(self, app: str) -> list[Element]:
        return [Element(self.label, self.rect, "text", "slider", app)] if self.visible else []

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        a, b = self.track()
        cy = (r[1] + r[3]) // 2
        h = max(2, st.px(4))
        cv.text_in((r[0], r[1], a - st.px(10), r[3]), self.label, st.fs, th.text, False, "left")
        cv.rect((a, cy - h // 2, b, cy - h // 2 + h), fill=th.border, radius=h // 2)
        kx = int(self.x_for(self.value))
        cv.rect((a, cy - h // 2, kx, cy - h // 2 + h), fill=th.accent, radius=h // 2)
        k = st.px(9)
        cv.ellipse((kx - k, cy - k, kx + k, cy + k), fill=th.accent, outline=th.surface, width=max(1, st.px(2)))
        cv.text_in((b + st.px(8), r[1], r[2], r[3]), str(self.value), st.fs, th.muted, False, "right")
        self.focus_ring(cv, st, focused, st.px(4))


class Tabs(ChoiceWidget):
    """A row of tabs; each tab is an element (role "tab"); the selected one is underlined."""

    role = "tab"
    focusable = True

    def __init__(self, wid: str, options: list[str], value: str,
                 on_change: Callable[[str], Any] | None = None) -> None:
        super().__init__(wid, "tabs", options, value, on_change)

    def tab_rects(self) -> list[Rect]:
        x1, y1, x2, y2 = self.rect
        w = (x2 - x1) / max(1, len(self.options))
        return [(int(x1 + i * w), y1, int(x1 + (i + 1) * w), y2) for i in range(len(self.options))]

    def option_rects(self) -> list[Rect]:
        return self.tab_rects()

    def elements(self, app: str) -> list[Element]:
        if not self.visible:
            return []
        return [Element(o, r, "text", "tab", app) for o, r in zip(self.options, self.tab_rects())]

    def click(self, ev: Pointer) -> bool:
        return self.pick_at(ev)

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name == "right":
            return self.step(1, wrap=True)
        if name == "left":
            return self.step(-1, wrap=True)
        return False

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th = st.th
        cv.line([(self.rect[0], self.rect[3] - 1), (self.rect[2], self.rect[3] - 1)], th.border, max(1, st.px(1)))
        for o, r in zip(self.options, self.tab_rects()):
            sel = o == self.value
            cv.text_in(r, o, st.fs, th.accent if sel else th.muted, sel)
            if sel:
                cv.rect((r[0] + st.px(8), r[3] - st.px(3), r[2] - st.px(8), r[3]), fill=th.accent)
        self.focus_ring(cv, st, focused)
