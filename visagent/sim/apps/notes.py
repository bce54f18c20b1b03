"""Notes: a text editor with File/Edit menus, ctrl+s, and a modal Save dialog that names the file.

Saved files land in the world's shared Documents folder (`world.fs`), where the Files app lists them.
Setup: text, filename (already saved under this name), dialog: "save" (the Save dialog is open at start).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App
from visagent.sim.overlays import Dialog, MenuItem
from visagent.sim.textfield import TextField
from visagent.sim.widgets import Button, Label, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

DRAFTS = ["Meeting notes: budget review moved to Thursday.", "Groceries: eggs, rice, lemons, coffee.",
          "Ideas for the trip: museum, river walk, night market.", "Call the plumber about the kitchen sink."]


class NotesApp(App):
    name = "notes"
    title = "Notes"
    icon = "note"
    hue = 0.12
    packages = ("com.visagent.notes",)

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "text", "filename", "dialog")
        text = setup.get("text", rng.choice(DRAFTS))
        self.filename: str | None = setup.get("filename")
        self.editor = TextField("editor", "Note text", text, multiline=True, placeholder="Start typing…",
                                on_change=self._changed, mono=rng.random() < 0.3)
        self.status = Label("status", "", size=12, muted=True)
        self.save_btn = Button("save", "Save", self.save, kind="primary", icon="save")
        self.dirty = False
        if self.filename:
            world.fs[self.filename] = text
        self.saved: list[str] = []
        self.dialog: Dialog | None = None
        self.focus = self.editor
        self._open_dialog = setup.get("dialog") == "save"

    def after_setup(self) -> None:
        if self._open_dialog:
            self.save_as()
            if self.dialog is not None:
                self.dialog.opened_at = -1.0  # already open at start, no animation

    def _changed(self, _: str) -> None:
        self.dirty = True

    # -- commands ---------------------------------------------------------------------------------
    def save(self) -> None:
        if self.filename:
            self._write(self.filename)
        else:
            self.save_as()

    def save_as(self) -> None:
        default = self.filename or "Untitled.txt"
        field = TextField("filename", "File name", default, on_submit=lambda: self._confirm())
        field.anchor = 0  # the whole default name is selected, as in real save dialogs
        cancel = Button("cancel", "Cancel", self._cancel)
        ok = Button("ok", "Save", self._confirm, kind="primary")
        self.dialog = Dialog("notes.save", "Save note", "Choose a file name in Documents.", [cancel, ok],
                             app=self.name, fields=[field], cancel=cancel, default=ok)
        self.world.open_dialog(self.dialog)

    def _confirm(self) -> None:
        d = self.dialog
        if d is None:
            return
        name = d.fields[0].value.strip()
        if not name:
            d.error = "Enter a file name."
            d.fields[0].error = True
            return
        if "/" in name:
            d.error = "A file name cannot contain '/'."
            d.fields[0].error = True
            return
        if "." not in name:
            name += ".txt"
        self._write(name)
        d.close()
        self.dialog = None

    def _cancel(self) -> None:
        if self.dialog is not None:
            self.dialog.close()
            self.dialog = None

    def _write(self, name: str) -> None:
        self.filename = name
        self.world.fs[name] = self.editor.value
        self.dirty = False
        if name not in self.saved:
            self.saved.append(name)
        self.status.label = f"Saved {name}"
        self.log(f"saved {name}")

    def new(self) -> None:
        self.editor.set_value("")
        self.filename = None
        self.dirty = False

    def _edit(self, key: str) -> MenuItem:
        return MenuItem({"a": "Select all", "c": "Copy", "x": "Cut", "v": "Paste"}[key],
                        lambda: self.editor.key(key, frozenset({"ctrl"}), self.world), shortcut=f"Ctrl+{key.upper()}")

    def menus(self) -> list[tuple[str, list[MenuItem]]]:
        return [("File", [MenuItem("New", self.new, "Ctrl+N"), MenuItem("Save", self.save, "Ctrl+S"),
                          MenuItem("Save as…", self.save_as, "Ctrl+Shift+S")]),
                ("Edit", [self._edit("x"), self._edit("c"), self._edit("v"), self._edit("a")])]

    def key(self, name: str, mods: frozenset[str]) -> bool:
        if "ctrl" in mods and name == "s":
            self.save_as() if "shift" in mods else self.save()
            return True
        if "ctrl" in mods and name == "n":
            self.new()
            return True
        return False

    # -- layout -----------------------------------------------------------------------------------
    def widgets(self) -> list[Widget]:
        return [self.editor, self.save_btn, self.status] if self.phone else [self.editor, self.status]

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        foot = int((64 if self.phone else 26) * s)
        pad = int(12 * s)
        self.editor.place((x1 + pad, y1 + pad, x2 - pad, y2 - foot))
        if self.phone:
            self.save_btn.place((x2 - pad - int(120 * s), y2 - foot + int(12 * s), x2 - pad, y2 - int(10 * s)))
            self.status.place((x1 + pad, y2 - foot + int(12 * s), x2 - int(140 * s), y2 - int(10 * s)))
        else:
            self.status.place((x1 + pad, y2 - foot, x2 - pad, y2))

    def page_title(self) -> str:
        name = self.filename or "Untitled"
        return f"{'• ' if self.dirty else ''}{name} — Notes" if not self.phone else name

    def draw(self, cv: Any, st: Any) -> None:
        cv.rect(self.rect, fill=st.th.surface2)
        for w in self.widgets():
            w.draw(cv, st, w is self.focus and self.world.has_focus(self))

    def state(self) -> dict[str, Any]:
        return {"text": self.editor.value, "filename": self.filename, "dirty": self.dirty, "saved": list(self.saved),
                "dialog_open": self.dialog is not None}
