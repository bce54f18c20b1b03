"""The pointing head (engine/pointer.py, visagent/loop/pointing.py): a checkpoint that carries
`pointer_head.safetensors` reports where its flag points on the prompt's last screenshot — read from the very
hidden states a full forward computes, chunked or not, in a session or not — and the agent loop and single-step
grounding click there when told to (the written point kept in the trace); a broken head file is one clear error.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from engine.api import GenerationConfig, GenerationResult, Pointer
from engine.errors import CheckpointError
from engine.pointer import POINTER_FILE, FlagHead, last_image_positions, save_pointer_head, token_centres
from tests.agent_helpers import DONE, sim, xml
from visagent.loop.agent import Agent, AgentConfig
from visagent.core.errors import ConfigError
from visagent.loop.pointing import head_point, uses_head, with_head_point
from visagent.core.actions import Action
from visagent.loop.scripted import ScriptedEngine
from visagent.core.trace import read_trace

TINY = Path(__file__).resolve().parent.parent / "engine" / "tiny"
GREEDY = GenerationConfig(max_new_tokens=4)


@pytest.fixture(scope="module")
def pointing_tiny(tmp_path_factory) -> Path:
    """The shipped tiny checkpoint plus a random (seeded) flag head."""
    out = tmp_path_factory.mktemp("pointing") / "tiny"
    shutil.copytree(TINY, out)
    torch.manual_seed(3)
    head = FlagHead(128)
    torch.nn.init.normal_(head.flag.weight, std=1.0)  # spread scores, so the argmax is not a near-tie
    save_pointer_head(head.state_dict(), out, trained_steps=7)
    return out


@pytest.fixture(scope="module")
def plain_tiny(tmp_path_factory) -> Path:
    """The shipped tiny checkpoint without a pointing head (as every released checkpoint)."""
    out = tmp_path_factory.mktemp("plain") / "tiny"
    shutil.copytree(TINY, out, ignore=shutil.ignore_patterns(POINTER_FILE))
    return out


@pytest.fixture(scope="module")
def engine(pointing_tiny):
    from engine import load_engine

    eng = load_engine(str(pointing_tiny), device="cpu")
    yield eng
    eng.close()


def _screen(seed: int) -> Image.Image:
    img = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(img)
    for i in range(6):
        x, y = (seed * 97 + i * 131) % 560, (seed * 53 + i * 71) % 340
        draw.rectangle([x, y, x + 60, y + 40], fill=("red", "blue", "green")[i % 3])
        draw.text((x + 5, y + 12), f"B{i}", fill="black")
    return img


def _messages(*images: Image.Image, text: str = "open B3") -> list[dict]:
    content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def _expected(engine, messages) -> Pointer:
    """The pointer computed by hand: one full forward, the last hidden states of the last image, the head."""
    prompt = engine.prepare(messages)
    with torch.inference_mode():
        out = engine.model(input_ids=prompt.input_ids, position_ids=prompt.position_ids,
                           mm_token_type_ids=prompt.mm_token_type_ids, pixel_values=prompt.pixel_values,
                           image_grid_thw=prompt.image_grid_thw, output_hidden_states=True)
        visual = last_image_positions(prompt.mm_token_type_ids)
        probs = torch.softmax(engine.pointer_head(out.hidden_states[-1][0, visual]), dim=-1)
    best = int(probs.argmax())
    x, y = token_centres(prompt.position_ids, visual)[best].tolist()
    return Pointer(x=x, y=y, score=float(probs[best]), tokens=len(visual))


def _close(a: Pointer, b: Pointer) -> bool:
    return (a.x, a.y, a.tokens) == (b.x, b.y, b.tokens) and abs(a.score - b.score) < 1e-4


def test_a_checkpoint_with_a_head_points_where_a_full_forward_says(engine):
    assert engine.info.points
    for seed in range(3):
        messages = _messages(_screen(seed))
        result = engine.generate(messages, config=GREEDY)
        assert result.pointer is not None and _close(result.pointer, _expected(engine, messages))
        assert 0 < result.pointer.x < 1 and 0 < result.pointer.y < 1
        assert result.pointer.tokens == result.visual_tokens  # one image: all its tokens were scored
    # different screens, different answers: the head reads the pixels, it is not a constant
    points = {(r.x, r.y) for r in (engine.generate(_messages(_screen(s)), config=GREEDY).pointer for s in range(6))}
    assert len(points) > 1


def test_the_pointer_is_about_the_last_screenshot_whatever_the_chunking_or_session(engine):
    messages = _messages(_screen(1), _screen(2))
    want = _expected(engine, messages)
    assert want.tokens * 2 == engine.generate(messages, config=GREEDY).visual_tokens
    assert _close(engine.generate(messages, config=GREEDY).pointer, want)
    chunk = engine.prefill_chunk
    engine.prefill_chunk = 16  # every image its own forward, text split around them
    try:
        assert _close(engine.generate(messages, config=GREEDY).pointer, want)
    finally:
        engine.prefill_chunk = chunk
    first = engine.generate(messages, config=GREEDY, session_id="pointer-test")
    assert _close(first.pointer, want)
    # the same prompt again: the cache holds the screenshot, nothing re-reads it, so there is no pointer
    again = engine.generate(messages, config=GREEDY, session_id="pointer-test")
    assert again.cached_tokens > 0 and again.pointer is None
    engine.sessions.drop("pointer-test")


def test_a_checkpoint_without_a_head_has_no_pointer(plain_tiny):
    from engine import load_engine

    eng = load_engine(str(plain_tiny), device="cpu")
    try:
        assert not eng.info.points
        assert eng.generate(_messages(_screen(0)), config=GREEDY).pointer is None
    finally:
        eng.close()


def test_a_broken_or_foreign_head_file_is_one_clear_error(pointing_tiny, tmp_path):
    from engine import load_engine

    broken = tmp_path / "broken"
    shutil.copytree(pointing_tiny, broken)
    (broken / POINTER_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=rf"cannot read .*{POINTER_FILE}.*delete it") as exc:
        load_engine(str(broken), device="cpu")
    assert "\n" not in str(exc.value)
    foreign = tmp_path / "foreign"
    shutil.copytree(pointing_tiny, foreign)
    save_pointer_head(FlagHead(64).state_dict(), foreign, trained_steps=1)
    with pytest.raises(CheckpointError, match=r"does not fit this model \(hidden size 128\)") as exc:
        load_engine(str(foreign), device="cpu")
    assert "\n" not in str(exc.value)


def test_the_point_source_rule():
    class Info:
        spec, points = "x", True

    class NoHead:
        spec, points = "plain", False

    assert uses_head(Info, "auto") and uses_head(Info, "head") and not uses_head(Info, "text")
    assert not uses_head(NoHead, "auto") and not uses_head(NoHead, "text")
    with pytest.raises(ConfigError, match="plain has no pointing head"):
        uses_head(NoHead, "head")
    with pytest.raises(ConfigError, match="unknown point source"):
        uses_head(Info, "eyes")
    pointer = Pointer(x=0.25, y=0.5, score=0.9, tokens=200)
    assert head_point(pointer, "norm1000", (1000, 1000)) == (250.0, 500.0)
    assert head_point(pointer, "resized", (640, 384)) == (160.0, 192.0)
    click = Action("left_click", coordinate=(10, 20), space="norm1000")
    assert with_head_point(click, pointer, "norm1000", (1000, 1000)).coordinate == (250.0, 500.0)
    drag = Action("left_click_drag", coordinate=(10, 20), coordinate2=(30, 40), space="norm1000")
    assert with_head_point(drag, pointer, "norm1000", (1000, 1000)) is None  # two points: the text's stay
    assert with_head_point(Action("type", text="hi"), pointer, "norm1000", (1000, 1000)) is None
    assert with_head_point(click, None, "norm1000", (1000, 1000)) is None


class PointingScripted(ScriptedEngine):
    """A scripted model (a fake: fixed answers) whose results carry a fixed pointer, as a head would give."""

    def __init__(self, outputs, pointer: Pointer) -> None:
        super().__init__(outputs)
        self.info = dataclasses.replace(self.info, points=True)
        self._pointer = pointer

    def generate(self, *args, **kwargs) -> GenerationResult:
        result = super().generate(*args, **kwargs)
        result.pointer = self._pointer
        return result


@pytest.mark.parametrize("point_from", ["auto", "text"])
def test_the_agent_clicks_where_the_head_points_and_keeps_the_written_point(tmp_path, point_from):
    pointer = Pointer(x=0.25, y=0.75, score=0.5, tokens=250)
    _, executor = sim()
    width, height = executor.world.size
    engine = PointingScripted([xml("left_click", coordinate=(900, 100)), DONE], pointer)
    parsed = []
    result = Agent(engine, executor, AgentConfig(max_steps=2, point_from=point_from), trace_root=tmp_path,
                   on_event=lambda e: parsed.append(e) if type(e).__name__ == "ActionParsed" else None
                   ).run("Open the thing.")
    line = parsed[0].log_lines()[0]  # what `visagent run` and the dashboard's log print
    clicked = executor.executed[0]
    step = [r for r in read_trace(result.trace_dir).records if r.get("type") == "step"][0]
    assert step["model"]["pointer"]["score"] == 0.5
    if point_from == "auto":
        assert clicked.coordinate == (round(0.25 * width), round(0.75 * height))
        assert step["model"]["pointer"]["written"] == [900, 100]
        assert step["actions"][0]["mapping"]["model"] == [250.0, 750.0]
        assert line.endswith("(model norm1000 [250, 750], the pointing head's; written [900, 100])")
        assert parsed[0].to_dict()["written"] == [900, 100]
    else:
        assert clicked.coordinate == (round(0.9 * width), round(0.1 * height))
        assert "written" not in step["model"]["pointer"]
        assert line.endswith("(model norm1000 [900, 100])") and "written" not in parsed[0].to_dict()


def test_asking_for_the_head_of_a_model_without_one_stops_before_the_run(tmp_path):
    _, executor = sim()
    with pytest.raises(ConfigError, match="has no pointing head"):
        Agent(ScriptedEngine([DONE]), executor, AgentConfig(point_from="head"), trace_root=tmp_path)


def test_grounding_reports_the_head_point_and_the_written_one(engine, plain_tiny):
    from visagent.grounding.predict import ground

    image = _screen(4)
    head = ground(engine, image, "the B3 button")
    text = ground(engine, image, "the B3 button", point_from="text")
    assert head.action is not None and head.action.action == "left_click"  # the shipped tiny answers clicks
    assert head.point_source == "head" and head.pointer is not None
    assert head.point == pytest.approx((head.pointer["x"] * 640, head.pointer["y"] * 400), abs=0.5)
    assert head.written == pytest.approx(text.point) and text.point_source == "text"
    with pytest.raises(ConfigError, match="has no pointing head"):
        from engine import load_engine

        plain = load_engine(str(plain_tiny), device="cpu")
        try:
            ground(plain, image, "the B3 button", point_from="head")
        finally:
            plain.close()


def test_grounding_eval_scores_the_head_and_says_what_the_written_points_alone_score(engine, tmp_path):
    from visagent.grounding.data import GroundingItem
    from visagent.grounding.predict import ground
    from visagent.grounding.scoring import evaluate_grounding

    items = []
    for i in range(4):
        _screen(i).save(tmp_path / f"{i}.png")
        pointer = ground(engine, _screen(i), "the B1 button").pointer
        # half the boxes around the head's point (cannot miss), half in the far corner (the head misses them)
        cx, cy = pointer["x"] * 640, pointer["y"] * 400
        box = (cx - 20, cy - 20, cx + 20, cy + 20) if i % 2 == 0 else (0, 0, 1, 1)
        items.append(GroundingItem(id=str(i), file="x.json", row=i, img_filename=f"{i}.png", bbox=box,
                                   instruction="the B1 button", ui_type="button", group="desktop",
                                   platform="linux", application="sim", img_size=(640, 400)))
    head = evaluate_grounding(engine, items, tmp_path)
    text = evaluate_grounding(engine, items, tmp_path, point_from="text")
    assert head.head_items == 4 and text.head_items == 0
    assert head.count("correct") == 2
    assert head.written_only_correct == text.count("correct")
    assert "the written points alone" in head.summary_table()
    assert head.to_dict()["written_only_correct"] == text.count("correct")


def test_the_ground_command_prints_both_points_and_refuses_a_head_the_model_lacks(
        pointing_tiny, plain_tiny, tmp_path, visagent_bin, clean_env):
    import json
    import subprocess

    shot = tmp_path / "shot.png"
    _screen(2).save(shot)
    res = subprocess.run([visagent_bin, "ground", str(shot), "the B3 button", "--model", str(pointing_tiny)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "point from the model's pointing head" in res.stdout and "the written point was" in res.stdout
    res = subprocess.run([visagent_bin, "ground", str(shot), "the B3 button", "--model", str(pointing_tiny),
                          "--point-from", "text", "--json"], capture_output=True, text=True, timeout=300)
    data = json.loads(res.stdout)
    assert data["point_source"] == "text" and data["written"] is None and data["pointer"]["tokens"] > 0
    res = subprocess.run([visagent_bin, "ground", str(shot), "the B3 button", "--model", str(plain_tiny),
                          "--point-from", "head"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "has no pointing head" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_visagent_serve_carries_the_head_and_the_profile_to_a_remote_engine(engine, plain_tiny):
    """Over HTTP (engine/server.py → engine/remote.py) a served pointing checkpoint answers with the same point as
    in process (JSON and streamed), and the client learns its prompt profile and that it points from /v1/models;
    a head-less checkpoint's answers carry no point and its client does not claim one."""
    from engine import load_engine
    from engine.remote import RemoteEngine
    from engine.server import ChatServer

    server = ChatServer(engine, model_name="pointing", port=0).start()
    try:
        remote = RemoteEngine(server.url)
        assert remote.info.points and remote.info.prompt_profile == engine.info.prompt_profile != "full"
        assert remote.info.coord_space == engine.info.coord_space
        assert uses_head(remote.info, "auto")
        messages = _messages(_screen(4))
        local = engine.generate(messages, config=GREEDY)
        plain = remote.generate(messages, config=GREEDY)
        streamed = remote.generate(messages, config=GREEDY, on_delta=lambda d: None)
        assert local.pointer is not None
        for answer in (plain, streamed):
            assert answer.pointer is not None and _close(answer.pointer, Pointer(**local.pointer.to_dict()))
    finally:
        server.shutdown()
    headless = load_engine(str(plain_tiny), device="cpu")
    server = ChatServer(headless, model_name="plain", port=0).start()
    try:
        remote = RemoteEngine(server.url)
        assert not remote.info.points and remote.generate(_messages(_screen(4)), config=GREEDY).pointer is None
    finally:
        server.shutdown()
        headless.close()


def test_a_malformed_pointer_on_the_wire_is_no_pointer():
    from engine.remote_result import pointer_from_wire

    assert pointer_from_wire({"pointer": {"x": 0.5, "y": 0.25, "score": 0.1, "tokens": 9}}) == Pointer(0.5, 0.25, 0.1, 9)
    for bad in (None, "x", {}, {"pointer": {"x": "a", "y": 0}}, {"pointer": {"x": 2.0, "y": 0.5}}, {"pointer": [1]}):
        assert pointer_from_wire(bad) is None
