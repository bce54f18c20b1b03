"""Messages: conversations (spinner while loading) and a chat thread with a message field and Send.

Desktop: conversation list beside the open thread; Enter sends. Phone: tap a conversation to open it,
Back returns. Setup: contacts (names that have threads), filler (how many more).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App
from visagent.sim.apps.contacts import random_people
from visagent.sim.lists import ListItem, ListView
from visagent.sim.textfield import TextField
from visagent.sim.theme import mix, text_width
from visagent.sim.widgets import IconButton, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

LINES = ["See you at 6?", "Thanks for the photos!", "Running 10 minutes late.", "Did you get my email?",
         "Lunch tomorrow?", "Happy birthday!", "The package arrived.", "Can you call me back?"]
LOAD_S = 0.7


class MessagesApp(App):
    name = "messages"
    title = "Messages"
    icon = "chat"
    hue = 0.5
    packages = ("com.visagent.messages", "com.android.messaging")

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "contacts", "filler")
        given = list(setup.get("contacts") or [])
        filler = [n for n in random_people(rng, int(setup.get("filler", rng.randint(5, 10)))) if n not in given]
        rng.shuffle(given)
        names = filler + given  # the scenario's people have older threads, further down
        self.threads: dict[str, list[dict[str, str]]] = {n: [{"from": n, "text": rng.choice(LINES)}] for n in names}
        self.sent: list[dict[str, str]] = []
        self.open: str | None = None
        self.list = ListView("threads", [], row_dp=60 if not self.phone else 80, on_item=self._open,
                             touch=self.phone, clock=world.clock)
        self.field = TextField("message", "Message", placeholder="Type a message", on_submit=self.send)
        self.send_btn = IconButton("send", "Send", "send", self.send, filled=True)
        self.refresh()

    def on_open(self) -> None:
        self.list.loading_until = self.now + LOAD_S

    def busy(self, now: float) -> bool:
        return self.list.loading(now)

    def refresh(self) -> None:
        self.list.items = [ListItem(n, n, msgs[-1]["text"], "person") for n, msgs in self.threads.items()]
        self.list.selected = self.open

    def _open(self, item: ListItem) -> None:
        if self.open == item.key and (not self.phone or self.page == "thread"):
            return
        self.open = item.key
        self.field.set_value("")
        if self.phone:
            self.push("thread")
        self.focus = self.field
        self.refresh()

    def send(self) -> None:
        text = self.field.value.strip()
        if not text or self.open is None:
            return
        self.threads[self.open].append({"from": "me", "text": text})
        self.sent.append({"to": self.open, "text": text})
        self.log(f"sent to {self.open}")
        self.field.set_value("")
        # the conversation moves to the top, as in real messengers
        self.threads = {self.open: self.threads.pop(self.open), **self.threads}
        self.refresh()

    def back(self) -> bool:
        if self.phone and self.page == "thread":
            self.pages = ["main"]
            self.open = None
            self.refresh()
            return True
        return False

    def widgets(self) -> list[Widget]:
        if self.phone:
            return [self.list] if self.page == "main" else [self.field, self.send_btn]
        return [self.list, self.field, self.send_btn] if self.open else [self.list]

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        if self.phone and self.page == "main":
            self.list.layout(rect, s)
            return
        if not self.phone:
            side = x1 + int(260 * s)
            self.list.layout((x1, y1, side, y2), s)
            x1 = side + 1
        foot = int(56 * s)
        pad = int(10 * s)
        b = foot - 2 * pad
        self.field.place((x1 + pad, y2 - foot + pad, x2 - 2 * pad - b, y2 - pad))
        self.send_btn.place((x2 - pad - b, y2 - foot + pad, x2 - pad, y2 - pad))

    def page_title(self) -> str:
        return self.open if (self.phone and self.page == "thread" and self.open) else self.title

    def draw(self, cv: Any, st: Any) -> None:
        th = st.th
        cv.rect(self.rect, fill=mix(th.surface, th.accent, 0.04))
        if self.open and (not self.phone or self.page == "thread"):
            x1 = self.list.rect[2] + 1 if not self.phone else self.rect[0]
            x2, y = self.rect[2], self.field.rect[1] - st.px(16)
            fs = st.fs
            for m in reversed(self.threads[self.open][-8:]):
                mine = m["from"] == "me"
                w = min(text_width(m["text"], fs) + st.px(24), (x2 - x1) * 3 // 4)
                h = st.px(36)
                bx = x2 - st.px(16) - w if mine else x1 + st.px(16)
                cv.rect((bx, y - h, bx + w, y), fill=th.accent if mine else th.surface2, radius=st.px(14))
                cv.text_in((bx, y - h, bx + w, y), m["text"], fs, th.on_accent if mine else th.text, False, "center",
                           st.px(12))
                y -= h + st.px(10)
                if y < self.rect[1] + st.px(40):
                    break
            if not self.phone:
                cv.text((x1 + st.px(16), self.rect[1] + st.px(12)), self.open, st.px(17), th.text, True)
        elif not self.phone:
            cv.text_in((self.list.rect[2], self.rect[1], self.rect[2], self.rect[3]), "Select a conversation", st.fs,
                       th.muted)
        for w in self.widgets():
            w.draw(cv, st, w is self.focus and self.world.has_focus(self))
        if not self.phone:
            cv.line([(self.list.rect[2], self.rect[1]), (self.list.rect[2], self.rect[3])], th.border, 1)

    def state(self) -> dict[str, Any]:
        return {"threads": {k: [dict(m) for m in v] for k, v in self.threads.items()}, "open": self.open,
                "sent": [dict(m) for m in self.sent], "draft": self.field.value,
                "last_sent": {m["to"]: m["text"] for m in self.sent}}
