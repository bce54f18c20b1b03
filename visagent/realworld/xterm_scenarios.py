"""xterm scenarios: shell tasks typed into a real terminal (bash without rc files, UTF-8), checked on the
files they leave on disk. Shared helpers: visagent.realworld.desktop_apps."""

from __future__ import annotations

import random
import shlex
from typing import Any

from visagent.realworld.desktop_apps import (
    Oracle, app_home, await_window, click, done, read_text, same_text, show, start_app, type_, verdict,
)
from visagent.realworld.world import RealScenario

# 96x30 cells of DejaVu Sans Mono 12 at the top left; -u8: UTF-8 in and out
ARGV = ["xterm", "-u8", "-fa", "DejaVu Sans Mono", "-fs", "12", "-geometry", "96x30+0+0", "-T", "Terminal",
        "-e", "bash", "--norc", "--noprofile", "-i"]
CLICK = (400, 300)  # inside the terminal (a left click only focuses it)


def _home(world: Any):
    return app_home(world, "xterm")


def _start(world: Any) -> None:
    start_app(world, ARGV, package="xterm", name="xterm", wm_class="xterm")


def _first_command(world: Any, command: str) -> Oracle:
    win = yield from await_window(world, wm_class="xterm")
    yield click(win.at(*CLICK))
    yield type_(command)


# -- write a file with non-ASCII content ------------------------------------------------------------------------
GREETING = "Grüße, Welt ✓"


def setup_greeting(world: Any) -> None:
    _start(world)


def check_greeting(world: Any) -> bool:
    got = read_text(_home(world) / "out" / "greeting.txt")
    return verdict(world, same_text(got, GREETING), f"~/out/greeting.txt: {show(got)}")


def oracle_greeting(world: Any) -> Oracle:
    yield from _first_command(world, f"mkdir -p ~/out && printf '%s\\n' {shlex.quote(GREETING)} > ~/out/greeting.txt\n")
    yield done()


# -- count rows of a CSV file -------------------------------------------------------------------------------
REGIONS = ("Nord", "Süd", "Ost", "West")


def sales_rows(seed: int = 38) -> list[tuple[str, str, int]]:
    """The seeded sales table: (region, product, amount) rows."""
    rng = random.Random(seed)
    products = ("Äpfel", "Birnen", "Kaffee", "Tee", "Brot")
    return [(rng.choice(REGIONS), rng.choice(products), rng.randint(1, 500)) for _ in range(rng.randint(40, 60))]


def setup_sales(world: Any) -> None:
    data = _home(world) / "data"
    data.mkdir(exist_ok=True)
    lines = ["region,product,amount"] + [f"{r},{p},{a}" for r, p, a in sales_rows()]
    (data / "sales.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _start(world)


def check_sales(world: Any) -> bool:
    want = sum(1 for region, _, _ in sales_rows() if region == "Nord")
    got = read_text(_home(world) / "data" / "nord_count.txt")
    return verdict(world, got is not None and got.strip() == str(want),
                   f"~/data/nord_count.txt: {show(got)} (expected {want})")


def oracle_sales(world: Any) -> Oracle:
    yield from _first_command(world, "grep -c '^Nord,' ~/data/sales.csv > ~/data/nord_count.txt\n")
    yield done()


# -- a multi-step shell task ------------------------------------------------------------------------------------
INBOX_LOGS = ("2026-12-01.log", "app.log", "error.log")
INBOX_OTHER = {"notes.txt": "Notizen – bitte nicht verschieben\n", "report.md": "# Bericht\n"}


def setup_inbox(world: Any) -> None:
    inbox = _home(world) / "inbox"
    inbox.mkdir(exist_ok=True)
    for name in INBOX_LOGS:
        (inbox / name).write_text(f"log {name}\n", encoding="utf-8")
    for name, text in INBOX_OTHER.items():
        (inbox / name).write_text(text, encoding="utf-8")
    _start(world)


def check_inbox(world: Any) -> bool:
    inbox = _home(world) / "inbox"
    logs = inbox / "logs"
    if not logs.is_dir():
        return verdict(world, False, "~/inbox/logs is not a folder")
    problems = []
    left = sorted(p.name for p in inbox.glob("*.log"))
    if left:
        problems.append(f"still in ~/inbox: {left}")
    for name in INBOX_LOGS:
        if read_text(logs / name) != f"log {name}\n":
            problems.append(f"~/inbox/logs/{name} missing or changed")
    for name, text in INBOX_OTHER.items():
        if read_text(inbox / name) != text:
            problems.append(f"~/inbox/{name} missing or changed")
    index = read_text(logs / "index.txt")
    if index is None or index.split() != sorted(INBOX_LOGS):
        problems.append(f"~/inbox/logs/index.txt: {show(index)}")
    return verdict(world, not problems, "; ".join(problems) or "3 logs moved, index written, the rest untouched")


def oracle_inbox(world: Any) -> Oracle:
    yield from _first_command(world, "cd ~/inbox\n")
    yield type_("mkdir logs\n")
    yield type_("mv *.log logs/\n")
    yield type_("(cd logs && ls *.log) > logs/index.txt\n")
    yield type_("cat logs/index.txt\n")
    yield done()


SCENARIOS = [
    RealScenario(
        id="xterm-write-file", apps=("xterm",),
        instruction=f"In the terminal, create the file ~/out/greeting.txt (make the folder if needed) containing "
                    f"exactly the line: {GREETING}",
        setup=setup_greeting, check=check_greeting, oracle=oracle_greeting, max_steps=6,
        tags={"difficulty": "easy", "skill": "shell", "text": "non-ascii"}),
    RealScenario(
        id="xterm-count-rows", apps=("xterm",),
        instruction="In the terminal, count the data rows of ~/data/sales.csv whose region is Nord and write just "
                    "that number into ~/data/nord_count.txt.",
        setup=setup_sales, check=check_sales, oracle=oracle_sales, max_steps=8,
        tags={"difficulty": "medium", "skill": "shell"}),
    RealScenario(
        id="xterm-organize-logs", apps=("xterm",),
        instruction="In the terminal: make a folder ~/inbox/logs, move every .log file of ~/inbox into it (leave "
                    "the other files where they are), then write the names of the moved files, one per line in "
                    "alphabetical order, into ~/inbox/logs/index.txt.",
        setup=setup_inbox, check=check_inbox, oracle=oracle_inbox, max_steps=10,
        tags={"difficulty": "hard", "skill": "shell"}),
]
