"""What solvers share: the registry and `Ctx`, a view of the world with helpers that build screen actions.

A solver is `fn(ctx) -> Action | None` (None: its goal is reached) registered under a name with `@solver("name")`; it looks at the current
state (app attributes, widgets, visible elements) and returns the single next action. It never replays a
recorded script, so it recovers from any seed and any intermediate state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from visagent.core.actions import Action
from visagent.core.errors import VisagentError
from visagent.sim.lists import WHEEL_CLICK_DP, ListView
from visagent.sim.textfield import TextField
from visagent.sim.widgets import Element, Widget

if TYPE_CHECKING:
    from visagent.sim.scenario import Scenario
    from visagent.sim.world import SimWorld

SolverFn = Callable[["Ctx"], "Action | None"]
SOLVERS: dict[str, SolverFn] = {}


class OracleError(VisagentError):
    """The oracle found no way forward (a bug in a solver or an impossible state)."""


def solver(name: str) -> Callable[[SolverFn], SolverFn]:
    """Register a solver: `fn(ctx) -> Action | None`, None meaning its goal is already reached."""

    def deco(fn: SolverFn) -> SolverFn:
        SOLVERS[name] = fn
        return fn
    return deco


class Ctx:
    def __init__(self, scenario: Scenario, world: SimWorld, params: dict[str, Any] | None = None) -> None:
        self.scenario = scenario
        self.world = world
        self.p: dict[str, Any] = world.params if params is None else params
        self.phone = world.platform == "phone"
        world.layout()

    # -- finding things ---------------------------------------------------------------------------
    def elements(self) -> list[Element]:
        return self.world.visible_elements()

    def el(self, label: str, role: str | None = None, app: str | None = None) -> Element | None:
        for e in self.elements():
            if e.label == label and (role is None or e.role == role) and (app is None or e.app == app):
                return e
        return None

    def app(self, name: str) -> Any:
        return self.world.apps[name]

    def top_overlay(self) -> Any:
        return self.world.overlays[-1] if self.world.overlays else None

    # -- primitive actions (screen space) ---------------------------------------------------------
    def tap(self, target: Element | Widget | tuple[float, float]) -> Action:
        x, y = self._point(target)
        return Action("click" if self.phone else "left_click", coordinate=(x, y), space="screen")

    def context(self, target: Element | Widget | tuple[float, float]) -> Action:
        x, y = self._point(target)
        if self.phone:
            return Action("long_press", coordinate=(x, y), space="screen")
        return Action("right_click", coordinate=(x, y), space="screen")

    def type(self, text: str) -> Action:
        return Action("type", text=text, space="screen")

    def key(self, *keys: str) -> Action:
        if self.phone:
            return Action("key", text="+".join(keys), space="screen")
        return Action("key", keys=tuple(keys), space="screen")

    def dismiss(self) -> Action:
        """Close the top popup: Back on the phone, Escape on the desktop."""
        if self.phone:
            return Action("system_button", button="Back", space="screen")
        return Action("key", keys=("escape",), space="screen")

    def drag(self, a: tuple[float, float], b: tuple[float, float]) -> Action:
        name = "swipe" if self.phone else "left_click_drag"
        return Action(name, coordinate=a, coordinate2=b, space="screen")

    def _point(self, target: Element | Widget | tuple[float, float]) -> tuple[float, float]:
        if isinstance(target, Element):
            return target.center
        if isinstance(target, Widget):
            r = target.rect
            return ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)
        return (float(target[0]), float(target[1]))

    # -- compound steps (each returns the next action, or None when already done) ------------------
    def ensure_app(self, name: str) -> Action | None:
        """Bring app `name` to the front (closing stray menus first)."""
        w = self.world
        top = self.top_overlay()
        fg = w.foreground()
        if fg is not None and fg.name == name:
            return None
        if top is not None and not top.modal:
            return self.dismiss()
        if top is not None:  # another app's dialog is in the way: cancel it
            cancel = getattr(top, "cancel", None)
            return self.tap(cancel) if cancel is not None else self.dismiss()
        app = w.apps[name]
        if self.phone:
            if fg is not None:
                return Action("system_button", button="Home", space="screen")
            if w.seed % 2:
                return Action("open", text=app.title, space="screen")
            e = self.el(app.title, role="icon")
            if e is None:
                raise OracleError(f"no home-screen icon for {app.title}")
            return self.tap(e)
        e = self.el(app.title, role="taskbar_button")
        if e is None:
            raise OracleError(f"no taskbar button for {app.title}")
        return self.tap(e)

    def set_text(self, field: TextField, value: str, holder: Any) -> Action | None:
        """Make `field` hold `value`: focus it, select all, type. `holder` owns `focus` (app or dialog)."""
        if field.value == value:
            return None
        if holder.focus is not field:
            return self.tap(field)
        if field.value and field.selection != (0, len(field.value)):
            return self.key("ctrl", "a")
        if not value:
            return self.key("backspace")
        return self.type(value)

    def scroll_into_view(self, lv: ListView, key: str) -> Action | None:
        """Next scroll (wheel on the desktop, swipe on the phone) that brings row `key` of `lv` fully into
        view; None when it already is."""
        i = lv.index_of(key)
        if i < 0:
            raise OracleError(f"list {lv.wid} has no item {key!r}")
        row, r = lv.row_rect(i), lv.rect
        if row[1] >= r[1] and row[3] <= r[3]:
            return None
        down = row[3] > r[3]
        need = (row[3] - r[3]) if down else (r[1] - row[1])
        cx, cy = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
        if self.phone:
            d = max(40 * self.world.ui_scale, min(need + 8 * self.world.ui_scale, (r[3] - r[1]) * 0.6)) / 2
            return self.drag((cx, cy + d if down else cy - d), (cx, cy - d if down else cy + d))
        clicks = max(1, min(5, math.ceil(need / (WHEEL_CLICK_DP * self.world.ui_scale))))
        return Action("scroll", coordinate=(cx, cy), pixels=-clicks if down else clicks,  # pixels = wheel clicks
                      space="screen")

    def row(self, lv: ListView, key: str) -> tuple[float, float]:
        r = lv.row_rect(lv.index_of(key))
        return ((r[0] + r[2]) / 2 - (r[2] - r[0]) * 0.25, (r[1] + r[3]) / 2)

    def sub(self, params: dict[str, Any]) -> Ctx:
        """The same world with other params (for sequences of sub-goals)."""
        return Ctx(self.scenario, self.world, params)

    def menu_item(self, app: Any, menu: str, item: str) -> Action:
        """Next step to choose `item` from the app's `menu` (menu bar on the desktop, Menu button on the phone)."""
        top = self.top_overlay()
        want = f"{app.name}.options" if self.phone else f"{app.name}.menu.{menu}"
        if top is not None and top.oid == want:
            e = self.el(item, role="menu_item")
            if e is None:
                raise OracleError(f"menu item {item!r} not visible")
            return self.tap(e)
        if top is not None:
            return self.dismiss()
        if self.phone:
            return Action("system_button", button="Menu", space="screen")
        e = self.el(menu, role="menu", app=app.name)
        if e is None:
            raise OracleError(f"menu {menu!r} not visible")
        return self.tap(e)
