"""Solvers for the Settings app: set one control (`settings.set`) or several (`settings.set_many`)."""

from __future__ import annotations

from typing import Any

from visagent.core.actions import Action
from visagent.sim.lists import Dropdown
from visagent.sim.solvers.base import Ctx, OracleError, solver
from visagent.sim.textfield import TextField
from visagent.sim.controls import RadioGroup, Slider
from visagent.sim.widgets import Checkbox


def _set_one(ctx: Ctx, key: str, value: Any) -> Action | None:
    app = ctx.app("settings")
    if app.values.get(key) == value:
        return None
    step = ctx.ensure_app("settings")
    if step:
        return step
    from visagent.sim.apps.settings import CONTROLS

    section = next(sec for k, sec, *_ in CONTROLS if k == key)
    top = ctx.top_overlay()
    if app.section != section:
        if top is not None:
            return ctx.dismiss()
        if ctx.phone and app.section is not None:
            return Action("system_button", button="Back", space="screen")
        lv = app.sidebar
        step = ctx.scroll_into_view(lv, section)
        return step or ctx.tap(ctx.row(lv, section))
    w = app.controls[key]
    if isinstance(w, Dropdown):
        if top is not None and top.oid == f"{key}.options":
            e = ctx.el(str(value), role="option")
            if e is None:
                raise OracleError(f"option {value!r} not visible")
            return ctx.tap(e)
        if top is not None:
            return ctx.dismiss()
        return ctx.tap(w)
    if top is not None:
        return ctx.dismiss()
    if isinstance(w, RadioGroup):
        r = w.option_rects()[w.options.index(value)]
        return ctx.tap((r[0] + 12 * ctx.world.ui_scale, (r[1] + r[3]) / 2))
    if isinstance(w, Slider):
        cy = (w.rect[1] + w.rect[3]) / 2
        return ctx.drag((w.x_for(w.value), cy), (w.x_for(int(value)), cy))
    if isinstance(w, Checkbox):  # toggles too
        return ctx.tap(w)
    if isinstance(w, TextField):
        step = ctx.set_text(w, str(value), app)
        return step or ctx.tap(app.apply_btn)
    raise OracleError(f"no way to set {key}")


@solver("settings.set")
def set_setting(ctx: Ctx) -> Action | None:
    """params: key, value."""
    return _set_one(ctx, ctx.p["key"], ctx.p["value"])


@solver("settings.set_many")
def set_many(ctx: Ctx) -> Action | None:
    """params: changes — a mapping key → value, applied in order."""
    for key, value in ctx.p["changes"].items():
        step = _set_one(ctx, key, value)
        if step is not None:
            return step
    return None
