"""Mousepad (Xfce's GTK text editor) scenarios: type non-ASCII text and save it through the Save As dialog,
find and replace through the Search menu's dialog, replace one line of an open file and save it.
Checked on the file's bytes on disk. Shared helpers: visagent.realworld.desktop_apps."""

from __future__ import annotations

from typing import Any

from visagent.realworld.desktop_apps import (
    Oracle, app_home, await_window, click, done, key, read_text, same_text, show, start_app, type_, verdict,
)
from visagent.realworld.world import RealScenario

PLACE = (0, 0)
SIZE = (900, 640)  # client area; the frame adds openbox's 1-pixel border and 19-pixel title bar
# offsets inside mousepad's client area
SEARCH_MENU = (109, 12)
FIND_REPLACE_ITEM = (169, 112)  # Search > Find and Replace...
TEXT_AREA = (450, 320)
# offsets inside the "Find and Replace" dialog's client area
FR_SEARCH_FIELD = (256, 24)
FR_REPLACE_FIELD = (256, 62)
FR_REPLACE_ALL_CHECK = (19, 216)  # "Replace all in: Document"
FR_REPLACE_BUTTON = (298, 256)
FR_CLOSE_BUTTON = (387, 256)


#: Mousepad's preferences, in GLib's keyfile settings backend (a file in the world's private home): no path in
#: the title (the world's directory name is random, and traces are compared across runs), no session restore,
#: no reload prompts. GSettings reads nothing else: no dconf database, no user config.
SETTINGS = """\
[org/xfce/mousepad/preferences/window]
path-in-title=false
remember-size=false
remember-position=false
remember-state=false

[org/xfce/mousepad/preferences/file]
session-restore='never'
autosave-timer=uint32 0
"""


def _start(world: Any, *files: str) -> None:
    keyfile = app_home(world, "mousepad") / ".config" / "glib-2.0" / "settings" / "keyfile"
    keyfile.parent.mkdir(parents=True, exist_ok=True)
    keyfile.write_text(SETTINGS, encoding="utf-8")
    start_app(world, ["mousepad", "--disable-server", *files], package="mousepad", name="mousepad",
              wm_class="mousepad", place=PLACE, size=SIZE, env={"GSETTINGS_BACKEND": "keyfile"})


def _documents(world: Any):
    docs = app_home(world, "mousepad") / "Documents"
    docs.mkdir(exist_ok=True)
    return docs


def _open_document(world: Any, name: str, text: str) -> None:
    """~/Documents/<name> written with `text` and open in Mousepad; it is what the check reads."""
    doc = _documents(world) / name
    doc.write_text(text, encoding="utf-8")
    world.data["target"] = doc
    _start(world, str(doc))


def _document_is(world: Any, expected: str, limit: int = 160) -> bool:
    """Whether the target document now holds exactly `expected` (its text shown, up to `limit`, either way)."""
    got = read_text(world.data["target"])
    return verdict(world, got == expected, f"~/Documents/{world.data['target'].name}: {show(got, limit)}")


# -- save as ------------------------------------------------------------------------------------------------
SAVE_AS_TEXT = "Grüße aus Köln — 5 € für Äpfel"


def setup_save_as(world: Any) -> None:
    world.data["target"] = _documents(world) / "gruss.txt"
    _start(world)


def check_save_as(world: Any) -> bool:
    got = read_text(world.data["target"])
    return verdict(world, same_text(got, SAVE_AS_TEXT), f"~/Documents/gruss.txt: {show(got)}")


def oracle_save_as(world: Any) -> Oracle:
    win = yield from await_window(world, wm_class="mousepad")
    yield click(win.at(*TEXT_AREA))
    yield type_(SAVE_AS_TEXT)
    world.expect_title("^Save As$")  # the dialog the next action opens (not closed by the modal guard)
    yield key("ctrl", "shift", "s")
    yield from await_window(world, title="^Save As$")
    # the Name field has the focus and the dialog shows mousepad's working folder, the home: a relative path
    # picks the folder too (and stays valid when a recorded trace is replayed in another world)
    yield type_("Documents/gruss.txt")
    yield key("enter")
    yield from await_window(world, title=r"gruss\.txt", wm_class="mousepad")
    yield done()


# -- find and replace -----------------------------------------------------------------------------------------
REPLACE_BEFORE = ("Report on the colour study\n"
                  "Each participant picked a colour, then a second colour.\n"
                  "Favourite colour of the group: blue.\n"
                  "Nothing else in this file should change.\n")
REPLACE_AFTER = REPLACE_BEFORE.replace("colour", "color")


def setup_replace(world: Any) -> None:
    _open_document(world, "report.txt", REPLACE_BEFORE)


def check_replace(world: Any) -> bool:
    return _document_is(world, REPLACE_AFTER, limit=400)


def oracle_replace(world: Any) -> Oracle:
    win = yield from await_window(world, title=r"report\.txt", wm_class="mousepad")
    yield click(win.at(*SEARCH_MENU))
    world.expect_title("^Find and Replace$")
    yield click(win.at(*FIND_REPLACE_ITEM))
    dlg = yield from await_window(world, title="^Find and Replace$")
    yield click(dlg.at(*FR_SEARCH_FIELD))
    yield type_("colour")
    yield click(dlg.at(*FR_REPLACE_FIELD))
    yield type_("color")
    yield click(dlg.at(*FR_REPLACE_ALL_CHECK))
    yield click(dlg.at(*FR_REPLACE_BUTTON))
    yield click(dlg.at(*FR_CLOSE_BUTTON))
    yield from await_window(world, title="^Find and Replace$", gone=True)
    yield key("ctrl", "s")
    yield from await_window(world, title=r"^report\.txt", wm_class="mousepad")  # no "*": saved
    yield done()


# -- go to a line, edit it ------------------------------------------------------------------------------------
EDIT_BEFORE = "Brot\nButter\nMilch\nKäse\nÄpfel\n"
EDIT_NEW = "Hafermilch – 2 Liter"
EDIT_AFTER = "Brot\nButter\nHafermilch – 2 Liter\nKäse\nÄpfel\n"


def setup_edit(world: Any) -> None:
    _open_document(world, "einkauf.txt", EDIT_BEFORE)


def check_edit(world: Any) -> bool:
    return _document_is(world, EDIT_AFTER)


def oracle_edit(world: Any) -> Oracle:
    # by keyboard: Search > Go To's dialog closes slowly after Enter (a pressed-button frame that stays still
    # longer than the settle's quiet time), so a recorded screen could show it half-closed and replays diverge
    yield from await_window(world, title=r"einkauf\.txt", wm_class="mousepad")
    yield key("ctrl", "home")
    yield key("down")
    yield key("down")
    yield key("shift", "end")
    yield type_(EDIT_NEW)
    yield key("ctrl", "s")
    yield from await_window(world, title=r"^einkauf\.txt", wm_class="mousepad")
    yield done()


SCENARIOS = [
    RealScenario(
        id="mousepad-save-as", apps=("mousepad",),
        instruction=f"In the Mousepad text editor, type exactly this line: {SAVE_AS_TEXT}\n"
                    "Then save it with File > Save As as gruss.txt in the Documents folder of the home folder.",
        setup=setup_save_as, check=check_save_as, oracle=oracle_save_as, max_steps=8,
        tags={"difficulty": "easy", "skill": "dialog", "text": "non-ascii"}),
    RealScenario(
        id="mousepad-find-replace", apps=("mousepad",),
        instruction="The file report.txt is open in Mousepad. Using Search > Find and Replace, replace every "
                    "occurrence of \"colour\" with \"color\" in the whole document, close the dialog and save "
                    "the file.",
        setup=setup_replace, check=check_replace, oracle=oracle_replace, max_steps=15,
        tags={"difficulty": "medium", "skill": "menu"}),
    RealScenario(
        id="mousepad-edit-line", apps=("mousepad",),
        instruction=f"In Mousepad, replace line 3 of einkauf.txt (\"Milch\") with \"{EDIT_NEW}\", keep the other "
                    "lines as they are, and save the file.",
        setup=setup_edit, check=check_edit, oracle=oracle_edit, max_steps=12,
        tags={"difficulty": "medium", "skill": "keyboard", "text": "non-ascii"}),
]
