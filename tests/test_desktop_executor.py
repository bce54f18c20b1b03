"""DesktopExecutor on a real X server (Xvfb): pyautogui → X server → real X clients (Tk, xterm) → checked state."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.xserver import wait_for
from visagent.core.actions import MAX_SCROLL_CLICKS, Action
from visagent.loop.coords import to_screen
from visagent.core.errors import ExecutorError
from visagent.screen.desktop import DesktopExecutor, list_monitors, parse_monitor_layout
from visagent.screen.seam import Screen
from visagent.screen.xsession import check_session, session_kind
from visagent.screen.settle import SettleDetector
from visagent.sim.world import SimWorld

pytestmark = pytest.mark.x11
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORDER = HERE / "fixtures" / "xrecorder.py"


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Recorder:
    """A running xrecorder window; `events()` are its logged input events."""

    def __init__(self, tmp_path: Path, geometry: str, *extra: str) -> None:
        self.log = tmp_path / f"events-{time.monotonic_ns()}.jsonl"
        self.proc = subprocess.Popen([sys.executable, str(RECORDER), "--geometry", geometry, "--log", str(self.log),
                                      *extra])
        wait_for(lambda: any(e.get("ready") for e in read_events(self.log)), what="recorder window")
        time.sleep(0.2)  # first expose/paint

    def events(self, kind: str | None = None) -> list[dict]:
        return [e for e in read_events(self.log) if kind is None or e.get("type") == kind]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def recorder(xserver, tmp_path):
    made: list[Recorder] = []

    def make(geometry: str = "1000x700+200+150", *extra: str) -> Recorder:
        rec = Recorder(tmp_path, geometry, *extra)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


@pytest.fixture
def desk(xserver):
    ex = DesktopExecutor(settle=False)
    yield ex
    ex.close()


def screen(name: str, **kw) -> Action:
    return Action(name, space="screen", **kw)


# -- (1) a sim app in a real Tk window, driven through pyautogui --------------------------------------------


def test_sim_app_in_tk_window_is_operated_through_the_x_server(xserver, tmp_path):
    state_file = tmp_path / "state.json"
    origin = (100, 50)
    host = subprocess.Popen(
        [sys.executable, "-m", "visagent.sim.tkhost", "--platform", "desktop", "--seed", "0", "--state-file",
         str(state_file), "--geometry", f"+{origin[0]}+{origin[1]}", "--zoom", "1"], cwd=ROOT)
    try:
        wait_for(state_file.exists, what="tk host state file")
        # settle generously: the host renders in real time on a loaded CI machine
        ex = Screen(DesktopExecutor(settle=SettleDetector(consecutive=4, interval_s=0.05, wait_for_change_s=1.0)))
        twin = SimWorld("desktop", seed=0)  # same seed → same layout: tells where things are

        def element(label: str, role: str | None = None):
            return next(e for e in twin.visible_elements() if e.label == label and (role is None or e.role == role))

        def act(name: str, label: str, role: str | None = None, **kw):
            cx, cy = element(label, role).center
            result = ex.act(screen(name, coordinate=(cx + origin[0], cy + origin[1]), **kw))
            assert result.ok, result.message
            twin.apply(Action(name, coordinate=(cx, cy), space="screen", **kw))
            twin.clock.advance(2.0)
            return result

        def state():
            return json.loads(state_file.read_text(encoding="utf-8"))

        def settings_reach(key, predicate):
            """The host writes its state after each event it handled; wait for it to have handled ours."""
            return wait_for(lambda: predicate(state()["settings"][key]), what=f"settings.{key}")

        before = state()
        assert before["foreground"] is None
        result = act("double_click", "Settings", "icon")
        assert result.changed is True and result.observation is not None
        wait_for(lambda: state()["foreground"] == "settings", what="settings in front")

        act("left_click", "Dark mode")
        settings_reach("dark_mode", lambda v: v is True)

        bright = element("Brightness")
        y = bright.center[1] + origin[1]
        drag = screen("left_click_drag", coordinate=(bright.bbox[0] + 20 + origin[0], y),
                      coordinate2=(bright.bbox[0] + 300 + origin[0], y))
        assert ex.act(drag).ok
        settings_reach("brightness", lambda v: v < before["settings"]["brightness"])

        act("left_click", "General")
        settings_reach("section", lambda v: v == "General")
        act("triple_click", "Device name")
        ex.act(screen("key", keys=("ctrl", "a")))
        typed = ex.act(screen("type", text="Lab PC ✓ ü"))
        assert typed.ok and typed.changed
        assert ex.act(screen("key", keys=("Return",))).ok  # the field submits on Enter
        settings_reach("device_name", lambda v: v == "Lab PC ✓ ü")
        assert before["settings"]["device_name"] != "Lab PC ✓ ü"
    finally:
        host.terminate()
        host.wait(timeout=10)


def test_wheel_through_tk_scrolls_the_sim_list_like_the_sim_itself(xserver, tmp_path):
    from visagent.sim.scenarios import get_scenario

    scenario, origin = "desktop-shop-add-to-cart", (60, 40)
    state_file = tmp_path / "state.json"
    host = subprocess.Popen(
        [sys.executable, "-m", "visagent.sim.tkhost", "--scenario", scenario, "--seed", "0", "--state-file",
         str(state_file), "--geometry", f"+{origin[0]}+{origin[1]}", "--zoom", "1"], cwd=ROOT)
    try:
        wait_for(state_file.exists, what="tk host state file")
        twin = get_scenario(scenario).make_world(0)
        row = next(e for e in twin.visible_elements() if e.role == "list_item")
        box = (row.bbox[0] + origin[0], origin[1] + 100, row.bbox[2] + origin[0], origin[1] + 700)
        ex = Screen(DesktopExecutor(settle=SettleDetector(consecutive=4, interval_s=0.05, wait_for_change_s=1.0)))

        def shown():
            return ex.screenshot().image.crop(box)

        def twin_crop():
            return twin.render().crop((box[0] - origin[0], box[1] - origin[1], box[2] - origin[0], box[3] - origin[1]))

        wait_for(lambda: shown().tobytes() == twin_crop().tobytes(), what="the window showing the world")
        before = shown()
        x, y = row.center
        result = ex.act(screen("scroll", coordinate=(x + origin[0], y + origin[1]), pixels=-2))
        assert result.ok and result.changed
        twin.apply(Action("scroll", coordinate=(x, y), pixels=-2, space="screen"))
        twin.clock.advance(1.0)
        wait_for(lambda: shown().tobytes() == twin_crop().tobytes(), what="same list position as the sim")
        assert shown().tobytes() != before.tobytes()
    finally:
        host.terminate()
        host.wait(timeout=10)


# -- input reaches real X clients ---------------------------------------------------------------------------


def test_clicks_buttons_and_held_keys_reach_an_x_window(recorder, desk):
    rec = recorder()
    desk.execute(screen("left_click", coordinate=(300, 200)))
    desk.execute(screen("right_click", coordinate=(310, 210)))
    desk.execute(screen("middle_click", coordinate=(320, 220)))
    desk.execute(screen("double_click", coordinate=(330, 230)))
    desk.execute(screen("triple_click", coordinate=(340, 240)))
    desk.execute(screen("left_click", coordinate=(350, 250), keys=("ctrl",)))
    wait_for(lambda: len(rec.events("release")) >= 9, what="9 releases")
    presses = [(e["num"], e["x"], e["y"]) for e in rec.events("press")]
    assert presses == [(1, 300, 200), (3, 310, 210), (2, 320, 220), (1, 330, 230), (1, 330, 230),
                       (1, 340, 240), (1, 340, 240), (1, 340, 240), (1, 350, 250)]
    assert rec.events("press")[-1]["state"] & 0x4  # Control held during the ctrl-click
    assert not rec.events("press")[0]["state"] & 0x4


def test_scroll_and_hscroll_send_wheel_buttons(xserver, desk, tmp_path):
    # xev, not Tk: Tk 8.6 folds the horizontal buttons 6/7 into Shift+4/5
    out = (tmp_path / "xev.txt").open("w")
    xev = subprocess.Popen(["xev", "-geometry", "800x600+200+150", "-event", "button"], stdout=out)
    try:
        time.sleep(1.0)  # mapped
        # pixels counts wheel clicks, as pyautogui.scroll(pixels) in Qwen's reference agents
        desk.execute(screen("scroll", coordinate=(400, 300), pixels=-2))  # 2 clicks down
        desk.execute(screen("scroll", coordinate=(400, 300), pixels=1))  # 1 click up
        desk.execute(screen("hscroll", coordinate=(400, 300), pixels=1))  # 1 click left
        desk.execute(screen("hscroll", coordinate=(400, 300), pixels=-2))  # 2 clicks right

        def buttons():
            text = (tmp_path / "xev.txt").read_text()
            return [int(b) for b in re.findall(r"ButtonPress event.*?button (\d+)", text, re.S)]

        wait_for(lambda: len(buttons()) >= 6, what="6 wheel presses")
        assert buttons() == [5, 5, 4, 6, 7, 7]
        # a model's `pixels: 1e9` turns the capped number of clicks (it used to hang `visagent do`), and says so
        result = desk.execute(screen("scroll", coordinate=(400, 300), pixels=-10**9))
        assert result.ok and f"{MAX_SCROLL_CLICKS} wheel clicks" in result.message
        wait_for(lambda: len(buttons()) >= 6 + MAX_SCROLL_CLICKS, what="the capped wheel presses")
        assert buttons()[6:] == [5] * MAX_SCROLL_CLICKS
    finally:
        xev.terminate()
        xev.wait(timeout=10)
        out.close()


def test_drag_moves_with_the_button_held(recorder, desk):
    rec = recorder()
    desk.execute(screen("left_click_drag", coordinate=(300, 300), coordinate2=(600, 400)))
    wait_for(lambda: rec.events("release"), what="release")
    assert (rec.events("press")[0]["x"], rec.events("press")[0]["y"]) == (300, 300)
    assert len(rec.events("drag")) >= 3  # intermediate motion, so apps see a drag
    assert (rec.events("release")[0]["x"], rec.events("release")[0]["y"]) == (600, 400)


def test_key_combos_use_mapped_names(recorder, desk):
    rec = recorder()
    desk.execute(screen("mouse_move", coordinate=(500, 400)))
    for keys in (("ctrl", "shift", "t"), ("Return",), ("esc",), ("arrowleft",), ("F5",), ("alt", "Tab")):
        assert desk.execute(screen("key", keys=keys)).ok
    wait_for(lambda: len([e for e in rec.events("key") if "_" not in e["keysym"]]) >= 6, what="6 key presses")
    keys = [e for e in rec.events("key") if e["keysym"] not in ("Control_L", "Shift_L", "Alt_L")]
    assert [e["keysym"] for e in keys] == ["T", "Return", "Escape", "Left", "F5", "Tab"]
    assert keys[0]["state"] & 0x5 == 0x5  # ctrl + shift held
    assert keys[-1]["state"] & 0x8  # alt held


def test_unknown_key_is_a_message_for_the_model(desk):
    result = desk.execute(screen("key", keys=("hyperspace",)))
    assert not result.ok and "hyperspace" in result.message


@pytest.mark.parametrize("text", ["hello world & 'q' \"dq\" $HOME ~!@#%^*()", "héllo wörld ✓ 日本語 Ωμέγα"])
def test_typing_into_a_real_xterm(xserver, desk, tmp_path, text):
    out = tmp_path / "typed.txt"
    title = f"vt-{time.monotonic_ns()}"
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    term = subprocess.Popen(["xterm", "-u8", "-T", title, "-geometry", "60x5+200+200", "-e", "sh", "-c",
                             f'read line; printf %s "$line" > {out}'], env=env)
    try:
        subprocess.run(["xdotool", "search", "--sync", "--name", title], env=env, timeout=15, capture_output=True,
                       check=True)
        time.sleep(0.3)
        result = desk.execute(screen("type", text=text + "\n", coordinate=(300, 230)))
        assert result.ok, result.message
        term.wait(timeout=15)
        assert out.read_text(encoding="utf-8") == text
    finally:
        if term.poll() is None:
            term.kill()
            term.wait()


# -- monitors, geometry, cursor -------------------------------------------------------------------------------


def test_two_monitors_by_configuration_click_lands_on_the_chosen_one(recorder, xserver):
    rec = recorder(f"{xserver.width}x{xserver.height}+0+0", "--split")
    layout = f"1280x{xserver.height}+0+0,1280x{xserver.height}+1280+0"
    right = DesktopExecutor(monitor=2, monitor_layout=layout, settle=False)
    left = DesktopExecutor(monitor=1, monitor_layout=layout, settle=False)
    g = right.geometry()
    assert (g.offset_x, g.offset_y, g.width, g.height, g.scale) == (1280, 0, 1280, xserver.height, 1.0)
    assert right.screenshot().image.getpixel((640, 500)) == (0, 0, 255)  # the blue half
    assert left.screenshot().image.getpixel((640, 500)) == (255, 0, 0)
    for ex in (right, left):
        action = to_screen(Action("left_click", coordinate=(250, 500), space="norm1000"), ex.geometry())
        assert ex.execute(action).ok
    wait_for(lambda: len(rec.events("press")) >= 2, what="2 clicks")
    assert [(e["x"], e["y"]) for e in rec.events("press")] == [(1280 + 320, 512), (320, 512)]


def test_monitor_layout_from_environment_and_bad_monitor(xserver, monkeypatch):
    monkeypatch.setenv("VISAGENT_MONITORS", "1000x1024+0+0,1560x1024+1000+0")
    assert list_monitors() == parse_monitor_layout("1000x1024+0+0,1560x1024+1000+0")
    ex = DesktopExecutor(monitor=2, settle=False)
    assert (ex.geometry().offset_x, ex.geometry().width) == (1000, 1560)
    assert ex.screenshot().image.size == (1560, 1024)
    with pytest.raises(ExecutorError, match=r"monitor 3 does not exist.*1\.\.2"):
        DesktopExecutor(monitor=3, settle=False)
    monkeypatch.setenv("VISAGENT_MONITORS", "wide")
    with pytest.raises(ExecutorError, match="bad monitor layout 'wide'"):
        list_monitors()


def test_mss_monitor_of_the_x_screen(xserver):
    mons = list_monitors()
    assert mons[0]["width"] == xserver.width and mons[0]["height"] == xserver.height
    with pytest.raises(ExecutorError, match=f"monitor {len(mons) + 1} does not exist"):
        DesktopExecutor(monitor=len(mons) + 1, settle=False)


def test_cursor_drawn_into_screenshot_where_the_pointer_is(recorder, xserver):
    recorder(f"{xserver.width}x{xserver.height}+0+0")  # black background
    plain = DesktopExecutor(settle=False)
    drawn = DesktopExecutor(settle=False, draw_cursor=True)
    plain.execute(screen("mouse_move", coordinate=(700, 400)))
    assert drawn.position() == (700, 400)
    img = drawn.screenshot().image
    assert img.getpixel((702, 410)) == (255, 255, 255)  # inside the arrow
    assert plain.screenshot().image.getpixel((702, 410)) == (0, 0, 0)
    plain.execute(screen("mouse_move", coordinate=(1500, 300)))
    assert drawn.screenshot().image.getpixel((702, 410)) == (0, 0, 0)


def test_failsafe_corner_stops_the_agent(xserver, desk):
    desk.execute(screen("mouse_move", coordinate=(0, 0)))
    try:
        with pytest.raises(ExecutorError, match="fail-safe"):
            desk.execute(screen("left_click", coordinate=(500, 500)))
    finally:
        subprocess.run(["xdotool", "mousemove", "600", "500"], check=True, timeout=10)
    assert desk.execute(screen("mouse_move", coordinate=(640, 480))).ok


# -- errors --------------------------------------------------------------------------------------------------


def test_closed_display_gives_one_clear_error(xserver, fresh_xserver):
    ex = DesktopExecutor(display=fresh_xserver.display, settle=False)
    assert ex.geometry().width == fresh_xserver.width
    fresh_xserver.stop()
    with pytest.raises(ExecutorError, match=f"X server on display '{fresh_xserver.display}' has closed"):
        ex.screenshot()
    with pytest.raises(ExecutorError, match="has closed; restart it"):
        ex.execute(screen("left_click", coordinate=(10, 10)))
    with pytest.raises(ExecutorError, match=f"cannot open X display '{fresh_xserver.display}'.*running"):
        DesktopExecutor(display=fresh_xserver.display)
    # the live display still works afterwards (pyautogui is re-bound per executor)
    assert DesktopExecutor(settle=False).execute(screen("mouse_move", coordinate=(640, 480))).ok


def test_session_detection_wayland_and_no_display():
    assert session_kind({"DISPLAY": ":0"}, "linux") == "x11"
    assert session_kind({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "linux") == "xwayland"
    assert session_kind({"WAYLAND_DISPLAY": "wayland-0"}, "linux") == "wayland"
    assert session_kind({}, "darwin") == "darwin" and session_kind({}, "win32") == "windows"
    with pytest.raises(ExecutorError, match="Wayland session.*no DISPLAY"):
        check_session(None, {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux")
    with pytest.raises(ExecutorError, match="DISPLAY is not set"):
        check_session(None, {}, "linux")
