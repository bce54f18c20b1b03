"""Models answering in pixels of the resized image (Qwen2.5-VL, UI-TARS-1.5) behind an OpenAI-compatible server.

The fake server resizes each screenshot as vLLM's processor for such a checkpoint does — transformers' own
Qwen2-VL `smart_resize` with the checkpoint's budget (min_pixels 3136, max_pixels 12845056, factor 28, as in
Qwen2.5-VL-7B-Instruct's preprocessor_config.json), bicubic — then "sees" the red element and answers its centre
in pixels of the image it saw. visagent sends screenshots already smart-resized with its own budget, so the
server's resize is the identity and the answer converts back onto the element's centre on the screen."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from engine.api import smart_resize
from engine.remote import RemoteEngine
from tests.fixtures.openai_stub import OpenAIStub, Reply, chat_body, delta_chunk
from visagent.core import actions as A
from visagent.loop.agent import Agent, AgentConfig
from visagent.screen.base import ExecResult, Observation, ScreenGeometry

CHECKPOINT = {"factor": 28, "min_pixels": 3136, "max_pixels": 12845056}  # Qwen2.5-VL-7B / UI-TARS-1.5-7B
RED = (220, 30, 30)


class Picture:
    """A still screen holding one red element; remembers the actions it executed."""

    platform = "desktop"
    name = "picture"

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width, height), (235, 235, 235))
        side = max(8, width // 80)
        self.centre = (round(width * 0.73), round(height * 0.41))
        cx, cy = self.centre
        ImageDraw.Draw(self.image).rectangle((cx - side, cy - side, cx + side, cy + side), fill=RED)
        self.executed: list[A.Action] = []

    def geometry(self) -> ScreenGeometry:
        return ScreenGeometry.simple(*self.image.size)

    def screenshot(self) -> Observation:
        return Observation(self.image.copy(), self.geometry())

    def execute(self, action: A.Action) -> ExecResult:
        self.executed.append(action)
        return ExecResult(ok=True, message=action.summary())

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        pass


class ResizingServer:
    """Answers like a pixel-coordinate model behind vLLM: resizes the last screenshot with the checkpoint's budget,
    finds the red element and clicks its centre in the resized image's pixels; then terminates."""

    def __init__(self, style: str) -> None:
        self.style = style
        self.seen: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (received size, size the model saw)
        self.stub = OpenAIStub(self._answer)

    def _answer(self, record) -> Reply:
        body = record["json"]
        urls = [p["image_url"]["url"] for m in body["messages"] if isinstance(m.get("content"), list)
                for p in m["content"] if p.get("type") == "image_url"]
        with Image.open(io.BytesIO(base64.b64decode(urls[-1].split(",", 1)[1]))) as img:
            received = img.convert("RGB")
        h, w = hf_smart_resize(received.height, received.width, **CHECKPOINT)
        seen = received if (w, h) == received.size else received.resize((w, h), Image.Resampling.BICUBIC)
        self.seen.append((received.size, seen.size))
        point = None
        if len(self.seen) == 1:
            px = np.asarray(seen).astype(int)
            ys, xs = np.nonzero((px[..., 0] > 150) & (px[..., 1] < 90) & (px[..., 2] < 90))
            point = (round(float(xs.mean())), round(float(ys.mean())))
        answer = self._reply("left_click" if point else "terminate", point)
        if not body.get("stream"):
            return Reply(body=answer)
        message = answer["choices"][0]["message"]  # the same answer as one SSE delta, then the finish chunk
        delta = {"role": "assistant", "content": message["content"] or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
        return Reply(chunks=[delta_chunk(delta), delta_chunk({}, answer["choices"][0]["finish_reason"])])

    def _reply(self, action: str, point: tuple[int, int] | None) -> dict:
        if self.style == "uitars":  # UI-TARS-1.5 writes text: Thought, then Action
            act = "finished(content='done')" if point is None else f"click(start_box='({point[0]},{point[1]})')"
            return chat_body(f"Thought: the red box.\nAction: {act}")
        args = {"action": action, **({"coordinate": list(point)} if point else {"status": "success"})}
        calls = [{"id": "call_1", "type": "function",
                  "function": {"name": "computer_use", "arguments": json.dumps(args)}}]
        return chat_body(None, tool_calls=calls, finish="tool_calls")  # hermes parser on Qwen2.5-VL


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080), (3840, 2160)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("style,model", [("qwen25", "Qwen/Qwen2.5-VL-7B-Instruct"),
                                         ("uitars", "ByteDance-Seed/UI-TARS-1.5-7B")])
def test_clicks_land_on_the_element_centre(tmp_path, size, style, model):
    server = ResizingServer(style)
    try:
        engine = RemoteEngine(server.stub.url, model_name=model, backoff_s=0.01)
        assert engine.info.coord_space == "resized"
        screen = Picture(*size)
        result = Agent(engine, screen, AgentConfig(settle=False), trace_root=tmp_path).run("Click the red box")
    finally:
        server.stub.close()
    assert result.status == "success", result.reason
    ours = smart_resize(*size, engine.info.vision)
    # the server received exactly the size visagent converts from, and its own resize left it as it was
    assert server.seen[0] == (ours, ours)
    click = next(a for a in screen.executed if a.action == A.LEFT_CLICK)
    step = size[0] / ours[0]  # screen pixels per resized pixel: the model's answer is whole resized pixels
    assert abs(click.coordinate[0] - screen.centre[0]) <= step and abs(click.coordinate[1] - screen.centre[1]) <= step


def test_full_size_screenshots_would_land_off_target():
    """Why: sent full size, a 1920x1080 screenshot is seen at 1932x1092 by the server but converted from the
    2,560-token size visagent's budget gives; a centre answered there lands tens of pixels off."""
    h, w = hf_smart_resize(1080, 1920, **CHECKPOINT)
    from engine.preprocess import QWEN25_VL_VISION

    ours = smart_resize(1920, 1080, QWEN25_VL_VISION)
    assert (w, h) != ours
    x_seen = 0.73 * w  # the element's centre as the server's model sees it
    landed = x_seen * 1920 / ours[0]
    assert abs(landed - 0.73 * 1920) > 30
