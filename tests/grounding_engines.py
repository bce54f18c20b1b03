"""Scripted grounding test engines (not models): they read the instruction and screenshot from the request and
answer a point chosen by a rule, written as a real model would (Qwen3.5 XML tool call in the engine's space)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from engine.api import EngineInfo, GenerationConfig, GenerationResult, VisionSpec, smart_resize
from engine.errors import EngineError

Box = tuple[float, float, float, float]


def image_key(image) -> str:
    """A content hash of a PIL image (RGB), to find which annotated screenshot a request carries."""
    return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


def request_parts(messages: Sequence[dict[str, Any]]):
    """(image, instruction text) of the user turn of a grounding request."""
    for msg in messages:
        if msg["role"] == "user" and isinstance(msg["content"], list):
            image = next(p["image"] for p in msg["content"] if p["type"] == "image")
            text = next(p["text"] for p in msg["content"] if p["type"] == "text")
            return image, text
    raise AssertionError("no user turn with an image in the request")


class ScriptedGroundingEngine:
    """A scripted test engine: `pick(image, instruction) -> (x, y) image pixels | str` chooses the answer; a point
    is written as a left_click / click tool call in this engine's coordinate space, a string is answered as is.
    `calls` records (messages, tools) of each request; generation is serialised like a real local engine."""

    def __init__(self, pick: Callable[[Any, str], tuple[float, float] | str], *, coord_space: str = "norm1000",
                 fail_on: str | None = None) -> None:
        self.pick = pick
        self.fail_on = fail_on
        self.info = EngineInfo(spec="scripted-grounding", model_type="scripted", coord_space=coord_space,  # type: ignore[arg-type]
                               vision=VisionSpec())
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def generate(self, messages, *, tools=None, config: GenerationConfig = GenerationConfig(), on_delta=None,
                 cancel=None, session_id=None) -> GenerationResult:
        with self._lock:
            self.calls.append({"messages": list(messages), "tools": tools})
        image, text = request_parts(messages)
        if self.fail_on is not None and self.fail_on in text:
            raise EngineError("scripted failure: the server went away")
        answer = self.pick(image, text)
        if not isinstance(answer, str):
            w, h = image.size
            if self.info.coord_space == "norm1000":
                mx, my = round(answer[0] * 1000 / w), round(answer[1] * 1000 / h)
            else:
                rw, rh = smart_resize(w, h, self.info.vision)
                mx, my = round(answer[0] * rw / w), round(answer[1] * rh / h)
            tool = tools[0]["function"]["name"] if tools else "computer_use"
            action = "click" if tool == "mobile_use" else "left_click"
            answer = (f"<tool_call>\n<function={tool}>\n<parameter=action>\n{action}\n</parameter>\n"
                      f"<parameter=coordinate>\n[{mx}, {my}]\n</parameter>\n</function>\n</tool_call>")
        return GenerationResult(text=answer, thinking="", answer=answer, finish_reason="stop",
                                timings={"total": 0.0})

    def close(self) -> None:
        pass


def boxes_by_screen(items, images_dir) -> dict[tuple[str, str], Box]:
    """{(image hash, instruction): box} for annotation items whose images lie under `images_dir`."""
    from PIL import Image

    keys: dict[str, str] = {}
    out: dict[tuple[str, str], Box] = {}
    for item in items:
        if item.img_filename not in keys:
            with Image.open(images_dir / item.img_filename) as img:
                keys[item.img_filename] = image_key(img)
        out[(keys[item.img_filename], item.instruction)] = item.bbox
    return out


def centre_picker(boxes: dict[tuple[str, str], Box]):
    """A pick rule answering the centre of the annotated box."""
    def pick(image, instruction):
        x1, y1, x2, y2 = boxes[(image_key(image), instruction)]
        return ((x1 + x2) / 2, (y1 + y2) / 2)
    return pick


def outside_picker(boxes: dict[tuple[str, str], Box]):
    """A pick rule answering a point of the image that lies in no annotated box of that screenshot."""
    def pick(image, instruction):
        key = image_key(image)
        screen = [b for (k, _), b in boxes.items() if k == key]
        w, h = image.size
        for gy in range(1, 40):
            for gx in range(1, 40):
                x, y = gx * w / 40, gy * h / 40
                if not any(b[0] - 2 <= x <= b[2] + 2 and b[1] - 2 <= y <= b[3] + 2 for b in screen):
                    return (x, y)
        raise AssertionError("no free point on the screenshot")
    return pick
