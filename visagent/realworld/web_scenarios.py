"""Chromium scenarios on the project's own web apps (visagent.realworld.webapps), checked on the server's state.

Each oracle clicks where the page says its elements are (chromium.screen_point) and re-reads the layout
before every action, so a scroll or a re-render is followed, not guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.realworld import chromium
from visagent.realworld.webapps import WebApps
from visagent.realworld.world import RealScenario, RealWorld


def _web(world: RealWorld) -> WebApps:
    return world.data["web"]


def _serve(world: RealWorld, page: str, ready: str, seed: dict[str, Any] | None = None) -> WebApps:
    """Serve the apps with `seed` merged into their state and open `page` in Chromium."""
    apps = WebApps()
    world.on_close(apps.close)
    world.data["web"] = apps
    for app, values in (seed or {}).items():
        apps.state[app].update(values)
    chromium.open_page(world, apps, page, ready)
    return apps


def _state(world: RealWorld) -> dict[str, Any]:
    return _web(world).api_state()


def click(world: RealWorld, name: str, page: str | None = None) -> Action:
    return Action(A.LEFT_CLICK, coordinate=chromium.screen_point(world, _web(world), name, page), space="screen")


def type_into(world: RealWorld, name: str, text: str, page: str | None = None) -> Iterator[Action]:
    """Click the field, then type: two steps, so the screen settles (the focus has moved) before the keys go.
    (A `type` with a coordinate clicks and types at once; under load Chromium sometimes still sent the first
    keys to the field focused before the click.)"""
    yield click(world, name, page)
    yield Action(A.TYPE, text=text, space="screen")


def key(*keys: str) -> Action:
    return Action(A.KEY, keys=tuple(keys), space="screen")


# -- form --------------------------------------------------------------------------------------------------------
def _form_setup(world: RealWorld) -> None:
    _serve(world, "form", "submit")


def _form_check(expected: dict[str, str]):
    def check(world: RealWorld) -> bool:
        subs = _state(world)["form"]["submissions"]
        return len(subs) == 1 and all(subs[0].get(k, "").strip() == v for k, v in expected.items())
    return check


def _form_oracle(fields: dict[str, str], agree: bool = False):
    def oracle(world: RealWorld) -> Iterator[Action]:
        for name, text in fields.items():
            yield from type_into(world, name, text, "form")
        if agree:
            yield click(world, "agree", "form")
        yield click(world, "submit", "form")
    return oracle


FORM_CONTACT = {"name": "Ada Lovelace", "email": "ada@example.org"}
FORM_UNICODE = {"name": "Zoë Łukasiewicz", "city": "Kraków", "message": "Grüße aus Köln"}

# -- to-do -----------------------------------------------------------------------------------------------------
_TODOS = ["Water the plants", "Call the dentist", "Pay rent", "Return library books"]


def _todo_setup(world: RealWorld) -> None:
    items = [{"id": i + 1, "title": t, "done": False} for i, t in enumerate(_TODOS)]
    _serve(world, "todo", "new", {"todo": {"items": items, "next_id": len(items) + 1}})


def _titles(world: RealWorld) -> list[str]:
    return [i["title"] for i in _state(world)["todo"]["items"]]


def _todo_add_check(world: RealWorld) -> bool:
    return _titles(world) == [*_TODOS, "Buy oat milk"]


def _todo_add_oracle(world: RealWorld) -> Iterator[Action]:
    yield from type_into(world, "new", "Buy oat milk", "todo")
    yield key("enter")


def _todo_done_check(world: RealWorld) -> bool:
    items = _state(world)["todo"]["items"]
    return [i["title"] for i in items if i["done"]] == ["Water the plants"] and len(items) == len(_TODOS)


def _todo_done_oracle(world: RealWorld) -> Iterator[Action]:
    yield click(world, "check:Water the plants", "todo")


def _todo_drag_check(world: RealWorld) -> bool:
    return _titles(world) == ["Pay rent", "Water the plants", "Call the dentist", "Return library books"]


def _todo_drag_oracle(world: RealWorld) -> Iterator[Action]:
    apps = _web(world)
    start = chromium.screen_point(world, apps, "handle:Pay rent", "todo")
    top = chromium.screen_point(world, apps, "row:Water the plants", "todo", dy=0.2)  # upper half of the first row
    yield Action(A.LEFT_CLICK_DRAG, coordinate=start, coordinate2=(start[0], top[1]), space="screen")


# -- inbox -----------------------------------------------------------------------------------------------------
_SENDERS = ["Alice Martin", "Bruno Costa", "Chen Jing", "Dana Smith", "Emil Novak", "Fatima Khan"]


def _messages() -> list[dict[str, Any]]:
    msgs = [{"id": 1, "sender": "Jörg Müller", "address": "joerg@example.de", "subject": "Treffen morgen",
             "body": "Hallo! Passt dir morgen um 10 Uhr?\nJörg", "folder": "inbox", "read": False},
            {"id": 2, "sender": "Lucky Prizes", "address": "win@prizes.example", "subject": "Win a free cruise",
             "body": "Click here to claim your prize!", "folder": "inbox", "read": False}]
    for k in range(24):  # filler, so the last message sits far below the fold
        msgs.append({"id": 3 + k, "sender": _SENDERS[k % len(_SENDERS)], "address": f"user{k}@example.com",
                     "subject": f"Weekly update #{k + 1}", "body": "Nothing new this week.", "folder": "inbox",
                     "read": k % 3 == 0})
    msgs.append({"id": 40, "sender": "Zhang Wei", "address": "zhang.wei@example.cn", "subject": "Quarterly numbers",
                 "body": "The figures are attached.", "folder": "inbox", "read": False})
    return msgs


def _inbox_setup(world: RealWorld) -> None:
    _serve(world, "inbox", "msg:Treffen morgen", {"inbox": {"messages": _messages(), "sent": []}})


def _folders(world: RealWorld) -> dict[str, str]:
    return {m["subject"]: m["folder"] for m in _state(world)["inbox"]["messages"]}


def _only_moved(world: RealWorld, subject: str, folder: str) -> bool:
    folders = _folders(world)
    return folders.get(subject) == folder and all(f == "inbox" for s, f in folders.items() if s != subject)


def _archive_oracle(world: RealWorld) -> Iterator[Action]:
    apps = _web(world)
    target = "archive:Quarterly numbers"
    for _ in range(12):  # scroll until the row's button is inside the window
        box = apps.locate(target, "inbox")
        if 0 <= box["y"] and box["y"] + box["h"] <= box["vh"]:
            break
        seq = apps.layout_seq()
        yield Action(A.SCROLL, coordinate=(640, 500), pixels=-5, space="screen")
        apps.wait_layout_after(seq)
    yield click(world, target, "inbox")


def _reply_check(world: RealWorld) -> bool:
    sent = _state(world)["inbox"]["sent"]
    return (len(sent) == 1 and sent[0]["to"] == "joerg@example.de" and sent[0]["subject"] == "Re: Treffen morgen"
            and sent[0]["body"].strip() == "Danke, bis morgen! Grüße")


def _reply_oracle(world: RealWorld) -> Iterator[Action]:
    yield click(world, "open:Treffen morgen", "inbox")
    yield click(world, "reply", "inbox")
    yield from type_into(world, "body", "Danke, bis morgen! Grüße", "inbox")
    yield click(world, "send", "inbox")


def _delete_oracle(world: RealWorld) -> Iterator[Action]:
    yield click(world, "delete:Win a free cruise", "inbox")
    yield key("enter")  # the page's confirm() dialog: OK is its default button


# -- shop ------------------------------------------------------------------------------------------------------
_PRODUCTS = [{"id": "mug", "name": "Blue mug", "price": "8.50"}, {"id": "beans", "name": "Coffee beans", "price": "12.90"},
             {"id": "filter", "name": "Paper filters", "price": "3.20"}, {"id": "kettle", "name": "Kettle", "price": "34.00"},
             {"id": "grinder", "name": "Hand grinder", "price": "45.00"}, {"id": "scale", "name": "Kitchen scale", "price": "19.90"}]


def _shop_setup(world: RealWorld) -> None:
    _serve(world, "shop", "checkout", {"shop": {"products": [dict(p) for p in _PRODUCTS], "cart": {}, "orders": []}})


def _drag_cart_check(world: RealWorld) -> bool:
    shop = _state(world)["shop"]
    return shop["cart"] == {"mug": 1} and not shop["orders"]


def _drag_cart_oracle(world: RealWorld) -> Iterator[Action]:
    apps = _web(world)
    start = chromium.screen_point(world, apps, "card:Blue mug", "shop", dy=0.25)  # the card's title, not its button
    end = chromium.screen_point(world, apps, "cart", "shop", dy=0.6)
    yield Action(A.LEFT_CLICK_DRAG, coordinate=start, coordinate2=end, space="screen")


def _checkout_check(world: RealWorld) -> bool:
    shop = _state(world)["shop"]
    return shop["orders"] == [{"beans": 3}] and shop["cart"] == {}


def _checkout_oracle(world: RealWorld) -> Iterator[Action]:
    yield click(world, "add:Coffee beans", "shop")
    yield Action(A.TRIPLE_CLICK, coordinate=chromium.screen_point(world, _web(world), "qty:Coffee beans", "shop"),
                 space="screen")
    yield Action(A.TYPE, text="3\n", space="screen")
    yield click(world, "checkout", "shop")
    yield key("enter")  # confirm the order


def _s(id: str, instruction: str, setup, check, oracle, max_steps: int, **tags: str) -> RealScenario:  # noqa: A002
    return RealScenario(id=id, apps=("chromium",), instruction=instruction, setup=setup, check=check, oracle=oracle,
                        max_steps=max_steps, tags=tags)


SCENARIOS = [
    _s("chromium-form-contact", "In the contact form, enter the name Ada Lovelace and the email ada@example.org, "
       "then send the form.", _form_setup, _form_check(FORM_CONTACT), _form_oracle(FORM_CONTACT), 6,
       difficulty="easy", skill="form"),
    _s("chromium-form-unicode", "Fill in the contact form: name Zoë Łukasiewicz, city Kraków, message "
       "\"Grüße aus Köln\"; tick \"I agree to be contacted\" and send it.", _form_setup,
       _form_check({**FORM_UNICODE, "agree": "yes"}), _form_oracle(FORM_UNICODE, agree=True), 10,
       difficulty="medium", skill="unicode"),
    _s("chromium-todo-add", "Add the to-do \"Buy oat milk\".", _todo_setup, _todo_add_check, _todo_add_oracle, 4,
       difficulty="easy", skill="form"),
    _s("chromium-todo-done", "Mark the to-do \"Water the plants\" as done.", _todo_setup, _todo_done_check,
       _todo_done_oracle, 3, difficulty="easy", skill="click"),
    _s("chromium-todo-drag", "Move the to-do \"Pay rent\" to the top of the list by dragging it.", _todo_setup,
       _todo_drag_check, _todo_drag_oracle, 4, difficulty="medium", skill="drag"),
    _s("chromium-inbox-archive", "Archive the email from Zhang Wei about \"Quarterly numbers\".", _inbox_setup,
       lambda w: _only_moved(w, "Quarterly numbers", "archive"), _archive_oracle, 10, difficulty="medium",
       skill="scroll"),
    _s("chromium-inbox-reply", "Reply to Jörg Müller's email \"Treffen morgen\" with the text "
       "\"Danke, bis morgen! Grüße\".", _inbox_setup, _reply_check, _reply_oracle, 8, difficulty="medium",
       skill="unicode"),
    _s("chromium-inbox-delete", "Delete the email \"Win a free cruise\".", _inbox_setup,
       lambda w: _only_moved(w, "Win a free cruise", "trash"), _delete_oracle, 5, difficulty="easy", skill="dialog"),
    _s("chromium-shop-drag", "Put the Blue mug into the cart by dragging it there.", _shop_setup, _drag_cart_check,
       _drag_cart_oracle, 4, difficulty="medium", skill="drag"),
    _s("chromium-shop-checkout", "Buy 3 packs of Coffee beans: add them to the cart, set the quantity to 3 and "
       "check out.", _shop_setup, _checkout_check, _checkout_oracle, 10, difficulty="hard", skill="dialog"),
]
