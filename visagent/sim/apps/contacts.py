"""Contacts: a list (spinner while loading) and a New contact form with validation errors.

The form: Name (required), Phone (digits, spaces, + and -; at least 6 digits), Email (optional, must look
like name@host.tld), Group dropdown, Favourite checkbox; Save shows an error under each bad field.
Setup: contacts (list of names), filler (how many random contacts).
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App, Column
from visagent.sim.lists import Dropdown, ListItem, ListView
from visagent.sim.textfield import TextField
from visagent.sim.widgets import Button, Checkbox, IconButton, Label, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kofi", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe"]
LAST = ["Silva", "Okafor", "Berg", "Novak", "Kaya", "Haddad", "Ito", "Moreau", "Costa", "Lindqvist", "Reyes"]
GROUPS = ["Family", "Friends", "Work", "Other"]
LOAD_S = 0.6


def random_people(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in out:
            out.append(name)
    return out


class ContactsApp(App):
    name = "contacts"
    title = "Contacts"
    icon = "person"
    hue = 0.36
    packages = ("com.visagent.contacts", "com.android.contacts")

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "contacts", "filler", "form")
        names = list(setup.get("contacts") or []) + random_people(rng, int(setup.get("filler", rng.randint(5, 9))))
        self.contacts: list[dict[str, Any]] = []
        for n in dict.fromkeys(names):
            self.contacts.append({"name": n, "phone": f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                                  "email": f"{n.split()[0].lower()}@example.com", "group": rng.choice(GROUPS),
                                  "favourite": False})
        self.list = ListView("contacts", [], row_dp=52 if not self.phone else 72, on_item=lambda it: None,
                             touch=self.phone, clock=world.clock)
        new_label = rng.choice(["New contact", "Add contact", "Create contact"])  # labels vary with the seed
        self.new_btn = (IconButton("new", new_label, "plus", self.open_form, filled=True) if self.phone
                        else Button("new", new_label, self.open_form, kind="primary", icon="plus"))
        self.f_name = TextField("name", "Name", placeholder="Full name")
        self.f_phone = TextField("phone", "Phone", placeholder="+1 555 123 4567")
        self.f_email = TextField("email", "Email", placeholder="name@example.com")
        self.f_group = Dropdown("group", "Group", GROUPS, "Other")
        self.f_fav = Checkbox("favourite", "Add to favourites")
        self.save_btn = Button("save", "Save", self.save, kind="primary")
        self.cancel_btn = Button("cancel", "Cancel", self.cancel)
        self.captions = {k: Label(f"{k}.caption", k.capitalize(), muted=True, size=12) for k in
                         ("name", "phone", "email", "group")}
        self.err = {k: Label(f"{k}.error", "", size=12) for k in ("name", "phone", "email")}
        self.errors: dict[str, str] = {}
        self.refresh()

    def on_open(self) -> None:
        self.list.loading_until = self.now + LOAD_S

    def after_setup(self) -> None:
        form = self.setup.get("form")
        if not form:
            return
        self.open_form()
        self.world._anims.pop("page", None)  # already open at start
        for key, field in (("name", self.f_name), ("phone", self.f_phone), ("email", self.f_email)):
            field.set_value(str(form.get(key, "")))
        self.save()  # a failed earlier attempt: the errors are showing

    def busy(self, now: float) -> bool:
        return self.list.loading(now)

    def refresh(self) -> None:
        self.contacts.sort(key=lambda c: c["name"].lower())
        self.list.items = [ListItem(c["name"], c["name"], c["phone"], "person", "★" if c["favourite"] else "")
                           for c in self.contacts]

    # -- form -------------------------------------------------------------------------------------
    def open_form(self) -> None:
        for f in (self.f_name, self.f_phone, self.f_email):
            f.set_value("")
            f.error = False
        self.f_group.value = "Other"
        self.f_fav.checked = False
        self.errors = {}
        self.push("form")
        self.focus = self.f_name

    def validate(self) -> dict[str, str]:
        errs: dict[str, str] = {}
        name, phone, email = self.f_name.value.strip(), self.f_phone.value.strip(), self.f_email.value.strip()
        if not name:
            errs["name"] = "Name is required"
        elif any(c["name"] == name for c in self.contacts):
            errs["name"] = f"{name} is already a contact"
        if not re.fullmatch(r"[0-9 +\-()]*", phone) or len(re.sub(r"\D", "", phone)) < 6:
            errs["phone"] = "Enter a phone number (at least 6 digits)"
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", email):
            errs["email"] = "Enter a valid email like name@example.com"
        return errs

    def save(self) -> None:
        self.errors = self.validate()
        for k, f in (("name", self.f_name), ("phone", self.f_phone), ("email", self.f_email)):
            f.error = k in self.errors
            self.err[k].label = self.errors.get(k, "")
        if self.errors:
            self.log("validation failed: " + ", ".join(sorted(self.errors)))
            return
        self.contacts.append({"name": self.f_name.value.strip(), "phone": self.f_phone.value.strip(),
                              "email": self.f_email.value.strip(), "group": self.f_group.value,
                              "favourite": self.f_fav.checked})
        self.log(f"added {self.f_name.value.strip()}")
        self.refresh()
        self.pop_to("main")

    def cancel(self) -> None:
        self.errors = {}
        self.pop_to("main")

    def key(self, name: str, mods: frozenset[str]) -> bool:
        if self.page == "form" and name == "enter":
            self.save()
            return True
        if self.page == "form" and name == "escape":
            self.cancel()
            return True
        return False

    # -- layout -----------------------------------------------------------------------------------
    def widgets(self) -> list[Widget]:
        if self.page == "main":
            return [self.list, self.new_btn]
        out: list[Widget] = []
        for k, f in (("name", self.f_name), ("phone", self.f_phone), ("email", self.f_email)):
            out += [self.captions[k], f, self.err[k]]
        return out + [self.captions["group"], self.f_group, self.f_fav, self.cancel_btn, self.save_btn]

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        if self.page == "main":
            if self.phone:
                self.list.layout(rect, s)
                d = int(64 * s)
                self.new_btn.place((x2 - d - int(20 * s), y2 - d - int(20 * s), x2 - int(20 * s), y2 - int(20 * s)))
            else:
                bar = int(48 * s)
                self.new_btn.place((x1 + int(12 * s), y1 + int(8 * s), x1 + int(160 * s), y1 + bar - int(6 * s)))
                self.list.layout((x1, y1 + bar, x2, y2), s)
            return
        col = Column(rect if self.phone else (x1, y1, min(x2, x1 + int(520 * s)), y2), s, 20)
        for k, f in (("name", self.f_name), ("phone", self.f_phone), ("email", self.f_email)):
            col.place(self.captions[k], 18, 2)
            col.place(f, 36 if not self.phone else 44, 2)
            col.place(self.err[k], 16, 6)
        col.place(self.captions["group"], 18, 2)
        col.place(self.f_group, 34 if not self.phone else 44, 10)
        col.place(self.f_fav, 30 if not self.phone else 44, 16)
        r = col.take(36 if not self.phone else 48)
        bw = int(110 * s)
        self.save_btn.place((r[2] - bw, r[1], r[2], r[3]))
        self.cancel_btn.place((r[2] - 2 * bw - int(10 * s), r[1], r[2] - bw - int(10 * s), r[3]))

    def draw(self, cv: Any, st: Any) -> None:
        for lbl in self.err.values():
            lbl.color = st.th.danger
        super().draw(cv, st)

    def page_title(self) -> str:
        return "New contact" if self.page == "form" else self.title

    def state(self) -> dict[str, Any]:
        return {"contacts": [dict(c) for c in self.contacts], "names": [c["name"] for c in self.contacts],
                "by_name": {c["name"]: dict(c) for c in self.contacts},
                "page": self.page, "errors": dict(self.errors)}
