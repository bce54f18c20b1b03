"""The mousepad, xterm and galculator real-desktop scenarios: what they cover, galculator's checker on its real
display (it quits galculator to read what it writes and starts it again), and the checkers telling near misses
from solutions (on files written here, no display).

That each oracle solves its scenario through the desktop executor (check false before, true after) and that each
recorded trace under scenarios/real-desktop/traces/ replays with the goal met again is tested for every
real-desktop scenario in tests/test_realworld_scenarios.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from visagent.realworld import galculator_scenarios as gc
from visagent.realworld import mousepad_scenarios as mp
from visagent.realworld import xterm_scenarios as xt
from visagent.realworld import xwindows
from visagent.core.actions import Action
from visagent.realworld.registry import get_real_scenario, real_scenarios
from visagent.realworld.world import RealExecutor

APPS = ("mousepad", "xterm", "galculator")
# the world tests need Xvfb, openbox, wmctrl and the three programs (scripts/system-deps.sh); without them they
# fail with the missing package named, they do not skip
IDS = [s.id for s in real_scenarios() if s.apps[0] in APPS]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """World records of these tests in a directory of their own (other worlds on this machine are not ours)."""
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(tmp_path / "state"))


def test_the_three_programs_have_their_scenarios_with_menus_dialogs_and_non_ascii_text():
    assert len(IDS) >= 7
    scs = [get_real_scenario(i) for i in IDS]
    assert {s.apps[0] for s in scs} == set(APPS)
    assert {"menu", "dialog", "shell"} <= {s.tags.get("skill") for s in scs}
    assert sum(any(ord(c) > 127 for c in s.instruction) for s in scs) >= 3
    assert all(1 <= s.max_steps <= 15 and s.tags["world"] == "real-desktop" for s in scs)


@pytest.mark.x11
def test_galculator_check_reads_the_real_display_and_leaves_galculator_as_it_was():
    sc = get_real_scenario("galculator-scientific")
    with sc.make_world() as world:
        display = world.display.name
        first = xwindows.find_window(display, wm_class="galculator")
        assert not sc.is_success(world)
        assert world.data["check_detail"] == ("galculator mode '0' (scientific is '1'), display '0' "
                                              "(expected 1144)")
        again = xwindows.find_window(display, wm_class="galculator")  # quit to read its state, then started again
        # (X may hand the new window the same id: the X server reuses a closed client's id range)
        assert again is not None and again.pid != first.pid and (again.x, again.y) == (first.x, first.y)
        assert world.unexpected_windows() == []  # the new window is not taken for an intruding dialog
        executor = RealExecutor(world)
        try:
            # 7 x 6 = 42 typed into the calculator: the number on its real display is what the check reads
            assert executor.execute(Action("type", text="7*6=", coordinate=again.at(160, 50), space="screen")).ok
            assert not sc.is_success(world)
            assert world.data["check_detail"] == ("galculator mode '0' (scientific is '1'), display '42' "
                                                  "(expected 1144)")
            world.check_alive()  # the quit for reading is not taken for a crash
        finally:
            executor.close()


# -- checkers on files, without a display ------------------------------------------------------------------------
def _world(tmp_path: Path, **data) -> SimpleNamespace:
    return SimpleNamespace(root=tmp_path, data=dict(data))


def test_mousepad_checkers_tell_near_misses(tmp_path):
    world = _world(tmp_path, target=tmp_path / "gruss.txt")
    assert not mp.check_save_as(world) and world.data["check_detail"] == "~/Documents/gruss.txt: missing"
    (tmp_path / "gruss.txt").write_text(mp.SAVE_AS_TEXT.replace("ü", "u"), encoding="utf-8")
    assert not mp.check_save_as(world)
    (tmp_path / "gruss.txt").write_text(mp.SAVE_AS_TEXT + "\n", encoding="utf-8")
    assert mp.check_save_as(world)
    (tmp_path / "gruss.txt").write_bytes(mp.SAVE_AS_TEXT.encode("latin-1", "replace"))
    assert not mp.check_save_as(world)  # not UTF-8

    world = _world(tmp_path, target=tmp_path / "report.txt")
    (tmp_path / "report.txt").write_text(mp.REPLACE_BEFORE.replace("colour", "color").replace("Favour", "Favor"))
    assert not mp.check_replace(world)  # "Favourite" is not "colour": a whole-word-blind regex went too far
    (tmp_path / "report.txt").write_text(mp.REPLACE_BEFORE.replace("colour", "color", 2))
    assert not mp.check_replace(world)
    (tmp_path / "report.txt").write_text(mp.REPLACE_AFTER)
    assert mp.check_replace(world)

    world = _world(tmp_path, target=tmp_path / "einkauf.txt")
    (tmp_path / "einkauf.txt").write_text(mp.EDIT_BEFORE.replace("Milch", mp.EDIT_NEW + "\nMilch"))
    assert not mp.check_edit(world)  # inserted instead of replaced
    (tmp_path / "einkauf.txt").write_text(mp.EDIT_AFTER)
    assert mp.check_edit(world)


def test_xterm_checkers_tell_near_misses(tmp_path):
    home = tmp_path / "home-xterm"
    world = _world(tmp_path)
    want = sum(1 for r, _, _ in xt.sales_rows() if r == "Nord")
    (home / "data").mkdir(parents=True)
    assert not xt.check_sales(world)
    (home / "data" / "nord_count.txt").write_text(f"{want + 1}\n")  # counted the header or a Süd row
    assert not xt.check_sales(world)
    (home / "data" / "nord_count.txt").write_text(f"{want}\n")
    assert xt.check_sales(world) and f"expected {want}" in world.data["check_detail"]

    inbox = home / "inbox"
    (inbox / "logs").mkdir(parents=True)
    for name in xt.INBOX_LOGS:
        (inbox / "logs" / name).write_text(f"log {name}\n")
    for name, text in xt.INBOX_OTHER.items():
        (inbox / name).write_text(text)
    (inbox / "logs" / "index.txt").write_text("\n".join(sorted(xt.INBOX_LOGS) + ["index.txt"]) + "\n")
    assert not xt.check_inbox(world) and "index.txt" in world.data["check_detail"]  # `ls logs > logs/index.txt`
    (inbox / "logs" / "index.txt").write_text("\n".join(sorted(xt.INBOX_LOGS)) + "\n")
    assert xt.check_inbox(world)
    (inbox / "notes.txt").rename(inbox / "logs" / "notes.txt")
    assert not xt.check_inbox(world) and "notes.txt" in world.data["check_detail"]


def test_galculator_reads_numbers_not_strings():
    assert gc._number("122") == gc._number("122.000") == 122
    assert gc._number("1.22e2") == 122
    assert gc._number("nan?") is None and gc._number(None) is None
