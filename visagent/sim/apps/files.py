"""Files: the Documents folder as a list (spinner while loading), sort order, preview, rename, delete.

Desktop: click selects, double click previews, right click opens a context menu, toolbar buttons act on the
selection. Phone: tap previews, long press opens the context menu. Delete asks for confirmation; rename
validates the new name. Setup: files (list of names or {name: text}), filler (how many random files).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App
from visagent.sim.lists import Dropdown, ListItem, ListView
from visagent.sim.overlays import Dialog, MenuItem, PopupMenu
from visagent.sim.textfield import TextField
from visagent.sim.widgets import Button, Label, Pointer, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

WORDS = ["budget", "invoice", "holiday", "photos", "report", "draft", "notes", "plan", "recipe", "resume",
         "contract", "slides", "summary", "letter", "minutes", "receipt", "schedule", "ideas", "poem", "todo"]
EXTS = [".txt", ".pdf", ".docx", ".csv", ".png"]
LOAD_S = 0.8


class FilesApp(App):
    name = "files"
    title = "Files"
    icon = "folder"
    hue = 0.08
    packages = ("com.visagent.files",)

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "files", "filler")
        given = setup.get("files") or []
        if isinstance(given, dict):
            world.fs.update({str(k): str(v) for k, v in given.items()})
        else:
            world.fs.update({str(n): f"Contents of {n}" for n in given})
        for _ in range(int(setup.get("filler", rng.randint(6, 12)))):
            name = f"{rng.choice(WORDS)}-{rng.randint(1, 99)}{rng.choice(EXTS)}"
            world.fs.setdefault(name, f"Contents of {name}")
        self.meta = {n: (rng.randint(1, 900), rng.randint(1, 28)) for n in sorted(world.fs)}
        self.trash: list[str] = []
        self.renamed: dict[str, str] = {}
        self.sort = "Name"
        self.list = ListView("files", [], row_dp=44 if not self.phone else 64, on_item=self._on_item,
                             on_double=self._preview, on_context=self._context, touch=self.phone, clock=world.clock)
        self.sorter = Dropdown("sort", "Sort by", ["Name", "Size", "Date"], "Name", self._sort)
        self.rename_btn = Button("rename", "Rename", lambda: self._with_selected(self.rename), icon="edit")
        self.delete_btn = Button("delete", "Delete", lambda: self._with_selected(self.delete), icon="trash")
        self.count = Label("count", "", muted=True, size=12)
        self.dialog: Dialog | None = None
        self.refresh()

    def on_open(self) -> None:
        self.list.loading_until = self.now + LOAD_S
        self.refresh()

    def busy(self, now: float) -> bool:
        return self.list.loading(now)

    # -- data -------------------------------------------------------------------------------------
    def _meta(self, n: str) -> tuple[int, int]:
        if n not in self.meta:
            self.meta[n] = (max(1, len(self.world.fs.get(n, "")) // 10), 28)
        return self.meta[n]

    def refresh(self) -> None:
        names = list(self.world.fs)
        if self.sort == "Name":
            names.sort(key=str.lower)
        elif self.sort == "Size":
            names.sort(key=lambda n: (-self._meta(n)[0], n))
        else:
            names.sort(key=lambda n: (-self._meta(n)[1], n))
        self.list.items = [ListItem(n, n, f"{self._meta(n)[0]} KB", "note" if n.endswith(".txt") else "file",
                                    f"Nov {self._meta(n)[1]}") for n in names]
        if self.list.selected not in self.world.fs:
            self.list.selected = None
        self.count.label = f"{len(names)} items"

    def _sort(self, value: str) -> None:
        self.sort = value
        self.refresh()

    def _on_item(self, item: ListItem) -> None:
        if self.phone:
            self._preview(item)

    def _with_selected(self, fn: Any) -> None:
        if self.list.selected:
            fn(self.list.selected)

    def _context(self, item: ListItem, ev: Pointer) -> None:
        n = item.key
        items = [MenuItem("Open", lambda: self._preview(item)), MenuItem("Rename", lambda: self.rename(n)),
                 MenuItem("Delete", lambda: self.delete(n))]
        self.world.open_popup(PopupMenu("files.context", items, (ev.x, ev.y), app=self.name))

    # -- dialogs ----------------------------------------------------------------------------------
    def _preview(self, item: ListItem) -> None:
        close = Button("close", "Close", self._close_dialog, kind="primary")
        text = self.world.fs.get(item.key, "")
        self.dialog = Dialog("files.preview", item.key, text[:300] or "(empty file)", [close], app=self.name,
                             cancel=close)
        self.world.open_dialog(self.dialog)

    def rename(self, name: str) -> None:
        field = TextField("new_name", "New name", name, on_submit=lambda: self._do_rename(name))
        stem = name.rfind(".")
        field.anchor, field.caret = 0, stem if stem > 0 else len(name)
        cancel = Button("cancel", "Cancel", self._close_dialog)
        ok = Button("ok", "Rename", lambda: self._do_rename(name), kind="primary")
        self.dialog = Dialog("files.rename", f"Rename {name}", "Enter a new name.", [cancel, ok], app=self.name,
                             fields=[field], cancel=cancel, default=ok)
        self.world.open_dialog(self.dialog)

    def _do_rename(self, old: str) -> None:
        d = self.dialog
        if d is None:
            return
        new = d.fields[0].value.strip()
        if not new or "/" in new:
            d.error, d.fields[0].error = "Enter a valid name (no '/').", True
            return
        if new != old and new in self.world.fs:
            d.error, d.fields[0].error = f"{new} already exists.", True
            return
        fs = self.world.fs
        fs[new] = fs.pop(old)
        self.meta[new] = self._meta(old)
        self.renamed[old] = new
        self.list.selected = new
        self.log(f"renamed {old} -> {new}")
        self._close_dialog()
        self.refresh()

    def delete(self, name: str) -> None:
        cancel = Button("cancel", "Cancel", self._close_dialog)
        ok = Button("ok", "Delete", lambda: self._do_delete(name), kind="danger")
        self.dialog = Dialog("files.delete", "Delete file?", f"{name} will be moved to the Trash.", [cancel, ok],
                             app=self.name, cancel=cancel, default=ok)
        self.world.open_dialog(self.dialog)

    def _do_delete(self, name: str) -> None:
        if name in self.world.fs:
            self.world.fs.pop(name)
            self.trash.append(name)
            self.log(f"deleted {name}")
        self._close_dialog()
        self.refresh()

    def _close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.close()
            self.dialog = None

    # -- layout -----------------------------------------------------------------------------------
    def widgets(self) -> list[Widget]:
        if self.phone:
            return [self.sorter, self.list, self.count]
        return [self.rename_btn, self.delete_btn, self.sorter, self.list, self.count]

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        if len(self.list.items) != len(self.world.fs) or any(it.key not in self.world.fs for it in self.list.items):
            self.refresh()  # another app (Notes) saved a file
        s = self.s
        x1, y1, x2, y2 = rect
        pad = int(10 * s)
        bar = int((44 if not self.phone else 60) * s)
        by1, by2 = y1 + pad, y1 + bar - pad // 2
        if not self.phone:
            self.rename_btn.place((x1 + pad, by1, x1 + pad + int(100 * s), by2))
            self.delete_btn.place((x1 + 2 * pad + int(100 * s), by1, x1 + 2 * pad + int(200 * s), by2))
        self.sorter.place((x2 - pad - int(150 * s), by1, x2 - pad, by2))
        self.count.place((x1 + pad, by1, x1 + int(200 * s), by2) if self.phone else
                         (x1 + pad, y2 - int(24 * s), x2, y2))
        foot = 0 if self.phone else int(24 * s)
        self.list.layout((x1, y1 + bar, x2, y2 - foot), s)

    def draw(self, cv: Any, st: Any) -> None:
        cv.rect(self.rect, fill=st.th.surface2)
        for w in self.widgets():
            w.draw(cv, st, w is self.focus and self.world.has_focus(self))

    def state(self) -> dict[str, Any]:
        return {"files": sorted(self.world.fs), "trash": list(self.trash), "selected": self.list.selected,
                "sort": self.sort, "renamed": dict(self.renamed), "dialog": self.dialog.oid if self.dialog else None}
