"""The sim world as a whole: determinism, state, elements, actions, clock and the SimExecutor."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from visagent.core.actions import Action
from visagent.core.errors import ExecutorError
from visagent.screen.base import Executor
from visagent.screen.simulated import SimExecutor
from visagent.sim import SimWorld, VirtualClock
from visagent.sim.apps import APP_CLASSES

from tests.sim_helpers import click, element, settle


def test_virtual_clock_only_moves_when_advanced():
    c = VirtualClock()
    assert c.now() == 0.0
    c.advance(0.25)
    assert c.now() == 0.25
    with pytest.raises(ValueError):
        c.advance(-1)


@pytest.mark.parametrize("platform,size", [("desktop", (1280, 800)), ("phone", (1080, 2400))])
def test_render_is_rgb_of_the_platform_size(platform, size):
    w = SimWorld(platform, seed=1, open_app="notes")
    img = w.render()
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == size == w.size


@pytest.mark.parametrize("platform", ["desktop", "phone"])
def test_same_seed_renders_identical_pixels_and_other_seeds_differ(platform):
    def frames(seed: int) -> list[bytes]:
        w = SimWorld(platform, seed=seed, open_app="files")
        out = [w.render().tobytes()]
        w.clock.advance(0.4)
        out.append(w.render().tobytes())
        settle(w)
        out.append(w.render().tobytes())
        return out

    assert frames(7) == frames(7)
    assert frames(7)[-1] != frames(8)[-1]


def test_seed_randomises_theme_and_window_positions():
    themes = {SimWorld("desktop", seed=s).state()["theme"] for s in range(12)}
    assert themes == {"light", "dark"}
    rects = {SimWorld("desktop", seed=s, open_app="notes").shell.windows["notes"] for s in range(6)}
    assert len(rects) > 1


def test_every_app_opens_on_both_platforms_with_elements_on_screen():
    assert len(APP_CLASSES) >= 7
    for platform in ("desktop", "phone"):
        for name in APP_CLASSES:
            w = SimWorld(platform, seed=2, open_app=name)
            settle(w)
            els = [e for e in w.visible_elements() if e.app == name]
            assert els, (platform, name)
            W, H = w.size
            for e in w.visible_elements():
                x1, y1, x2, y2 = e.bbox
                assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H, e
                assert e.ui_type in ("text", "icon") and e.label


def test_state_is_json_serialisable_and_names_the_foreground():
    w = SimWorld("phone", seed=3, open_app="shop")
    data = json.loads(json.dumps(w.state()))
    assert data["foreground"] == "shop" and data["platform"] == "phone"
    assert set(APP_CLASSES) <= set(data)


def test_dark_mode_setting_rethemes_the_world():
    w = SimWorld("desktop", seed=4, open_app="settings", setup={"settings": {"dark_mode": False}})
    settle(w)
    light = w.render()
    click(w, "Display", "list_item")
    click(w, "Dark mode", "toggle")
    assert w.state()["theme"] == "dark"
    dark = w.render()
    lum = lambda im: int(np.asarray(im.convert("L")).sum())  # noqa: E731
    assert lum(dark) < lum(light)


def test_notes_save_lands_in_files():
    w = SimWorld("desktop", seed=5, apps=["notes", "files"], open_app="notes", setup={"notes": {"text": "hello"}})
    settle(w)
    w.key("s", ("ctrl",))
    settle(w)
    field = w.overlays[-1].fields[0]
    assert field.selected_text == "Untitled.txt"  # the default name is pre-selected
    w.text("greeting.txt")
    w.key("enter")
    assert w.fs["greeting.txt"] == "hello"
    w.launch("Files")
    settle(w)
    assert element(w, "greeting.txt", "list_item")


def test_apply_turns_actions_into_events():
    w = SimWorld("desktop", seed=6, open_app="files", setup={"files": {"filler": 40}})
    settle(w)
    lv = w.apps["files"].list
    cx, cy = element(w, lv.items[0].label, "list_item").center
    w.apply(Action("scroll", coordinate=(cx, cy), pixels=-2, space="screen"))
    assert lv.scroll == 96  # pixels counts wheel clicks (pyautogui.scroll): two clicks of 48 px
    t = w.clock.now()
    w.apply(Action("wait", time=2.0, space="screen"))
    assert w.clock.now() == pytest.approx(t + 2.0)
    w.apply(Action("double_click", coordinate=(cx, cy), space="screen"))
    assert w.state()["dialog"] is not None  # double click previews a file
    settle(w)
    w.apply(Action("key", keys=("Escape",), space="screen"))
    assert w.state()["dialog"] is None


def test_scroll_amounts_are_wheel_clicks_capped_at_the_maximum():
    from visagent.core.actions import MAX_SCROLL_CLICKS

    w = SimWorld("desktop", seed=6, open_app="files", setup={"files": {"filler": 400}})
    settle(w)
    lv = w.apps["files"].list
    cx, cy = element(w, lv.items[0].label, "list_item").center
    message = w.apply(Action("scroll", coordinate=(cx, cy), pixels=-10**12, space="screen"))  # no event flood
    assert f"{-MAX_SCROLL_CLICKS} clicks" in message
    assert 0 < lv.scroll <= MAX_SCROLL_CLICKS * 48


def test_two_separate_click_actions_never_merge_into_a_double_click():
    w = SimWorld("desktop", seed=6, open_app="files", setup={"files": {"filler": 5}})
    settle(w)
    x, y = element(w, w.apps["files"].list.items[0].label, "list_item").center
    for _ in range(2):
        w.apply(Action("left_click", coordinate=(x, y), space="screen"))
    assert w.state()["dialog"] is None


def test_phone_actions_open_swipe_long_press_and_system_buttons():
    w = SimWorld("phone", seed=7, setup={"files": {"files": ["a.txt"], "filler": 30}})
    w.apply(Action("open", text="Files", space="screen"))
    assert w.foreground().name == "files"
    settle(w)
    w.apply(Action("swipe", coordinate=(540, 1800), coordinate2=(540, 1000), space="screen"))
    assert w.apps["files"].list.scroll == 800
    w.apply(Action("swipe", coordinate=(540, 1000), coordinate2=(540, 2000), space="screen"))
    x, y = element(w, "a.txt", "list_item").center
    w.apply(Action("long_press", coordinate=(x, y), space="screen"))
    assert w.state()["popup"] == "files.context"
    w.apply(Action("system_button", button="Back", space="screen"))
    assert w.state()["popup"] is None
    w.apply(Action("system_button", button="Home", space="screen"))
    assert w.foreground() is None


def test_apply_rejects_unconverted_coordinates_and_offscreen_points():
    w = SimWorld("desktop", seed=1)
    with pytest.raises(ExecutorError, match="screen pixels"):
        w.apply(Action("left_click", coordinate=(500, 500), space="norm1000"))
    with pytest.raises(ExecutorError, match="outside"):
        w.apply(Action("left_click", coordinate=(5000, 10), space="screen"))
    with pytest.raises(ExecutorError, match="only on the phone"):
        w.apply(Action("system_button", button="Home", space="screen"))
    with pytest.raises(ExecutorError, match="no app"):
        w.apply(Action("open", text="Minesweeper", space="screen"))


def test_sim_executor_implements_the_protocol_on_the_virtual_clock():
    w = SimWorld("desktop", seed=2, open_app="settings")
    ex = SimExecutor(w)
    assert isinstance(ex, Executor) and ex.name == "sim" and ex.platform == "desktop"
    g = ex.geometry()
    assert (g.width, g.height, g.scale) == (1280, 800, 1.0)
    obs = ex.screenshot()
    assert obs.image.size == (1280, 800) and obs.timestamp == w.clock.now()
    t = ex.now()
    ex.sleep(1.5)
    assert ex.now() == pytest.approx(t + 1.5)
    e = element(w, "Calculator", "taskbar_button")
    res = ex.execute(Action("left_click", coordinate=e.center, space="screen"))
    assert res.ok and res.changed is True
    assert w.foreground().name == "calculator"
    res = ex.execute(Action("terminate", status="success", space="screen"))
    assert res.ok
    ex.close()
    with pytest.raises(ExecutorError, match="closed"):
        ex.screenshot()


def test_hidpi_sim_returns_2x_screenshots_while_input_stays_logical():
    w = SimWorld("desktop", seed=3, apps=["notes", "calculator"])
    ex = SimExecutor(w, scale=2.0)
    g = ex.geometry()
    assert (g.width, g.height, g.physical_width, g.physical_height, g.scale) == (1280, 800, 2560, 1600, 2.0)
    obs = ex.screenshot()
    assert obs.image.size == (2560, 1600)
    e = element(w, "Calculator", "taskbar_button")
    ex.execute(Action("left_click", coordinate=e.center, space="screen"))
    assert w.foreground().name == "calculator"
    # clicking at the physical-pixel position would miss: it is off the logical screen
    with pytest.raises(ExecutorError):
        ex.execute(Action("left_click", coordinate=(e.center[0] * 2, e.center[1] * 2), space="screen"))
    with pytest.raises(ExecutorError):
        SimExecutor(w, scale=0.5)


def test_window_title_bar_drags_the_window_and_its_buttons_minimize_and_close():
    w = SimWorld("desktop", seed=8, apps=["notes", "calculator"], open_app="notes")
    x1, y1, x2, _ = w.shell.windows["notes"]
    w.drag((x1 + 200, y1 + 15), (x1 + 150, y1 + 55))
    assert w.shell.windows["notes"][:2] == (x1 - 50, y1 + 40)
    click(w, "Minimize", "button")
    assert w.foreground() is None and w.state()["open_apps"] == ["notes"]
    click(w, "Notes", "taskbar_button")
    assert w.foreground().name == "notes"
    settle(w)
    click(w, "Close", "button")
    assert w.state()["open_apps"] == []


def test_a_whole_oracle_episode_is_pixel_identical_for_the_same_seed():
    from visagent.sim.scenarios import get_scenario
    from visagent.sim.oracle import next_action

    def episode(seed: int) -> list[bytes]:
        sc = get_scenario("phone-notes-write-save")
        world = sc.make_world(seed)
        frames = []
        for _ in range(30):
            frames.append(world.render().tobytes())
            a = next_action(sc, world)
            if a.action == "terminate":
                break
            world.apply(a)
        return frames

    first = episode(4)
    assert len(first) > 5 and episode(4) == first


def test_a_missing_font_is_one_line_naming_the_package_and_the_override(tmp_path, visagent_bin):
    """The sim world draws with DejaVu; without it the user is told what to install (or where to point
    VISAGENT_FONT_DIR), not 'cannot open resource'. A folder holding the fonts works."""
    import os
    import shutil
    import subprocess

    from visagent.sim import theme

    env = {**os.environ, "VISAGENT_FONT_DIR": str(tmp_path / "none")}
    proc = subprocess.run([visagent_bin, "scenarios", "export-grounding", "--split", "heldout", "--out",
                           str(tmp_path / "g")], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "fonts-dejavu-core" in proc.stderr and "VISAGENT_FONT_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name in ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono", "DejaVuSansMono-Bold"):
        shutil.copy(os.path.join(theme.FONT_DIR, f"{name}.ttf"), fonts)
    world = SimWorld("desktop", seed=3)
    expected = np.asarray(world.render())
    old = theme.FONT_DIR
    try:
        theme.FONT_DIR = str(fonts)
        theme.font.cache_clear()
        theme.text_mask.cache_clear()
        assert np.array_equal(np.asarray(SimWorld("desktop", seed=3).render()), expected)
    finally:
        theme.FONT_DIR = old
        theme.font.cache_clear()
        theme.text_mask.cache_clear()


@pytest.mark.parametrize("dark", [False, True])
def test_each_taskbar_button_shows_its_apps_colour_tile(dark):
    """The taskbar draws each app's filled colour tile (as the desktop icons and real taskbars do), so the button
    is told apart by colour at the tiny model's scale, not only by 13-px text and a thin glyph."""
    from visagent.sim.theme import hue_color

    w = SimWorld("desktop", seed=5, setup={"settings": {"dark_mode": dark}})
    img = np.asarray(w.render().convert("RGB")).astype(int)
    small = np.asarray(w.render().convert("RGB").resize((640, 384))).astype(int)
    for app in w.apps.values():
        x1, y1, x2, y2 = (int(v) for v in element(w, app.title, "taskbar_button").bbox)
        tile = img[y1:y2, x1:x1 + 40].reshape(-1, 3)
        colour = np.array(hue_color(app.hue, 0.6, 0.5))
        near = (np.abs(tile - colour).sum(axis=1) <= 6).sum()
        assert near >= 200, f"{app.title}: {near} pixels of its tile colour in the taskbar button"
        # and at the model's view (half size) the tile colour still fills whole patches' worth of pixels
        sx1, sy1, sx2, sy2 = x1 // 2, int(y1 * 0.48), x1 // 2 + 20, int(y2 * 0.48) + 1
        part = small[sy1:sy2, sx1:sx2].reshape(-1, 3)
        assert (np.abs(part - colour).sum(axis=1) <= 24).sum() >= 40, app.title
