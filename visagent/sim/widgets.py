"""Basic sim widgets: the Widget base, label, button, icon button, checkbox, toggle (choices and ranges
live in controls.py, text entry in textfield.py, lists and dropdowns in lists.py).

Every widget has a `rect` in screen pixels (set by its app's layout each frame), paints itself with
`draw(cv, st, focused)`, reports its interactive parts with `elements(app)` and reacts to gestures the world
has already recognised (`click`, `double_click`, `context`, `press`/`drag`/`release`, `wheel`, `key`,
`text_input`). Event methods return True when they changed something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visagent.sim.icons import draw_icon
from visagent.sim.theme import Canvas, Rect, Theme, inside, text_width

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld


@dataclass(frozen=True)
class Element:
    """A visible interactive element. `bbox` = (x1, y1, x2, y2) in screen pixels (x2/y2 exclusive);
    `ui_type` "text" (has visible text) or "icon"; `role` e.g. button, textfield, checkbox, list_item;
    `app` the app it belongs to ("system" for shell chrome)."""

    label: str
    bbox: tuple[int, int, int, int]
    ui_type: str
    role: str
    app: str

    @property
    def center(self) -> tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "bbox": list(self.bbox), "ui_type": self.ui_type, "role": self.role,
                "app": self.app}


@dataclass
class Style:
    """What a widget needs to paint: theme, UI scale (screen px per dp) and the clock time."""

    th: Theme
    s: float
    now: float

    def px(self, dp: float) -> int:
        return int(round(dp * self.s))

    @property
    def fs(self) -> int:
        return self.px(14)


@dataclass
class Pointer:
    """A pointer gesture: where it is now (x, y), where it started (x0, y0), which button, the world."""

    x: float
    y: float
    x0: float
    y0: float
    button: str
    world: SimWorld


class Widget:
    role = "widget"
    ui_type = "text"
    focusable = False

    def __init__(self, wid: str, label: str = "", *, on_click: Callable[[], Any] | None = None) -> None:
        self.wid = wid
        self.label = label
        self.rect: Rect = (0, 0, 0, 0)
        self.visible = True
        self.enabled = True
        self.on_click = on_click

    # -- geometry ---------------------------------------------------------------------------------
    def place(self, rect: Rect) -> Widget:
        self.rect = tuple(int(v) for v in rect)  # type: ignore[assignment]
        self.visible = True
        return self

    def hit(self, x: float, y: float) -> bool:
        return self.visible and inside(self.rect, x, y)

    def elements(self, app: str) -> list[Element]:
        if not self.visible or not self.label:
            return []
        return [Element(self.label, self.rect, self.ui_type, self.role, app)]

    # -- painting ---------------------------------------------------------------------------------
    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        pass

    def focus_ring(self, cv: Canvas, st: Style, focused: bool, radius: int = 0) -> None:
        if focused:
            r = self.rect
            g = max(1, st.px(2))
            cv.rect((r[0] - g, r[1] - g, r[2] + g, r[3] + g), outline=st.th.accent, radius=radius + g, width=g)

    # -- events -----------------------------------------------------------------------------------
    def click(self, ev: Pointer) -> bool:
        if self.on_click is not None and self.enabled:
            self.on_click()
            return True
        return False

    def double_click(self, ev: Pointer) -> bool:
        return self.click(ev)

    def context(self, ev: Pointer) -> bool:
        return False

    def press(self, ev: Pointer) -> bool:
        return False

    def drag(self, ev: Pointer) -> bool:
        return False

    def release(self, ev: Pointer) -> bool:
        return False

    @property
    def draggable(self) -> bool:
        """Whether a moving pointer drags this widget (slider, touch-scrolled list) instead of cancelling."""
        return False

    def wheel(self, clicks: float, world: SimWorld) -> bool:
        return False

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        if name in ("enter", "space") and self.focusable and self.on_click is not None:
            self.on_click()
            return True
        return False

    def text_input(self, s: str, world: SimWorld) -> bool:
        return False


class Label(Widget):
    """Static text (not interactive; not listed in elements)."""

    def __init__(self, wid: str, text: str, *, size: float = 14, bold: bool = False, muted: bool = False,
                 color: tuple[int, int, int] | None = None, align: str = "left") -> None:
        super().__init__(wid, text)
        self.size, self.bold, self.muted, self.color, self.align = size, bold, muted, color, align

    def elements(self, app: str) -> list[Element]:
        return []

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        color = self.color or (st.th.muted if self.muted else st.th.text)
        cv.text_in(self.rect, self.label, st.px(self.size), color, self.bold, self.align)


class Button(Widget):
    """A push button. `kind`: primary (accent), default (outlined), danger (red), flat (text only)."""

    role = "button"
    focusable = True

    def __init__(self, wid: str, label: str, on_click: Callable[[], Any] | None = None, *, kind: str = "default",
                 icon: str | None = None) -> None:
        super().__init__(wid, label, on_click=on_click)
        self.kind = kind
        self.icon = icon

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        rad = st.px(6)
        fg = th.text
        if self.kind == "primary":
            cv.rect(r, fill=th.accent, radius=rad)
            fg = th.on_accent
        elif self.kind == "danger":
            cv.rect(r, fill=th.danger, radius=rad)
            fg = (255, 255, 255)
        elif self.kind == "flat":
            fg = th.accent
        else:
            cv.rect(r, fill=th.surface2, outline=th.border, radius=rad, width=max(1, st.px(1)))
        if not self.enabled:
            fg = th.muted
        x1 = r[0]
        if self.icon:
            ih = int((r[3] - r[1]) * 0.55)
            iy = (r[1] + r[3] - ih) // 2
            tw = text_width(self.label, st.fs, True) + ih + st.px(6)
            ix = int((r[0] + r[2] - tw) / 2)
            draw_icon(cv, self.icon, (ix, iy, ix + ih, iy + ih), fg, th.surface)
            cv.text_in((ix + ih + st.px(6), r[1], r[2], r[3]), self.label, st.fs, fg, True, "left")
        else:
            cv.text_in((x1, r[1], r[2], r[3]), self.label, st.fs, fg, True, "center", st.px(6))
        self.focus_ring(cv, st, focused, rad)


class IconButton(Button):
    """A button showing only an icon; `label` is its accessible name (ui_type "icon")."""

    ui_type = "icon"

    def __init__(self, wid: str, label: str, icon: str, on_click: Callable[[], Any] | None = None, *,
                 color: tuple[int, int, int] | None = None, filled: bool = False) -> None:
        super().__init__(wid, label, on_click, icon=icon)
        self.color = color
        self.filled = filled

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        r = self.rect
        fg = self.color or st.th.text
        if self.filled:
            cv.ellipse(r, fill=st.th.accent)
            fg = st.th.on_accent
        n = min(r[2] - r[0], r[3] - r[1])
        pad = int(n * 0.2)
        cx, cy = (r[0] + r[2]) // 2, (r[1] + r[3]) // 2
        h = n // 2 - pad
        draw_icon(cv, self.icon or "", (cx - h, cy - h, cx + h, cy + h), fg, st.th.surface)
        self.focus_ring(cv, st, focused, st.px(4))


class Checkbox(Widget):
    role = "checkbox"
    focusable = True

    def __init__(self, wid: str, label: str, checked: bool = False,
                 on_change: Callable[[bool], Any] | None = None) -> None:
        super().__init__(wid, label)
        self.checked = checked
        self.on_change = on_change

    def toggle(self) -> bool:
        if not self.enabled:
            return False
        self.checked = not self.checked
        if self.on_change:
            self.on_change(self.checked)
        return True

    def click(self, ev: Pointer) -> bool:
        return self.toggle()

    def double_click(self, ev: Pointer) -> bool:
        return self.toggle()

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        return self.toggle() if name == "space" else False

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        b = st.px(18)
        y = (r[1] + r[3] - b) // 2
        box = (r[0], y, r[0] + b, y + b)
        if self.checked:
            cv.rect(box, fill=th.accent, radius=st.px(3))
            draw_icon(cv, "check", box, th.on_accent)
        else:
            cv.rect(box, fill=th.surface, outline=th.muted, radius=st.px(3), width=max(1, st.px(2)))
        cv.text_in((r[0] + b + st.px(8), r[1], r[2], r[3]), self.label, st.fs, th.text, False, "left")
        self.focus_ring(cv, st, focused, st.px(3))


class Toggle(Checkbox):
    """An on/off switch drawn at the right end of its row, label on the left."""

    role = "toggle"

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        w, h = st.px(40), st.px(22)
        x2 = r[2]
        y = (r[1] + r[3] - h) // 2
        track = (x2 - w, y, x2, y + h)
        cv.rect(track, fill=th.accent if self.checked else th.border, radius=h // 2)
        k = h - st.px(4)
        kx = x2 - k - st.px(2) if self.checked else x2 - w + st.px(2)
        cv.ellipse((kx, y + st.px(2), kx + k, y + st.px(2) + k), fill=(255, 255, 255))
        cv.text_in((r[0], r[1], x2 - w - st.px(8), r[3]), self.label, st.fs, th.text, False, "left")
        self.focus_ring(cv, st, focused, st.px(4))
