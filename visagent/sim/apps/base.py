"""What every sim app is: widgets in Tab order, a layout for a content rect, menus, state and Back.

An app lays out the same widgets on both form factors: `layout(rect, s)` gets the content rect (screen px)
and the UI scale (screen px per dp). Apps keep their truth in plain attributes and expose it in `state()`
(JSON-serialisable) for scenario predicates.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.overlays import MenuItem
from visagent.sim.theme import Canvas, Rect
from visagent.sim.widgets import Element, Label, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld


class Column:
    """A layout cursor: places widgets top to bottom inside `rect` with a padding, in dp."""

    def __init__(self, rect: Rect, s: float, pad_dp: float = 16) -> None:
        self.s = s
        self.x1 = rect[0] + int(pad_dp * s)
        self.x2 = rect[2] - int(pad_dp * s)
        self.y = rect[1] + int(pad_dp * 0.75 * s)
        self.bottom = rect[3]

    def take(self, h_dp: float, gap_dp: float = 8) -> Rect:
        h = int(h_dp * self.s)
        r = (self.x1, self.y, self.x2, self.y + h)
        self.y += h + int(gap_dp * self.s)
        return r

    def place(self, w: Widget, h_dp: float, gap_dp: float = 8) -> Rect:
        r = self.take(h_dp, gap_dp)
        w.place(r)
        return r

    def gap(self, dp: float) -> None:
        self.y += int(dp * self.s)


class App:
    """Base class. Subclasses set `name`, `title`, `icon`, `hue` and build widgets in `__init__`."""

    name = "app"
    title = "App"
    icon = "app"
    hue = 0.6
    packages = ("com.visagent.app",)

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        self.world = world
        self.rng = rng
        self.setup = setup
        self.rect: Rect = (0, 0, 0, 0)
        self.focus: Widget | None = None
        self.s = world.ui_scale
        self.phone = world.platform == "phone"
        self.events: list[str] = []
        self.pages: list[str] = ["main"]  # a page stack: Back pops (phone), the top page is shown

    def check_setup(self, setup: dict[str, Any], *known: str) -> None:
        """Raise ValueError naming any key of `setup` not in `known` (and the known ones), e.g. a typo."""
        unknown = set(setup) - set(known)
        if unknown:
            raise ValueError(f"{self.name} setup: unknown key(s) {sorted(unknown)}; known: {', '.join(known)}")

    # -- pages ------------------------------------------------------------------------------------
    @property
    def page(self) -> str:
        return self.pages[-1]

    def push(self, page: str) -> None:
        self.pages.append(page)
        self.focus = None
        self.world.animate("page", 0.3)

    def pop_to(self, page: str) -> None:
        while len(self.pages) > 1 and self.pages[-1] != page:
            self.pages.pop()
        self.focus = None
        self.world.animate("page", 0.3)

    # -- to override ------------------------------------------------------------------------------
    def widgets(self) -> list[Widget]:
        """Visible widgets in Tab order (labels included; they are skipped for focus)."""
        return []

    def layout(self, rect: Rect) -> None:
        self.rect = rect

    def menus(self) -> list[tuple[str, list[MenuItem]]]:
        """Menu bar menus on the desktop; on the phone they are flattened into the options (Menu) popup."""
        return []

    def key(self, name: str, mods: frozenset[str]) -> bool:
        """App shortcuts (e.g. ctrl+s), tried when the focused widget did not take the key."""
        return False

    def back(self) -> bool:
        """Phone Back inside the app: True when handled (a page popped), False to leave the app."""
        if len(self.pages) > 1:
            self.pages.pop()
            self.focus = None
            return True
        return False

    def page_title(self) -> str:
        return self.title

    def can_go_back(self) -> bool:
        return len(self.pages) > 1

    def busy(self, now: float) -> bool:
        return False

    def on_open(self) -> None:
        """Called when the app is launched (lists start loading here)."""

    def state(self) -> dict[str, Any]:
        return {}

    # -- shared -----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.world.clock.now()

    def style(self) -> Style:
        return Style(self.world.theme.with_accent(self.hue), self.s, self.now)

    def draw(self, cv: Canvas, st: Style) -> None:
        cv.rect(self.rect, fill=st.th.surface)
        for w in self.widgets():
            if w.visible:
                w.draw(cv, st, w is self.focus and self.world.has_focus(self))

    def hit(self, x: float, y: float) -> Widget | None:
        for w in reversed(self.widgets()):
            if w.visible and not isinstance(w, Label) and w.hit(x, y):
                return w
        return None

    def elements(self) -> list[Element]:
        return [e for w in self.widgets() if w.visible for e in w.elements(self.name)]

    def focusables(self) -> list[Widget]:
        return [w for w in self.widgets() if w.visible and w.focusable and w.enabled]

    def log(self, event: str) -> None:
        self.events.append(event)
