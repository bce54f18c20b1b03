"""Solvers for Notes, Files, Calculator, Contacts, Shop and Messages, plus `sequence` (several sub-goals).

Each returns the next screen action, or None when its own goal already holds.
"""

from __future__ import annotations

from typing import Any

from visagent.core.actions import Action
from visagent.sim.lists import ListView
from visagent.sim.solvers.base import SOLVERS, Ctx, OracleError, solver


def _dialog(ctx: Ctx, oid: str) -> Any:
    top = ctx.top_overlay()
    return top if top is not None and top.oid == oid else None


# -- notes -----------------------------------------------------------------------------------------
@solver("notes.save_as")
def notes_save_as(ctx: Ctx) -> Action | None:
    """params: filename, text (optional: what the note must say first)."""
    app = ctx.app("notes")
    name, text = ctx.p["filename"], ctx.p.get("text")
    if name in app.saved and ctx.world.fs.get(name) == (text if text is not None else app.editor.value):
        return None
    d = _dialog(ctx, "notes.save")
    if d is not None:
        if text is not None and app.editor.value != text:
            return ctx.tap(d.cancel)
        step = ctx.set_text(d.fields[0], name, d)
        return step or ctx.tap(d.default)
    step = ctx.ensure_app("notes")
    if step:
        return step
    if text is not None and app.editor.value != text:
        if ctx.top_overlay() is not None:
            return ctx.dismiss()
        return ctx.set_text(app.editor, text, app)
    return ctx.menu_item(app, "File", "Save as…")


# -- files -----------------------------------------------------------------------------------------
def _file_context(ctx: Ctx, name: str, item: str) -> Action:
    app = ctx.app("files")
    top = ctx.top_overlay()
    if top is not None and top.oid == "files.context":
        if app.list.selected == name:
            e = ctx.el(item, role="menu_item")
            if e is not None:
                return ctx.tap(e)
        return ctx.dismiss()
    if top is not None:
        return ctx.tap(top.cancel) if getattr(top, "cancel", None) is not None else ctx.dismiss()
    step = ctx.scroll_into_view(app.list, name)
    return step or ctx.context(ctx.row(app.list, name))


@solver("files.delete")
def files_delete(ctx: Ctx) -> Action | None:
    """params: name."""
    name = ctx.p["name"]
    if name not in ctx.world.fs:
        return None
    d = _dialog(ctx, "files.delete")
    if d is not None and f"{name} " in d.message:
        return ctx.tap(d.default)
    return ctx.ensure_app("files") or _file_context(ctx, name, "Delete")


@solver("files.rename")
def files_rename(ctx: Ctx) -> Action | None:
    """params: name, new_name."""
    name, new = ctx.p["name"], ctx.p["new_name"]
    if name not in ctx.world.fs and new in ctx.world.fs:
        return None
    d = _dialog(ctx, "files.rename")
    if d is not None and d.title == f"Rename {name}":
        return ctx.set_text(d.fields[0], new, d) or ctx.tap(d.default)
    return ctx.ensure_app("files") or _file_context(ctx, name, "Rename")


@solver("files.sort")
def files_sort(ctx: Ctx) -> Action | None:
    """params: sort (Name | Size | Date)."""
    app = ctx.app("files")
    if app.sort == ctx.p["sort"]:
        return None
    step = ctx.ensure_app("files")
    if step:
        return step
    top = ctx.top_overlay()
    if top is not None and top.oid == "sort.options":
        return ctx.tap(ctx.el(ctx.p["sort"], role="option"))  # type: ignore[arg-type]
    if top is not None:
        return ctx.dismiss()
    return ctx.tap(app.sorter)


# -- calculator ------------------------------------------------------------------------------------
@solver("calculator.compute")
def calc_compute(ctx: Ctx) -> Action | None:
    """params: expr (with × ÷ − +), result."""
    app = ctx.app("calculator")
    expr, result = str(ctx.p["expr"]), str(ctx.p["result"])
    if app.last_result == result and app.display.replace("−", "-") == result:
        return None
    step = ctx.ensure_app("calculator")
    if step:
        return step
    if ctx.top_overlay() is not None:
        return ctx.dismiss()
    cur = app.expr
    if cur == expr:
        return ctx.tap(_key(ctx, "="))
    if not expr.startswith(cur) or app.error or app.last_result is not None and cur == app.last_result:
        return ctx.tap(_key(ctx, "C"))
    rest = expr[len(cur):]
    if not ctx.phone and ctx.world.seed % 2:  # half of the desktop runs type on the keyboard instead
        if app.focus is not app.keypad:
            return ctx.tap(app.keypad)  # typing goes to the focused widget: focus the calculator body
        return ctx.type(rest.replace("×", "*").replace("÷", "/").replace("−", "-"))
    return ctx.tap(_key(ctx, rest[0]))


def _key(ctx: Ctx, label: str) -> Any:
    for b in ctx.app("calculator").buttons:
        if b.label == label:
            return b
    raise OracleError(f"no calculator key {label!r}")


# -- contacts --------------------------------------------------------------------------------------
@solver("contacts.add")
def contacts_add(ctx: Ctx) -> Action | None:
    """params: name, phone, email (optional), group (optional), favourite (optional)."""
    app = ctx.app("contacts")
    p = ctx.p
    if any(c["name"] == p["name"] for c in app.contacts):
        return None
    step = ctx.ensure_app("contacts")
    if step:
        return step
    top = ctx.top_overlay()
    if app.page != "form":
        return ctx.dismiss() if top is not None else ctx.tap(app.new_btn)
    for field, key in ((app.f_name, "name"), (app.f_phone, "phone"), (app.f_email, "email")):
        want = str(p.get(key) or "")
        if field.value != want:
            return ctx.dismiss() if top is not None else ctx.set_text(field, want, app)
    group = p.get("group")
    if group and app.f_group.value != group:
        if top is not None and top.oid == "group.options":
            return ctx.tap(ctx.el(group, role="option"))  # type: ignore[arg-type]
        return ctx.dismiss() if top is not None else ctx.tap(app.f_group)
    if top is not None:
        return ctx.dismiss()
    if bool(p.get("favourite", False)) != app.f_fav.checked:
        return ctx.tap(app.f_fav)
    return ctx.tap(app.save_btn)


# -- shop ------------------------------------------------------------------------------------------
def _tap_row_button(ctx: Ctx, lv: ListView, key: str) -> Action:
    step = ctx.scroll_into_view(lv, key)
    if step:
        return step
    r = lv.button_rect(lv.row_rect(lv.index_of(key)), ctx.world.ui_scale)
    return ctx.tap(((r[0] + r[2]) / 2, (r[1] + r[3]) / 2))


@solver("shop.add")
def shop_add(ctx: Ctx) -> Action | None:
    """params: items — product names to have in the cart (one each)."""
    app = ctx.app("shop")
    missing = [n for n in ctx.p["items"] if app.cart.get(n, 0) < 1]
    if not missing:
        return None
    step = ctx.ensure_app("shop")
    if step:
        return step
    if ctx.top_overlay() is not None:
        return ctx.dismiss()
    return _to_page(ctx, app, "main") or _tap_row_button(ctx, app.products, missing[0])


def _to_page(ctx: Ctx, app: Any, page: str) -> Action | None:
    """Next step from the shop's current page towards "main" (products) or "cart"."""
    if app.page == page:
        return None
    if app.page == "checkout":
        return ctx.tap(app.back_btn)
    if app.page == "done":
        return ctx.tap(app.done_btn)
    tab = "Products" if page == "main" else app.tabs.options[1]
    return ctx.tap(ctx.el(tab, role="tab"))  # type: ignore[arg-type]


@solver("shop.buy")
def shop_buy(ctx: Ctx) -> Action | None:
    """params: items (one of each, nothing else), address, shipping, payment."""
    app = ctx.app("shop")
    p = ctx.p
    want = {n: 1 for n in p["items"]}
    last = app.orders[-1] if app.orders else None
    if last is not None and last["items"] == want and all(last[k] == p[k] for k in ("address", "shipping", "payment")):
        return None  # (an earlier order with other details does not count: buy again)
    if app.page != "checkout" or app.cart != want:
        step = shop_add(ctx) or ctx.ensure_app("shop")
        if step:
            return step
        if ctx.top_overlay() is not None:
            return ctx.dismiss()
        step = _to_page(ctx, app, "cart")
        if step:
            return step
        extra = [n for n, q in app.cart.items() if q > want.get(n, 0)]
        if extra:
            return _tap_row_button(ctx, app.cart_list, extra[0])
        return ctx.tap(app.checkout_btn)
    top = ctx.top_overlay()
    if app.address.value != p["address"]:
        return ctx.dismiss() if top is not None else ctx.set_text(app.address, p["address"], app)
    if app.shipping.value != p["shipping"]:
        if top is not None:
            return ctx.dismiss()
        r = app.shipping.option_rects()[app.shipping.options.index(p["shipping"])]
        return ctx.tap((r[0] + 12 * ctx.world.ui_scale, (r[1] + r[3]) / 2))
    if app.payment.value != p["payment"]:
        if top is not None and top.oid == "payment.options":
            return ctx.tap(ctx.el(p["payment"], role="option"))  # type: ignore[arg-type]
        return ctx.dismiss() if top is not None else ctx.tap(app.payment)
    if top is not None:
        return ctx.dismiss()
    return ctx.tap(app.pay_btn)


# -- messages --------------------------------------------------------------------------------------
@solver("messages.send")
def messages_send(ctx: Ctx) -> Action | None:
    """params: to, text."""
    app = ctx.app("messages")
    to, text = ctx.p["to"], ctx.p["text"]
    if {"to": to, "text": text} in app.sent:
        return None
    step = ctx.ensure_app("messages")
    if step:
        return step
    if ctx.top_overlay() is not None:
        return ctx.dismiss()
    if app.open != to or (ctx.phone and app.page != "thread"):
        if ctx.phone and app.page == "thread":
            return Action("system_button", button="Back", space="screen")
        step = ctx.scroll_into_view(app.list, to)
        return step or ctx.tap(ctx.row(app.list, to))
    step = ctx.set_text(app.field, text, app)
    if step:
        return step
    if not ctx.phone and ctx.world.seed % 2 and app.focus is app.field:
        return ctx.key("enter")
    return ctx.tap(app.send_btn)


# -- several goals in order ------------------------------------------------------------------------
@solver("sequence")
def sequence(ctx: Ctx) -> Action | None:
    """params: steps — a list of {oracle: name, params: {...}}; solved in order."""
    for i, step in enumerate(ctx.p["steps"]):
        fn = SOLVERS.get(step.get("oracle", ""))
        if fn is None:
            raise OracleError(f"sequence step {i}: no solver {step.get('oracle')!r}")
        a = fn(ctx.sub(dict(step.get("params") or {})))
        if a is not None:
            return a
    return None


# -- just open an app ------------------------------------------------------------------------------
@solver("app.open")
def app_open(ctx: Ctx) -> Action | None:
    """params: app — the app to bring to the front (taskbar on the desktop; Home, then icon or `open` on a phone)."""
    return ctx.ensure_app(str(ctx.p["app"]))
