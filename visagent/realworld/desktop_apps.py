"""Real-desktop scenarios on three Debian programs: Mousepad (a GTK text editor), xterm and galculator.

Each scenario says how to prepare a private home (files, config), which programs to start there and where
their windows go, a checker that judges the programs' REAL state after the run (a file's bytes on disk, the
value galculator writes to its config file when it quits), and a scripted oracle: a generator of
screen-space actions (keyboard shortcuts, and clicks at offsets inside windows whose position it reads from
the window manager's client list, visagent.realworld.xwindows), to be executed by the ordinary desktop
executor. The oracle never looks at pixels. When a window it needs has not appeared yet it emits a `wait`
action, as an agent would, so a settle that returns too early costs a counted step instead of a misclick.

Offsets inside windows were measured on this project's setup (Xvfb 24-bit, openbox, Debian bookworm's
GTK 3 with its default Adwaita theme and DejaVu fonts, mousepad 0.5.10, galculator 2.1.4); they are the
"geometry the scenario knows".

Programs run with the private home as HOME and XDG dirs, GSETTINGS_BACKEND=memory (mousepad keeps its
settings in GSettings: nothing is read from or written to a dconf database, so no session restore or
preference leaks between runs), no D-Bus session bus (mousepad --disable-server), LANG=C.UTF-8.
"""

from __future__ import annotations

import configparser
import os
import random
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from visagent.actions import Action
from visagent.errors import ExecutorError
from visagent.realworld import xwindows

Oracle = Iterator[Action]
#: Longest an oracle waits (in `wait` actions) for a window before it gives up.
WINDOW_WAIT_S = 10.0
WAIT_STEP_S = 0.25


@dataclass
class AppContext:
    """What setup, checker and oracle see of one running scenario: the X display and the private home."""

    display: str
    home: Path

    def find(self, title: str | None = None, wm_class: str | None = None) -> xwindows.XWindow | None:
        return xwindows.find_window(self.display, title, wm_class)


@dataclass(frozen=True)
class Program:
    """A program to start in the scenario's home: argv ("{home}" is replaced), the WM_CLASS its main window
    has, and where to put that window's frame (x, y) with an optional client size (None keeps its own)."""

    argv: tuple[str, ...]
    wm_class: str
    place: tuple[int, int] | None = None
    size: tuple[int, int] | None = None

    def command(self, home: Path) -> list[str]:
        return [a.replace("{home}", str(home)) for a in self.argv]


@dataclass(frozen=True)
class Check:
    """A checker's verdict on the real state, and what it saw (for the run's report)."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class AppScenario:
    """One real-desktop task. `setup(home)` writes files and config; `programs` start after it; `check(ctx)`
    judges the real state once the run ended; `oracle(ctx)` yields the actions that solve it."""

    id: str
    app: str
    instruction: str
    max_steps: int
    setup: Callable[[Path], None]
    programs: tuple[Program, ...]
    check: Callable[[AppContext], Check]
    oracle: Callable[[AppContext], Oracle]
    difficulty: str = "easy"
    features: tuple[str, ...] = ()  # dialog, menu, non-ascii, multi-step, keyboard

    @property
    def tags(self) -> dict[str, str]:
        return {"app": self.app, "difficulty": self.difficulty, "platform": "desktop",
                "features": ",".join(self.features)}


# -- the programs' environment --------------------------------------------------------------------------------

def prepare_home(home: Path) -> dict[str, Path]:
    """Create the private home's XDG dirs (and an empty .Xauthority). Returns them by variable name."""
    dirs = {"XDG_CONFIG_HOME": home / ".config", "XDG_DATA_HOME": home / ".local" / "share",
            "XDG_CACHE_HOME": home / ".cache", "XDG_STATE_HOME": home / ".local" / "state",
            "XDG_RUNTIME_DIR": home / ".run"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    dirs["XDG_RUNTIME_DIR"].chmod(0o700)
    (home / ".Xauthority").touch()
    return dirs


def program_env(home: Path, display: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment programs run in: only PATH (and a few harmless variables) from `base`, the rest private.

    No variable points at the machine user's config, session bus or dconf database."""
    base = dict(os.environ if base is None else base)
    env = {k: base[k] for k in ("PATH", "TZ") if k in base}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({k: str(v) for k, v in prepare_home(home).items()})
    env.update({
        "HOME": str(home), "DISPLAY": display, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "GSETTINGS_BACKEND": "memory", "NO_AT_BRIDGE": "1", "GTK_A11Y": "none", "GDK_BACKEND": "x11",
        "SHELL": "/bin/bash", "TERM": "xterm", "PS1": "$ ", "USER": base.get("USER", "user"),
    })
    return env


# -- oracle helpers -----------------------------------------------------------------------------------------

def await_window(ctx: AppContext, title: str | None = None, wm_class: str | None = None,
                 gone: bool = False) -> Iterator[Action]:
    """`win = yield from await_window(...)`: yields `wait` actions until the window exists (or, with gone=True,
    until none matches any more); returns it. Raises ExecutorError after WINDOW_WAIT_S."""
    deadline = time.monotonic() + WINDOW_WAIT_S
    while True:
        win = ctx.find(title, wm_class)
        if (win is None) == gone:
            return win
        if time.monotonic() >= deadline:
            state = "still open" if gone else "never appeared"
            raise ExecutorError(f"oracle: the window (title ~ {title!r}, class {wm_class!r}) {state}")
        yield Action("wait", time=WAIT_STEP_S, space="screen")


def click(point: tuple[int, int]) -> Action:
    return Action("left_click", coordinate=point, space="screen")


def key(*keys: str) -> Action:
    return Action("key", keys=keys, space="screen")


def type_(text: str, at: tuple[int, int] | None = None) -> Action:
    return Action("type", text=text, coordinate=at, space="screen")


def done() -> Action:
    return Action("terminate", status="success", space="screen")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _same_text(got: str | None, want: str) -> bool:
    """Equal up to one trailing newline (editors differ on adding one; shells' printf adds one)."""
    return got is not None and got.removesuffix("\n") == want.removesuffix("\n")


def _show(text: str | None, limit: int = 120) -> str:
    return "missing" if text is None else repr(text if len(text) <= limit else text[:limit] + "…")


# -- Mousepad --------------------------------------------------------------------------------------------------

MOUSEPAD_PLACE = (0, 0)
MOUSEPAD_SIZE = (900, 640)
# offsets inside mousepad's client area (menu bar at the top)
MP_SEARCH_MENU = (109, 12)
MP_FIND_REPLACE_ITEM = (169, 112)
MP_TEXT = (450, 320)
# offsets inside the "Find and Replace" dialog's client area
FR_SEARCH_FIELD = (256, 24)
FR_REPLACE_FIELD = (256, 62)
FR_REPLACE_ALL_CHECK = (19, 216)
FR_REPLACE_BUTTON = (298, 256)
FR_CLOSE_BUTTON = (387, 256)


def _mousepad(*files: str) -> Program:
    return Program(("mousepad", "--disable-server", *files), "mousepad", MOUSEPAD_PLACE, MOUSEPAD_SIZE)


SAVE_AS_TEXT = "Grüße aus Köln — 5 € für Äpfel"
SAVE_AS_PATH = "Documents/gruss.txt"


def _setup_documents(home: Path) -> None:
    (home / "Documents").mkdir(parents=True, exist_ok=True)


def _check_save_as(ctx: AppContext) -> Check:
    got = _read(ctx.home / SAVE_AS_PATH)
    return Check(_same_text(got, SAVE_AS_TEXT), f"~/{SAVE_AS_PATH}: {_show(got)}")


def _oracle_save_as(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="mousepad")
    yield type_(SAVE_AS_TEXT, at=win.at(*MP_TEXT))
    yield key("ctrl", "shift", "s")
    yield from await_window(ctx, title="^Save As$")
    yield type_(str(ctx.home / SAVE_AS_PATH))  # the Name field has the focus; a full path picks the folder too
    yield key("enter")
    yield from await_window(ctx, title=r"gruss\.txt", wm_class="mousepad")
    yield done()


REPLACE_FILE = "Documents/report.txt"
REPLACE_BEFORE = ("Report on the colour study\n"
                  "Each participant picked a colour, then a second colour.\n"
                  "Favourite colour of the group: blue.\n"
                  "Nothing else in this file should change.\n")
REPLACE_AFTER = REPLACE_BEFORE.replace("colour", "color")


def _setup_replace(home: Path) -> None:
    _setup_documents(home)
    (home / REPLACE_FILE).write_text(REPLACE_BEFORE, encoding="utf-8")


def _check_replace(ctx: AppContext) -> Check:
    got = _read(ctx.home / REPLACE_FILE)
    return Check(got == REPLACE_AFTER, f"~/{REPLACE_FILE}: {_show(got, 400)}")


def _oracle_replace(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, title=r"report\.txt", wm_class="mousepad")
    yield click(win.at(*MP_SEARCH_MENU))  # Search menu
    yield click(win.at(*MP_FIND_REPLACE_ITEM))  # Find and Replace...
    dlg = yield from await_window(ctx, title="^Find and Replace$")
    yield type_("colour", at=dlg.at(*FR_SEARCH_FIELD))
    yield type_("color", at=dlg.at(*FR_REPLACE_FIELD))
    yield click(dlg.at(*FR_REPLACE_ALL_CHECK))  # "Replace all in: Document"
    yield click(dlg.at(*FR_REPLACE_BUTTON))
    yield click(dlg.at(*FR_CLOSE_BUTTON))
    yield from await_window(ctx, title="^Find and Replace$", gone=True)
    yield key("ctrl", "s")
    yield from await_window(ctx, title=r"^[^*].*report\.txt", wm_class="mousepad")  # no "*": saved
    yield done()


EDIT_FILE = "Documents/einkauf.txt"
EDIT_BEFORE = "Brot\nButter\nMilch\nKäse\nÄpfel\n"
EDIT_LINE = 3
EDIT_NEW = "Hafermilch – 2 Liter"
EDIT_AFTER = "Brot\nButter\nHafermilch – 2 Liter\nKäse\nÄpfel\n"


def _setup_edit(home: Path) -> None:
    _setup_documents(home)
    (home / EDIT_FILE).write_text(EDIT_BEFORE, encoding="utf-8")


def _check_edit(ctx: AppContext) -> Check:
    got = _read(ctx.home / EDIT_FILE)
    return Check(got == EDIT_AFTER, f"~/{EDIT_FILE}: {_show(got)}")


def _oracle_edit(ctx: AppContext) -> Oracle:
    yield from await_window(ctx, title=r"einkauf\.txt", wm_class="mousepad")
    yield key("ctrl", "l")  # Search > Go to...
    yield from await_window(ctx, title="^Go To$")
    yield type_(f"{EDIT_LINE}\n")
    yield from await_window(ctx, title="^Go To$", gone=True)
    yield key("home")
    yield key("shift", "end")
    yield type_(EDIT_NEW)
    yield key("ctrl", "s")
    yield from await_window(ctx, title=r"^[^*].*einkauf\.txt", wm_class="mousepad")
    yield done()


# -- xterm ------------------------------------------------------------------------------------------------

XTERM = Program(("xterm", "-u8", "-fa", "DejaVu Sans Mono", "-fs", "12", "-geometry", "96x30+0+0", "-T", "Terminal",
                 "-e", "bash", "--norc", "--noprofile", "-i"), "xterm")
XTERM_CLICK = (400, 300)  # inside the terminal (left click only focuses)

GREETING_PATH = "out/greeting.txt"
GREETING = "Grüße, Welt ✓"


def _check_greeting(ctx: AppContext) -> Check:
    got = _read(ctx.home / GREETING_PATH)
    return Check(_same_text(got, GREETING), f"~/{GREETING_PATH}: {_show(got)}")


def _oracle_greeting(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="xterm")
    yield type_(f"mkdir -p ~/out && printf '%s\\n' {shlex.quote(GREETING)} > ~/{GREETING_PATH}\n", at=win.at(*XTERM_CLICK))
    yield done()


SALES_PATH = "data/sales.csv"
NORD_PATH = "data/nord_count.txt"
REGIONS = ("Nord", "Süd", "Ost", "West")


def sales_rows(seed: int = 38) -> list[tuple[str, str, int]]:
    """The seeded sales table: (region, product, amount) rows."""
    rng = random.Random(seed)
    products = ("Äpfel", "Birnen", "Kaffee", "Tee", "Brot")
    return [(rng.choice(REGIONS), rng.choice(products), rng.randint(1, 500)) for _ in range(rng.randint(40, 60))]


def _setup_sales(home: Path) -> None:
    (home / "data").mkdir(parents=True, exist_ok=True)
    lines = ["region,product,amount"] + [f"{r},{p},{a}" for r, p, a in sales_rows()]
    (home / SALES_PATH).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _check_sales(ctx: AppContext) -> Check:
    want = sum(1 for r, _, _ in sales_rows() if r == "Nord")
    got = _read(ctx.home / NORD_PATH)
    ok = got is not None and got.strip() == str(want)
    return Check(ok, f"~/{NORD_PATH}: {_show(got)} (expected {want})")


def _oracle_sales(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="xterm")
    yield type_(f"grep -c '^Nord,' ~/{SALES_PATH} > ~/{NORD_PATH}\n", at=win.at(*XTERM_CLICK))
    yield done()


INBOX_LOGS = ("2026-12-01.log", "app.log", "error.log")
INBOX_OTHER = {"notes.txt": "Notizen – bitte nicht verschieben\n", "report.md": "# Bericht\n"}


def _setup_inbox(home: Path) -> None:
    inbox = home / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for name in INBOX_LOGS:
        (inbox / name).write_text(f"log {name}\n", encoding="utf-8")
    for name, text in INBOX_OTHER.items():
        (inbox / name).write_text(text, encoding="utf-8")


def _check_inbox(ctx: AppContext) -> Check:
    inbox, logs = ctx.home / "inbox", ctx.home / "inbox" / "logs"
    problems = []
    if not logs.is_dir():
        return Check(False, "~/inbox/logs is not a folder")
    left = sorted(p.name for p in inbox.glob("*.log"))
    if left:
        problems.append(f"still in ~/inbox: {left}")
    for name in INBOX_LOGS:
        if _read(logs / name) != f"log {name}\n":
            problems.append(f"~/inbox/logs/{name} missing or changed")
    for name, text in INBOX_OTHER.items():
        if _read(inbox / name) != text:
            problems.append(f"~/inbox/{name} missing or changed")
    index = _read(logs / "index.txt")
    if index is None or index.split() != sorted(INBOX_LOGS):
        problems.append(f"~/inbox/logs/index.txt: {_show(index)}")
    return Check(not problems, "; ".join(problems) or "3 logs moved, index written, other files untouched")


def _oracle_inbox(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="xterm")
    yield type_("cd ~/inbox\n", at=win.at(*XTERM_CLICK))
    yield type_("mkdir logs\n")
    yield type_("mv *.log logs/\n")
    yield type_("(cd logs && ls *.log) > logs/index.txt\n")
    yield type_("cat logs/index.txt\n")
    yield done()


# -- galculator --------------------------------------------------------------------------------------------

GALCULATOR = Program(("galculator",), "galculator", (200, 100))
GC_DISPLAY = (160, 50)  # the number display (clicking it only focuses the window)
GC_VIEW_MENU = (103, 12)
GC_SCIENTIFIC_ITEM = (158, 62)
# scientific mode's buttons, offsets inside the (wider) window
GC_SCI_FACTORIAL = (170, 173)
GC_SCI_POWER = (103, 173)
GC_SCI_WIDTH = 600  # the window is wider than this once the scientific layout is on


def _setup_galculator(home: Path) -> None:
    # galculator writes its config on quit only when the folder exists; start from a known mode (basic)
    conf = home / ".config" / "galculator"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "galculator.conf").write_text("[general]\nmode=0\nremembered_valuex=\"0\"\n", encoding="utf-8")


def galculator_state(ctx: AppContext, timeout_s: float = 10.0) -> dict[str, str] | None:
    """Quit galculator gracefully (the window manager's close) and read what it wrote to its config file:
    its [general] section (mode, remembered_valuex = the number on the display). None when it is not running.
    Raises ExecutorError when it does not quit in time."""
    win = ctx.find(wm_class="galculator")
    if win is None:
        return None
    xwindows.close_window(ctx.display, win)
    deadline = time.monotonic() + timeout_s
    while _alive(win.pid):
        if time.monotonic() >= deadline:
            raise ExecutorError(f"galculator (pid {win.pid}) did not quit within {timeout_s:g} s of the close request")
        time.sleep(0.05)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(ctx.home / ".config" / "galculator" / "galculator.conf", encoding="utf-8")
    except configparser.Error as exc:
        raise ExecutorError(f"galculator's config file is unreadable ({exc})") from None
    return {k: v.strip('"') for k, v in parser["general"].items()} if parser.has_section("general") else {}


def _alive(pid: int | None) -> bool:
    """Whether process `pid` still runs (a zombie waiting for its parent counts as ended)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


ARITH_EXPR = "(17 + 25) × 3 − 4"
ARITH_KEYS = "(17+25)*3-4="
ARITH_RESULT = 122


def _check_arith(ctx: AppContext) -> Check:
    state = galculator_state(ctx)
    if state is None:
        return Check(False, "galculator is not running")
    value = state.get("remembered_valuex")
    return Check(_number(value) == ARITH_RESULT, f"galculator's display: {value!r} (expected {ARITH_RESULT})")


def _oracle_arith(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="galculator")
    yield type_(ARITH_KEYS, at=win.at(*GC_DISPLAY))
    yield done()


SCI_RESULT = 1144  # 5! + 2^10


def _check_scientific(ctx: AppContext) -> Check:
    state = galculator_state(ctx)
    if state is None:
        return Check(False, "galculator is not running")
    value, mode = state.get("remembered_valuex"), state.get("mode")
    ok = mode == "1" and _number(value) == SCI_RESULT
    return Check(ok, f"galculator mode {mode!r} (scientific is '1'), display {value!r} (expected {SCI_RESULT})")


def _oracle_scientific(ctx: AppContext) -> Oracle:
    win = yield from await_window(ctx, wm_class="galculator")
    yield click(win.at(*GC_VIEW_MENU))
    yield click(win.at(*GC_SCIENTIFIC_ITEM))
    while True:  # the window grows to the scientific layout
        win = yield from await_window(ctx, wm_class="galculator")
        if win.width > GC_SCI_WIDTH:
            break
        yield Action("wait", time=WAIT_STEP_S, space="screen")
    yield type_("5", at=win.at(*GC_DISPLAY))
    yield click(win.at(*GC_SCI_FACTORIAL))
    yield type_("+2")
    yield click(win.at(*GC_SCI_POWER))
    yield type_("10=")
    yield done()


# -- the list ----------------------------------------------------------------------------------------------

SCENARIOS: tuple[AppScenario, ...] = (
    AppScenario(
        "real-mousepad-save-as", "mousepad",
        f"In the Mousepad text editor, type exactly this line: {SAVE_AS_TEXT}\n"
        f"Then save it with File > Save As as ~/{SAVE_AS_PATH} (the Documents folder in the home folder).",
        8, _setup_documents, (_mousepad(),), _check_save_as, _oracle_save_as, "easy",
        ("dialog", "non-ascii", "keyboard")),
    AppScenario(
        "real-mousepad-find-replace", "mousepad",
        "The file report.txt is open in Mousepad. Using Search > Find and Replace, replace every occurrence of "
        "\"colour\" with \"color\" in the whole document, close the dialog and save the file.",
        15, _setup_replace, (_mousepad("{home}/" + REPLACE_FILE),), _check_replace, _oracle_replace, "medium",
        ("menu", "dialog")),
    AppScenario(
        "real-mousepad-edit-line", "mousepad",
        f"In Mousepad, replace line {EDIT_LINE} of einkauf.txt (\"Milch\") with \"{EDIT_NEW}\", keep the other "
        "lines as they are, and save the file.",
        12, _setup_edit, (_mousepad("{home}/" + EDIT_FILE),), _check_edit, _oracle_edit, "medium",
        ("dialog", "non-ascii", "keyboard")),
    AppScenario(
        "real-xterm-write-file", "xterm",
        f"In the terminal, create the file ~/{GREETING_PATH} (make the folder if needed) containing exactly "
        f"the line: {GREETING}",
        6, lambda home: None, (XTERM,), _check_greeting, _oracle_greeting, "easy", ("non-ascii", "keyboard")),
    AppScenario(
        "real-xterm-count-rows", "xterm",
        f"In the terminal, count the data rows of ~/{SALES_PATH} whose region is Nord and write just that number "
        f"into ~/{NORD_PATH}.",
        8, _setup_sales, (XTERM,), _check_sales, _oracle_sales, "medium", ("keyboard",)),
    AppScenario(
        "real-xterm-organize-logs", "xterm",
        "In the terminal: make a folder ~/inbox/logs, move every .log file of ~/inbox into it (leave the other "
        "files where they are), then write the names of the moved files, one per line in alphabetical order, "
        "into ~/inbox/logs/index.txt.",
        10, _setup_inbox, (XTERM,), _check_inbox, _oracle_inbox, "hard", ("multi-step", "keyboard")),
    AppScenario(
        "real-galculator-arith", "galculator",
        f"Use galculator to compute {ARITH_EXPR} and leave the result on its display.",
        6, _setup_galculator, (GALCULATOR,), _check_arith, _oracle_arith, "easy", ("keyboard",)),
    AppScenario(
        "real-galculator-scientific", "galculator",
        "Switch galculator to Scientific mode from its View menu, then compute 5! + 2^10 with it (factorial "
        "and power buttons) and leave the result on its display.",
        12, _setup_galculator, (GALCULATOR,), _check_scientific, _oracle_scientific, "medium", ("menu",)),
)


def get(scenario_id: str) -> AppScenario:
    for sc in SCENARIOS:
        if sc.id == scenario_id:
            return sc
    raise KeyError(scenario_id)


__all__ = ["SCENARIOS", "AppContext", "AppScenario", "Check", "Program", "get", "galculator_state", "prepare_home",
           "program_env", "sales_rows"]
