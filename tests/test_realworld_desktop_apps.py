"""The mousepad, xterm and galculator real-desktop scenarios on the real Debian programs under Xvfb + openbox:
each scripted oracle solves its scenario through the ordinary desktop executor (the checker, on the real state,
says no before and yes after), each recorded trace under scenarios/real-desktop/traces/ replays and meets the
goal again, and the checkers tell near misses from solutions (on files written here, no display)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from visagent.realworld import galculator_scenarios as gc
from visagent.realworld import mousepad_scenarios as mp
from visagent.realworld import xterm_scenarios as xt
from visagent.realworld import xwindows
from visagent.realworld.registry import get_real_scenario, real_scenarios
from visagent.realworld.world import OracleStream, RealExecutor

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "scenarios" / "real-desktop" / "traces"
APPS = ("mousepad", "xterm", "galculator")
IDS = [s.id for s in real_scenarios() if s.apps[0] in APPS]
needs_x = pytest.mark.skipif(any(shutil.which(p) is None for p in ("Xvfb", "openbox", "wmctrl", *APPS)),
                             reason="needs Xvfb, openbox, wmctrl, mousepad, xterm, galculator: "
                                    "run scripts/system-deps.sh")


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


@needs_x
@pytest.mark.parametrize("sid", IDS)
def test_oracle_solves_through_the_desktop_executor_judged_on_real_state(sid):
    sc = get_real_scenario(sid)
    world = sc.make_world()
    executor = RealExecutor(world)
    try:
        if sc.apps[0] != "galculator":  # galculator's check quits it (it writes its state on the way out)
            assert not sc.is_success(world), world.data.get("check_detail")
        stream = OracleStream(sc, world)
        steps = 0
        while (action := stream.next()).action != "terminate":
            result = executor.execute(action)
            assert result.ok, result.message
            steps += 1
            assert steps <= 3 * sc.max_steps, "the oracle does not end"
        assert stream.dismissed == []  # every dialog the oracle opened was expected, none closed by the guard
        assert sc.is_success(world), world.data.get("check_detail")
    finally:
        executor.close()
    assert not world.root.exists()


@needs_x
def test_galculator_check_is_false_for_an_untouched_calculator():
    sc = get_real_scenario("galculator-arith")
    with sc.make_world() as world:
        assert xwindows.find_window(world.display.name, wm_class="galculator") is not None
        assert not sc.is_success(world)
        assert world.data["check_detail"] == "galculator's display: '0' (expected 122)"
        assert xwindows.find_window(world.display.name, wm_class="galculator") is None  # it was closed to read it
        assert not sc.is_success(world)
        assert world.data["check_detail"] == "galculator is not running"


@needs_x
@pytest.mark.parametrize("sid", IDS)
def test_recorded_trace_replays_and_meets_the_goal_again(sid, tmp_path):
    from visagent.realworld import cli as realworld_cli

    trace = tmp_path / sid
    shutil.copytree(TRACES / sid, trace)
    result, goal = realworld_cli.replay(trace, threshold=None)
    assert result.ok, [(c.step, c.difference) for c in result.comparisons]
    assert len(result.comparisons) >= 3 and all(c.difference <= realworld_cli.REPLAY_THRESHOLD
                                                for c in result.comparisons)
    assert goal is True


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
