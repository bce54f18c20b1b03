"""`visagent do` as a user runs it: the installed console script, on the sim, a real X server and the fake adb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from visagent.sim.scenarios import get_scenario

FAKES = Path(__file__).resolve().parent / "fakes"
SCENARIO = "desktop-settings-wifi-off"


def run_do(visagent_bin: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([visagent_bin, "do", *args], capture_output=True, text=True, timeout=120,
                          env=env or os.environ.copy())


def test_sim_click_in_norm1000_changes_the_app_and_saves_the_screen(visagent_bin, clean_env, tmp_path):
    world = get_scenario(SCENARIO).make_world()
    dark = world.state()["settings"]["dark_mode"]
    toggle = next(e for e in world.visible_elements() if e.label == "Dark mode")
    w, h = world.size
    norm = [round(toggle.center[0] * 1000 / w), round(toggle.center[1] * 1000 / h)]
    shot = tmp_path / "after.png"
    proc = run_do(visagent_bin, "--executor", "sim", "--scenario", SCENARIO, "--space", "norm1000",
                  "--action", json.dumps({"action": "left_click", "coordinate": norm}), "--screenshot", str(shot))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["action"]["model"] == {"action": "left_click", "coordinate": norm, "space": "norm1000"}
    screen = out["action"]["screen"]
    assert screen["space"] == "screen" and screen["mapping"]["model"] == norm
    assert toggle.bbox[0] <= screen["coordinate"][0] < toggle.bbox[2] and toggle.bbox[1] <= screen["coordinate"][1] < toggle.bbox[3]
    assert out["result"]["ok"] and out["result"]["changed"] is True and out["result"]["settle_s"] > 0
    assert out["state"]["settings"]["dark_mode"] is (not dark)
    with Image.open(shot) as img:
        assert img.size == (w, h)


def test_sim_scroll_of_a_billion_clicks_is_capped_not_a_hang(visagent_bin, clean_env):
    from visagent.core.actions import MAX_SCROLL_CLICKS

    proc = run_do(visagent_bin, "--executor", "sim", "--scenario", SCENARIO, "--space", "norm1000",
                  "--action", '{"action": "scroll", "coordinate": [500, 500], "pixels": -1e9}')
    assert proc.returncode == 0, proc.stderr
    message = json.loads(proc.stdout)["result"]["message"]
    assert f"-{MAX_SCROLL_CLICKS} clicks" in message and "the most one scroll action turns" in message


def test_sim_wait_leaves_the_screen_unchanged(visagent_bin, clean_env):
    proc = run_do(visagent_bin, "--executor", "sim", "--scenario", SCENARIO, "--action", '{"action": "wait", "time": 0.5}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"]["changed"] is False


@pytest.mark.parametrize("action, message", [
    ("{nope", "--action is not valid JSON"),
    ('{"action": "left_click", "coordinate": [1200, 5]}', "outside the 0..1000 grid"),
    ('{"action": "fly"}', "unknown action 'fly'"),
])
def test_bad_actions_are_one_line_errors(visagent_bin, clean_env, action, message):
    proc = run_do(visagent_bin, "--executor", "sim", "--space", "norm1000", "--action", action)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_an_unwritable_screenshot_path_is_refused_before_the_action_runs(visagent_bin, clean_env):
    # was a FileExistsError traceback, raised after the click had already happened
    (clean_env["work"] / "afile").write_text("x")
    proc = run_do(visagent_bin, "--executor", "sim", "--scenario", SCENARIO, "--action", '{"action": "wait"}',
                  "--screenshot", "afile/shot.png")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "afile is a file, not a directory" in proc.stderr


@pytest.mark.x11
def test_desktop_click_lands_on_a_real_x_window(visagent_bin, xserver, tmp_path):
    recorder = Path(__file__).resolve().parent / "fixtures" / "xrecorder.py"
    log = tmp_path / "events.jsonl"
    rec = subprocess.Popen([sys.executable, str(recorder), "--geometry", "600x400+100+100", "--log", str(log)])
    try:
        from tests.test_desktop_executor import read_events, wait_for

        wait_for(lambda: read_events(log), what="recorder")
        shot = tmp_path / "desk.png"
        proc = run_do(visagent_bin, "--executor", "desktop", "--action",
                      '{"action": "left_click", "coordinate": [250, 220]}', "--screenshot", str(shot))
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: [e for e in read_events(log) if e.get("type") == "press"], what="click")
        press = next(e for e in read_events(log) if e.get("type") == "press")
        assert (press["x"], press["y"]) == (250, 220)
        out = json.loads(proc.stdout)
        assert out["geometry"]["width"] == xserver.width
        with Image.open(shot) as img:
            assert img.size == (xserver.width, xserver.height)
    finally:
        rec.terminate()
        rec.wait(timeout=10)


def test_desktop_on_a_dead_display_is_one_clear_line(visagent_bin, tmp_path):
    env = dict(os.environ, DISPLAY=":4242", HOME=str(tmp_path))
    proc = run_do(visagent_bin, "--executor", "desktop", "--action", '{"action": "left_click", "coordinate": [5, 5]}',
                  env=env)
    assert proc.returncode == 2
    assert "cannot open X display ':4242'" in proc.stderr and "Traceback" not in proc.stderr


def test_android_open_through_the_fake_adb(visagent_bin, tmp_path):
    env = dict(os.environ, FAKE_ADB_DIR=str(tmp_path / "phone"), FAKE_ADB_TICK_S="1.0",
               PATH=f"{FAKES}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    shot = tmp_path / "phone.png"
    proc = run_do(visagent_bin, "--executor", "android", "--action", '{"action": "open", "text": "Notes"}',
                  "--screenshot", str(shot), env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["result"]["ok"] and out["result"]["changed"] is True
    assert (out["geometry"]["width"], out["geometry"]["height"]) == (1080, 2400)
    calls = (tmp_path / "phone" / "calls.log").read_text()
    assert "monkey" in calls and "com.visagent.notes" in calls
    env["FAKE_ADB_DEVICES"] = ""
    proc = run_do(visagent_bin, "--executor", "android", "--action", '{"action": "open", "text": "Notes"}', env=env)
    assert proc.returncode == 2 and "no Android device connected" in proc.stderr
