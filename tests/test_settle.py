"""Settle detection: on the sim's virtual clock (deterministic) and on a real X window."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from visagent.core.actions import Action
from visagent.screen.seam import Screen
from visagent.screen.simulated import SimExecutor
from visagent.screen.settle import SettleDetector, frame_difference, thumbnail
from visagent.sim.world import SimWorld


def virtual(world: SimWorld):
    """capture/now/sleep on the world's virtual clock."""
    return world.render, world.clock.now, world.clock.advance


def tap_icon(world: SimWorld, label: str) -> None:
    icon = next(e for e in world.visible_elements() if e.label == label and e.role == "icon")
    world.apply(Action("click", coordinate=icon.center, space="screen"))


def test_waits_until_the_app_has_opened_and_its_spinner_stopped():
    world = SimWorld("phone", seed=0)
    before = world.render()
    tap_icon(world, "Files")
    busy_for = world.busy_for()
    assert busy_for > 0.3  # page slide plus the list spinner
    start = world.clock.now()
    result = SettleDetector().wait(*virtual(world), before=before)
    assert not result.timed_out and result.changed is True
    assert not world.busy()
    assert world.clock.now() - start >= busy_for and result.settle_s >= busy_for
    world.clock.advance(5.0)
    assert world.render().tobytes() == result.final_image.tobytes()  # nothing moved after it said "settled"


def test_a_fixed_short_sleep_would_have_returned_mid_animation():
    world = SimWorld("phone", seed=0)
    tap_icon(world, "Files")
    world.clock.advance(0.1)
    mid = world.render()
    world.clock.advance(world.busy_for() + 1.0)
    assert mid.tobytes() != world.render().tobytes()


def test_unchanged_screen_reports_no_change_after_the_quiet_captures():
    world = SimWorld("desktop", seed=3)
    det = SettleDetector(consecutive=3, interval_s=0.05)
    result = det.wait(*virtual(world), before=world.render())
    assert result.changed is False and not result.timed_out
    assert result.frames == 4
    assert result.settle_s == pytest.approx(0.15)


def test_a_screen_that_never_stops_changing_hits_the_cap():
    rng = random.Random(0)
    t = [0.0]

    def noise() -> Image.Image:
        return Image.frombytes("L", (64, 48), bytes(rng.randrange(256) for _ in range(64 * 48))).convert("RGB")

    det = SettleDetector(max_wait_s=2.0, downscale=1)
    result = det.wait(noise, lambda: t[0], lambda s: t.__setitem__(0, t[0] + s), before=noise())
    assert result.timed_out and result.changed is True
    assert result.settle_s >= 2.0 and result.last_diff > det.threshold


def _with_caret(on: bool) -> Image.Image:
    img = Image.new("RGB", (1280, 800), (250, 250, 250))
    ImageDraw.Draw(img).text((100, 100), "a static page", fill=(0, 0, 0))
    if on:
        ImageDraw.Draw(img).rectangle((400, 300, 401, 316), fill=(0, 0, 0))
    return img


class MsClock:
    """A virtual clock in whole milliseconds (no float drift when frames are picked by time)."""

    def __init__(self) -> None:
        self.ms = 0

    def now(self) -> float:
        return self.ms / 1000

    def sleep(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


def test_a_blinking_caret_leaves_quiet_gaps_a_spinner_does_not():
    on, off = _with_caret(True), _with_caret(False)
    tiny = frame_difference(thumbnail(on, 8), thumbnail(off, 8), 8)
    assert 0 < tiny < 0.001  # a caret changes as few thumbnail pixels as a small spinner

    caret_clock = MsClock()
    caret = SettleDetector(max_wait_s=2.0).wait(lambda: on if caret_clock.ms // 500 % 2 == 0 else off,
                                                caret_clock.now, caret_clock.sleep, before=off)
    assert not caret.timed_out  # settled between two blinks (500 ms apart)

    spin_clock = MsClock()
    frames = iter(range(10**6))
    spinner = SettleDetector(max_wait_s=2.0).wait(lambda: on if next(frames) % 2 else off, spin_clock.now,
                                                  spin_clock.sleep, before=off)
    assert spinner.timed_out and spinner.settle_s >= 2.0  # it moves at every capture: never settled

    frames, lax_clock = iter(range(10**6)), MsClock()
    lax = SettleDetector(threshold=0.001, max_wait_s=2.0).wait(lambda: on if next(frames) % 2 else off,
                                                               lax_clock.now, lax_clock.sleep, before=off)
    assert not lax.timed_out  # a pixel-fraction threshold would wave the spinner through


def test_wait_for_change_catches_an_app_that_reacts_late():
    plain, changed = _with_caret(False), _with_caret(True)

    def run(wait_for_change_s: float):
        t = [0.0]

        def capture() -> Image.Image:
            return changed if t[0] >= 0.3 else plain  # the app repaints 0.3 s after the input

        det = SettleDetector(consecutive=2, interval_s=0.05, wait_for_change_s=wait_for_change_s)
        return det.wait(capture, lambda: t[0], lambda s: t.__setitem__(0, t[0] + s), before=plain)

    assert run(0.0).changed is False  # settled on the old screen before the app reacted
    late = run(1.0)
    assert late.changed is True and late.final_image is changed


def test_the_screen_seam_settles_an_action_on_the_executors_clock():
    world = SimWorld("phone", seed=0)
    screen = Screen(SimExecutor(world))
    icon = next(e for e in world.visible_elements() if e.label == "Settings" and e.role == "icon")
    start = world.clock.now()
    result = screen.act(Action("click", coordinate=icon.center, space="screen"))
    assert result.changed is True and not world.busy()
    assert world.state()["foreground"] == "settings"
    assert result.settle_s > 0 and world.clock.now() - start >= result.settle_s  # waited on virtual time


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="consecutive"):
        SettleDetector(consecutive=0)
    with pytest.raises(ValueError, match="threshold"):
        SettleDetector(threshold=1.5)


@pytest.mark.x11
def test_settles_after_a_real_x_window_animation(xserver, tmp_path):
    from visagent.screen.desktop import DesktopExecutor

    recorder = Path(__file__).resolve().parent / "fixtures" / "xrecorder.py"
    log = tmp_path / "events.jsonl"
    rec = subprocess.Popen([sys.executable, str(recorder), "--geometry", "800x600+300+200", "--log", str(log),
                            "--animate-ms", "700"])

    def events() -> list[dict]:
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    try:
        deadline = time.monotonic() + 15
        while not events() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        ex = Screen(DesktopExecutor())  # the desktop's own settle parameters, applied by the seam
        result = ex.act(Action("left_click", coordinate=(700, 500), space="screen"))
        returned = time.monotonic()
        assert result.changed is True and not (result.settle_s > 0 and result.observation is None)
        done = [e for e in events() if e.get("type") == "animation_done"]
        assert done and done[0]["t"] <= returned  # it waited for the animation to end
        assert result.observation.image.getpixel((700, 500)) == (255, 255, 255)  # the final frame
        still = ex.act(Action("mouse_move", coordinate=(650, 450), space="screen"))
        assert still.changed is False
    finally:
        rec.terminate()
        rec.wait(timeout=10)


def test_the_seam_fills_the_result_of_a_backend_that_does_not_settle():
    raw_world = SimWorld("phone", seed=0)
    icon = next(e for e in raw_world.visible_elements() if e.label == "Files" and e.role == "icon")
    raw = SimExecutor(raw_world).execute(Action("click", coordinate=icon.center, space="screen"))
    assert raw.observation is None and raw.settle_s == 0 and raw_world.busy()  # the backend itself never settles
    world = SimWorld("phone", seed=0)
    screen = Screen(SimExecutor(world))
    before = screen.screenshot()
    result = screen.act(Action("click", coordinate=icon.center, space="screen"), before=before)
    assert result.changed is True
    assert result.settle_s > 0 and not world.busy() and result.settle_capture_s > 0
    assert result.observation.image.tobytes() == world.render().tobytes()
    final = screen.act(Action("terminate", status="success", space="screen"))
    assert final.observation is None and final.settle_s == 0  # nothing to settle after a final action


def test_settle_off_executes_without_waiting():
    world = SimWorld("phone", seed=0)
    screen = Screen(SimExecutor(world), settle=False)
    icon = next(e for e in world.visible_elements() if e.label == "Files" and e.role == "icon")
    result = screen.act(Action("click", coordinate=icon.center, space="screen"))
    assert result.ok and result.observation is None and result.settle_s == 0
    assert world.busy()  # the app's opening animation was not waited for
