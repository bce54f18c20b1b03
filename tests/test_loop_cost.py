"""The loop's own cost without a change in behaviour (issue 44): each screenshot is PNG-encoded once for the trace
and every request (engine/image_codec.py), the trace is written by a writer thread that keeps its kill -9 promise,
old screenshots leave memory, and the settle detector's captures are timed apart from its waiting."""

from __future__ import annotations

import base64
import gc
import io
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import image_codec
from engine.openai_wire import image_to_data_url, messages_to_wire
from engine.remote import RemoteEngine
from tests.agent_helpers import WAIT, sim
from tests.fixtures.openai_stub import Reply, delta_chunk
from visagent.loop.agent import Agent, AgentConfig
from visagent.core.errors import TraceError
from visagent.loop.scripted import ScriptedEngine
from visagent.core.trace import TraceWriter, read_trace

ROOT = Path(__file__).resolve().parents[1]


def _noise(w: int = 61, h: int = 47, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def _old_trace_png(image: Image.Image, path: Path) -> bytes:
    """What TraceWriter.save_image wrote before the encoding was shared."""
    image.save(path, format="PNG", compress_level=1)
    return path.read_bytes()


def test_a_registered_image_is_encoded_once_into_the_same_url_a_direct_encoding_gives(monkeypatch):
    image = _noise()
    direct = image_to_data_url(image)  # not registered: encoded afresh, as before
    calls = []
    real = image_codec.encode_png
    monkeypatch.setattr(image_codec, "encode_png", lambda im: calls.append(1) or real(im))
    image_codec.keep_encoding(image)
    first = image_to_data_url(image)
    again = image_to_data_url(image)
    assert first == direct and again is first
    assert image_codec.png_bytes(image) == base64.b64decode(direct.split(",", 1)[1])
    assert len(calls) == 1


def test_an_unregistered_image_drawn_on_between_requests_is_sent_as_it_now_is():
    image = _noise()
    before = image_to_data_url(image)
    image.putpixel((0, 0), (255 - image.getpixel((0, 0))[0], 0, 0))
    assert image_to_data_url(image) != before


def test_the_cache_keeps_no_image_alive():
    image = image_codec.keep_encoding(_noise(seed=1))
    image_codec.data_url(image)
    key, ref = id(image), weakref.ref(image)
    assert key in image_codec._entries
    del image
    gc.collect()
    assert ref() is None  # the encodings held did not keep the screenshot alive
    entry = image_codec._entries.get(key)
    assert entry is None or entry.ref() is not None  # its entry went with it (the id may be reused since)


@pytest.mark.parametrize("background", [False, True])
def test_trace_screenshots_are_the_bytes_the_wire_carries_and_the_pixels_written_before(tmp_path, background):
    image = image_codec.keep_encoding(_noise(1280 // 8, 800 // 8, seed=2))
    url = image_to_data_url(image)
    writer = TraceWriter(tmp_path, {"task": "t"}, run_id="r", background=background)
    writer.save_image("step_001.png", image)
    writer.append({"type": "step", "step": 1})
    writer.finish("success", "", 1, None)
    written = (tmp_path / "r" / "step_001.png").read_bytes()
    assert written == base64.b64decode(url.split(",", 1)[1])
    # the encoder changed (issue 44): other PNG bytes, the very same pixels as Pillow's file
    assert _pixels(written) == _pixels(_old_trace_png(image, tmp_path / "old.png")) == (image.mode, image.tobytes())


def _pixels(png: bytes) -> tuple[str, bytes]:
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return img.mode, img.tobytes()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "I;16"])
@pytest.mark.parametrize("size", [(1, 1), (3, 1), (1, 5), (61, 47)])
def test_the_png_encoder_gives_back_exactly_the_pixels_a_decoder_reads(mode, size):
    w, h = size
    rng = np.random.default_rng(w * 100 + h)
    noise = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    image = noise if mode == "RGBA" else noise.convert(mode)
    png = image_codec.encode_png(image)
    sent = image if mode in image_codec.PNG_MODES else image.convert("RGB")  # other modes go as RGB, as before
    assert _pixels(png) == (sent.mode, sent.tobytes())
    # a strict second decoder (libpng through OpenCV) reads the same pixels
    import cv2

    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = np.asarray(sent)
    if expected.ndim == 3:
        expected = expected[..., [2, 1, 0, 3][: expected.shape[2]]]
    assert decoded.shape == expected.shape and np.array_equal(decoded, expected)


def test_the_png_encoder_without_isal_falls_back_to_zlib_with_the_same_pixels(monkeypatch):
    import zlib

    image = _noise(seed=5)
    monkeypatch.setattr(image_codec, "_deflate", zlib)
    assert _pixels(image_codec.encode_png(image)) == ("RGB", image.tobytes())


def test_the_png_encoder_keeps_screens_of_the_sim_exact_and_compact():
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import get_scenario

    image = SimExecutor(get_scenario("desktop-settings-wifi-off").make_world(seed=1)).screenshot().image
    png = image_codec.encode_png(image)
    assert _pixels(png) == ("RGB", image.tobytes())
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    assert len(png) < 1.5 * len(buf.getvalue())  # about Pillow's level-1 size, far from the 3 MB of raw pixels


def test_wire_messages_are_identical_with_and_without_the_shared_encoding():
    screens = [_noise(seed=s) for s in range(3)]
    messages = [{"role": "user", "content": [{"type": "image", "image": screens[0]}, {"type": "text", "text": "go"}]},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": [{"type": "image", "image": screens[1]}]},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": [{"type": "image", "image": screens[2]}]}]
    direct = messages_to_wire(messages)
    for image in screens:
        image_codec.keep_encoding(image)
    assert messages_to_wire(messages) == direct == messages_to_wire(messages)


def test_resized_screenshots_for_pixel_space_models_are_made_once_and_sent_unchanged(stub_factory, monkeypatch):
    stub = stub_factory([Reply(body={"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": "ok"}}]})])
    engine = RemoteEngine(stub.url, model_name="stub", provider="generic", coord_space="resized", backoff_s=0.01)
    screen = _noise(1366, 771, seed=3)  # not multiples of 32: smart-resized
    msgs = [{"role": "user", "content": [{"type": "image", "image": screen}, {"type": "text", "text": "go"}]}]
    engine.generate(msgs)
    image_codec.keep_encoding(screen)
    encodes = []
    real = image_codec.encode_png
    monkeypatch.setattr(image_codec, "encode_png", lambda im: encodes.append(im.size) or real(im))
    engine.generate(msgs)
    engine.generate(msgs)
    assert len(encodes) == 1  # the resized copy, encoded once for both requests
    urls = [r["json"]["messages"][0]["content"][0]["image_url"]["url"] for r in stub.requests if r["json"]]
    assert len(urls) == 3 and urls[0] == urls[1] == urls[2]
    size = Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1]))).size
    assert size != screen.size  # smart-resized before sending


def test_remote_run_sends_exactly_the_trace_screenshots_and_keeps_only_the_window(tmp_path, stub_factory):
    """Each request's screenshots are byte for byte the trace's PNGs of the window's steps; older screenshots
    are no longer held by the loop."""
    stub = stub_factory([Reply(chunks=[delta_chunk({"role": "assistant", "content": WAIT}), delta_chunk({}, "stop")])])
    engine = RemoteEngine(stub.url, model_name="stub", provider="generic", backoff_s=0.01)
    _, executor = sim()
    agent = Agent(engine, executor, AgentConfig(max_steps=6, history_images=2, loop_limit=10), trace_root=tmp_path)
    result = agent.run("wait a while")
    assert result.status == "max_steps" and result.steps == 6
    trace = read_trace(result.trace_dir)
    requests = [r["json"] for r in stub.requests if r["path"].endswith("/chat/completions")]
    assert len(requests) == 6
    for n, body in enumerate(requests, start=1):
        urls = [p["image_url"]["url"] for m in body["messages"] if isinstance(m["content"], list)
                for p in m["content"] if p.get("type") == "image_url"]
        sent = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
        assert sent == [trace.image_path(s).read_bytes() for s in range(max(1, n - 1), n + 1)]
    assert [m.image is None for m in agent._memory] == [True] * 5 + [False]


def test_the_settle_detectors_captures_are_timed_apart_from_its_waiting(tmp_path):
    _, executor = sim()
    engine = ScriptedEngine([WAIT], repeat_last=True)
    result = Agent(engine, executor, AgentConfig(max_steps=2, loop_limit=10), trace_root=tmp_path).run("wait")
    for step in read_trace(result.trace_dir).steps:
        timings = step["timings"]
        # the sim's waiting is virtual (settle, executor clock); its captures and comparisons take wall time
        assert timings["settle"] >= 0.1 and 0 < timings["settle_capture"] < timings["total"]


def test_wait_image_returns_once_the_screenshot_is_in_place(tmp_path):
    writer = TraceWriter(tmp_path, {"task": "t"}, run_id="r", background=True)
    image = _noise(640, 400, seed=4)
    name = writer.save_image("step_001.png", image)
    writer.wait_image(name)
    assert (tmp_path / "r" / name).read_bytes() == image_codec.encode_png(image)
    writer.finish("success", "", 1, None)


def test_the_writer_takes_a_queued_screenshot_before_a_meta_rewrite_asked_earlier(tmp_path):
    """The model call waits for the next screenshot; meta.json's step count may follow behind it. Images and
    lines keep their order, meta snapshots theirs (the last one is what stays on disk)."""
    import json
    import threading

    writer = TraceWriter(tmp_path, {"task": "t"}, run_id="r", background=True)
    done: list[str] = []
    gate = threading.Event()
    write_image, write_line, write_meta = writer._write_image, writer._write_line, writer._write_meta_data

    def image(name, img):
        if name == "step_000.png":
            gate.wait(10)  # hold the writer while the rest is queued behind it
        write_image(name, img)
        done.append(name)

    def line(text):
        write_line(text)
        done.append(f"line {json.loads(text)['step']}")

    def meta(data):
        write_meta(data)
        done.append(f"meta {data['steps']}")

    writer._write_image, writer._write_line, writer._write_meta_data = image, line, meta
    writer.save_image("step_000.png", _noise(seed=1))
    writer.update_meta(steps=1)
    writer.save_image("step_001.png", _noise(seed=2))
    writer.append({"type": "step", "step": 1, "screenshot": "step_001.png"})
    writer.update_meta(steps=2)
    writer.save_image("step_002.png", _noise(seed=3))
    gate.set()
    writer.flush()
    assert done == ["step_000.png", "step_001.png", "line 1", "step_002.png", "meta 1", "meta 2"]
    assert json.loads((tmp_path / "r" / "meta.json").read_text())["steps"] == 2
    writer._write_image, writer._write_line, writer._write_meta_data = write_image, write_line, write_meta
    writer.finish("success", "", 2, None)
    assert read_trace(tmp_path / "r").meta["steps"] == 2


def test_a_failed_background_write_stops_later_lines_and_is_raised(tmp_path):
    writer = TraceWriter(tmp_path, {"task": "t"}, run_id="r", background=True)
    writer.save_image("step_001.png", _noise())
    writer.append({"type": "step", "step": 1, "screenshot": "step_001.png"})
    writer.save_image("step_002.png", Image.new("CMYK", (8, 8)))  # PNG cannot hold CMYK: the save fails
    with pytest.raises(TraceError, match="step_002.png"):
        writer.wait_image("step_002.png")  # what the agent calls before the model call
    try:
        writer.append({"type": "step", "step": 2, "screenshot": "step_002.png"})
    except TraceError:
        pass  # the failure may already be known here
    with pytest.raises(TraceError, match="step_002.png"):
        writer.flush()
    with pytest.raises(TraceError):
        writer.append({"type": "control", "control": "stop"})
    trace = read_trace(tmp_path / "r")
    assert [s["step"] for s in trace.steps] == [1]  # no line names a screenshot that is not on disk
    assert not (tmp_path / "r" / "step_002.png").exists()


BACKGROUND_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from PIL import Image
    from visagent.core.trace import TraceWriter
    w = TraceWriter(sys.argv[1], {"task": "kill me"}, run_id="victim", background=True)
    rng = np.random.default_rng(0)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        img = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))  # ~230 KB of PNG each
        name = w.save_image(f"step_{n:03d}.png", img)
        w.append({"type": "step", "step": n, "screenshot": name})
        w.update_meta(steps=n)
""")


def test_kill_9_during_background_writes_leaves_every_step_line_with_its_whole_screenshot(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", BACKGROUND_WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        records = tmp_path / "victim" / "trace.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # let it write some steps, whatever the machine's speed
            if records.exists() and records.read_bytes().count(b"\n") >= 6:
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    trace = read_trace(tmp_path / "victim")
    assert trace.status == "running" and trace.finished is None
    steps = [s["step"] for s in trace.steps]
    assert len(steps) >= 6 and steps == list(range(1, len(steps) + 1))
    for n in steps:  # every line's screenshot is whole: it decodes to the full size
        assert trace.image(n).size == (320, 240)
    assert not trace.problems or all("incomplete last line" in p for p in trace.problems)
    assert 0 <= trace.meta["steps"] <= len(steps)  # meta.json follows the lines, never ahead of them


def test_a_settled_action_reports_its_settle_captures(tmp_path, monkeypatch):
    """The screen seam settles the Android executor (over the fake adb) with its own parameters after execute();
    the detector's own cost comes back apart from the waiting, for the agent's timings.settle_capture."""
    from tests.fixtures.fake_adb import use_fake_adb
    from visagent.core.actions import Action
    from visagent.screen.android import AndroidExecutor
    from visagent.screen.seam import Screen
    from visagent.screen.settle import SettleDetector

    use_fake_adb(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_ADB_SCENARIO", "phone-settings-bluetooth-on")
    screen = Screen(AndroidExecutor(settle=SettleDetector(consecutive=1, interval_s=0.01, max_wait_s=2.0)))
    try:
        result = screen.act(Action("click", coordinate=(540, 1200), space="screen"))
    finally:
        screen.close()
    assert result.ok and result.observation is not None
    assert result.settle_capture_s > 0
    assert "settle_capture_s" not in result.to_dict()  # the trace's `result` is unchanged


def _settle_runs(scenario_id: str, scale: float, use_same_frame: bool, monkeypatch) -> tuple[list, int]:
    """Settle after each of a fixed series of actions on a fresh sim world: (every wait's outcome, thumbnails)."""
    from visagent.screen import settle
    from visagent.core.actions import Action
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import get_scenario

    made = []
    real = settle.thumbnail
    monkeypatch.setattr(settle, "thumbnail", lambda im, d: made.append(1) or real(im, d))
    ex = SimExecutor(get_scenario(scenario_id).make_world(seed=3), scale=scale)
    w, h = ex.world.size
    points = [(w * fx, h * fy) for fx, fy in ((0.5, 0.97), (0.1, 0.1), (0.3, 0.5), (0.5, 0.97), (0.02, 0.97),
                                               (0.6, 0.3), (0.9, 0.05), (0.5, 0.5))]
    actions = [Action("left_click", coordinate=p) for p in points] + [Action("key", keys=["esc"]),
                                                                        Action("wait", time=0.2)]
    out = []
    for action in actions:
        before = ex.screenshot().image
        res = ex.execute(action)
        got = settle.SettleDetector().wait(lambda: ex.screenshot().image, ex.now, ex.sleep, before=before,
                                           same_frame=ex.same_frame if use_same_frame else None)
        out.append((res.changed, got.settle_s, got.changed, got.frames, got.timed_out, got.last_diff,
                    got.final_image.tobytes()))
    return out, len(made)


@pytest.mark.parametrize("scenario_id,scale", [("desktop-settings-wifi-off", 1.0), ("desktop-contacts-add", 1.5),
                                               ("phone-contacts-add", 1.0)])
def test_the_sims_same_frame_hint_leaves_every_settle_decision_as_it_was(scenario_id, scale, monkeypatch):
    plain, thumbs_plain = _settle_runs(scenario_id, scale, False, monkeypatch)
    hinted, thumbs_hinted = _settle_runs(scenario_id, scale, True, monkeypatch)
    assert hinted == plain  # frames, waits, changed, last difference and the final pixels, action by action
    assert any(r[0] for r in plain) and any(not r[0] for r in plain)  # actions that changed the screen, and not
    assert any(r[3] > 3 for r in plain)  # and waits through moving frames (an animation), not only still ones
    assert thumbs_hinted < thumbs_plain  # and it did save work


def test_same_frame_is_true_only_for_copies_of_one_rendered_frame():
    from visagent.core.actions import Action
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import get_scenario

    ex = SimExecutor(get_scenario("desktop-settings-wifi-off").make_world(seed=1))
    a, b = ex.screenshot().image, ex.screenshot().image
    assert a is not b and ex.same_frame(a, b) and a.tobytes() == b.tobytes()
    assert not ex.same_frame(a, a.copy())  # a copy made elsewhere is unknown: "compare them"
    assert not ex.same_frame(_noise(), _noise())
    w, h = ex.world.size
    res = ex.execute(Action("left_click", coordinate=(w * 0.5, h * 0.97)))
    c = ex.screenshot().image
    assert res.changed == (a.tobytes() != c.tobytes())
    assert res.changed and not ex.same_frame(a, c)
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None  # the executor keeps nothing per screenshot
    drawn = ex.screenshot().image
    drawn.putpixel((0, 0), (1, 2, 3))
    assert not ex.same_frame(drawn, ex.screenshot().image)  # a drawn-on screenshot has pixels of its own


def test_images_differ_sees_any_pixel_in_any_mode():
    from visagent.screen.settle import images_differ

    base = Image.new("RGBA", (5, 4), (10, 20, 30, 255))
    other = base.copy()
    other.putpixel((4, 3), (11, 20, 30, 255))  # only a color channel differs (a diff image's bbox missed this)
    assert images_differ(base, other) and not images_differ(base, base.copy()) and not images_differ(base, base)
    assert images_differ(base.convert("RGB"), Image.new("RGB", (5, 5), (10, 20, 30)))
    assert not images_differ(base.convert("RGB"), base)  # modes differ, pixels the same
    # compared a block of rows at a time: a difference in any block, the first and the last included
    big = _noise(1280, 800, 9)
    assert not images_differ(big, big.copy())
    for xy in ((0, 0), (640, 400), (1279, 799), (3, 797)):
        other = big.copy()
        other.putpixel(xy, tuple(255 - v for v in big.getpixel(xy)))
        assert images_differ(big, other) and images_differ(other, big)


def test_scaled_sim_screenshots_are_the_resize_of_the_current_frame_at_every_capture():
    from visagent.core.actions import Action
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import get_scenario

    ex = SimExecutor(get_scenario("desktop-contacts-add").make_world(seed=3), scale=1.5)
    w, h = ex.world.size
    g = ex.geometry()
    resizes = []
    for point in ((0.5, 0.97), (0.1, 0.1), (0.3, 0.5), (0.9, 0.05), (0.5, 0.5)):
        ex.execute(Action("left_click", coordinate=(w * point[0], h * point[1])))
        for _ in range(6):  # through the animation the click started, and after it
            shot = ex.screenshot().image
            fresh = ex.world.render().resize((g.physical_width, g.physical_height), Image.Resampling.BILINEAR)
            assert shot.tobytes() == fresh.tobytes()
            resizes.append(ex._scaled)
            ex.sleep(0.05)
    assert len({id(s) for s in resizes}) > 1  # the screen did change under the captures


@pytest.mark.parametrize("scale", [1.5, 1.25, 2.0])
def test_hidpi_sim_screenshots_resize_only_what_changed_and_match_a_whole_resize(scale):
    """The sim executor re-resizes only the changed box of a new frame; every screenshot must still equal the
    whole frame resized at once (byte for byte), whatever changed: a widget, a popup, the whole screen."""
    from visagent.core import actions as A
    from visagent.core.actions import Action
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.oracle import solve
    from visagent.sim.scenarios import get_scenario

    scenario = get_scenario("desktop-settings-dark-mode")
    ex = SimExecutor(scenario.make_world(3), scale=scale)
    g = ex.geometry()
    partial = {"n": 0}
    real_resize = Image.Image.resize

    def counting(self, size, *args, **kwargs):  # count the boxed resizes: the cheap path must really be taken
        if kwargs.get("box") is not None:
            partial["n"] += 1
        return real_resize(self, size, *args, **kwargs)

    plan = solve(scenario, scenario.make_world(3)) + [Action(A.MOUSE_MOVE, coordinate=(5, 5))]
    Image.Image.resize = counting
    try:
        shots = [ex.screenshot()]
        for action in plan:
            if action.action in (A.TERMINATE, A.ANSWER):
                continue
            ex.execute(action)
            shots.append(ex.screenshot())
            whole = real_resize(ex.world.render(), (g.physical_width, g.physical_height), Image.Resampling.BILINEAR)
            assert shots[-1].image.tobytes() == whole.tobytes(), action.summary()
    finally:
        Image.Image.resize = real_resize
    assert partial["n"] >= 1  # at least one step changed only part of the screen
    assert shots[0].image.tobytes() != shots[-1].image.tobytes()  # and the screen did change over the run


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_sim_screenshots_share_the_frame_read_only_and_drawing_on_one_touches_nothing_else(scale):
    """Screenshots are read-only views of the rendered frame (no copy per capture); whoever draws on one gets
    its own pixels first (Pillow's copy-on-write), so the world, other screenshots and later ones stay exact."""
    from PIL import ImageDraw

    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import get_scenario

    ex = SimExecutor(get_scenario("desktop-settings-wifi-off").make_world(seed=1), scale=scale)
    a, b = ex.screenshot().image, ex.screenshot().image
    assert a is not b and a.im is b.im  # one frame's pixels, not a copy each
    frame, shot = ex.world.render().tobytes(), a.tobytes()
    ImageDraw.Draw(a).rectangle((0, 0, 40, 40), fill=(255, 0, 0))
    b.paste((0, 255, 0), (10, 10, 30, 30))
    c = ex.screenshot().image
    c.putpixel((1, 1), (1, 2, 3))
    assert a.getpixel((5, 5)) == (255, 0, 0) and b.getpixel((15, 15)) == (0, 255, 0) and c.getpixel((1, 1)) == (1, 2, 3)
    assert ex.world.render().tobytes() == frame  # the world's frame is as rendered
    assert ex.screenshot().image.tobytes() == shot  # and so is the next screenshot
    assert a.im is not b.im  # each drawn-on screenshot got pixels of its own


def test_the_png_encoders_reused_buffers_never_mix_images_of_other_sizes_modes_or_threads():
    import threading

    images = [_noise(61, 47, 1), _noise(61, 47, 2).convert("L"), _noise(3, 200, 3), _noise(61, 47, 4).convert("RGBA"),
              _noise(640, 400, 5)]
    for image in images * 2:  # in turns, so each call finds the buffers the previous one left
        assert _pixels(image_codec.encode_png(image)) == (image.mode, image.tobytes())
    seen: dict[int, list] = {}

    def encode(k: int) -> None:
        seen[k] = [_pixels(image_codec.encode_png(images[(k + i) % len(images)])) for i in range(20)]

    threads = [threading.Thread(target=encode, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, got in seen.items():
        assert got == [(im.mode, im.tobytes()) for im in (images[(k + i) % len(images)] for i in range(20))]


def test_the_png_encoder_gives_the_same_bytes_when_pillows_raw_packer_is_unavailable(monkeypatch):
    image = _noise(200, 120, 7)
    fast = image_codec.encode_png(image)

    def changed(*args, **kwargs):
        raise TypeError("a Pillow whose raw encoder takes other arguments")

    monkeypatch.setattr(image_codec, "_raw_encoder", changed)
    assert image_codec.encode_png(image) == fast
