"""Single-step grounding: one screenshot + one instruction → the point the model names, and a picture of it.

Prompt styles (one per model family; "auto" picks from `engine.info`):

- "qwen3": Qwen3.5 / Qwen3-VL. System turn `prompts/grounding_system.md`, the `computer_use` tool (or
  `mobile_use` on a phone) described on the 0..1000 grid; the model answers a tool call. Space "norm1000".
- "qwen25": Qwen2.5-VL. The same prompt, the tool described in pixels of the smart-resized image. Space "resized".
- "compact": a model trained on visagent's compact agent prompt (the shipped tiny checkpoint; "auto" picks it
  when the checkpoint's visagent.json says so). The agent's own first-step prompt in the compact profile with
  the instruction as the task (`build_messages`), the compact tool; space "norm1000".
- "uitars": UI-TARS-1.5. `prompts/grounding_uitars.md` as the user turn; `Action: click(point=...)` in pixels of
  the smart-resized image. Space "resized". "auto" picks it for a "resized" engine whose spec names UI-TARS.

Points: `point_model` is what the model wrote (its space); `point` is the same position in pixels of the image
given, as a continuous position (norm1000: x * W / 1000; resized: x * W / resized_W), so a box test on image
pixels matches the official ScreenSpot evaluations, which compare the point divided by the model's image size
against the box divided by the image size. Nothing is clamped: a point off the image simply misses every box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from string import Template
from typing import Any

from PIL import Image, ImageDraw

from engine.api import Engine, GenerationConfig, smart_resize
from visagent.core.actions import CLICK, LEFT_CLICK, Action
from visagent.core.errors import ConfigError, ParseError
from visagent.loop.pointing import uses_head, with_head_point
from visagent.loop.prompting import load_prompt
from visagent.core.schemas import COMPACT_PROFILES, tool_for, tool_name_for

PROMPT_STYLES: tuple[str, ...] = ("auto", "qwen3", "qwen25", "uitars", *COMPACT_PROFILES)
PLATFORMS: tuple[str, ...] = ("desktop", "phone")
_STYLE_SPACE = {"qwen3": "norm1000", "qwen25": "resized", "uitars": "resized",
                **{profile: "norm1000" for profile in COMPACT_PROFILES}}
#: A click answer is ~45 tokens in Qwen3.5 XML; room for a short thought before it.
DEFAULT_CONFIG = GenerationConfig(max_new_tokens=128, temperature=0.0)

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass
class GroundingResult:
    """What the model answered for one instruction on one image.

    `point_model`: the point as written, in `space` ("norm1000": 0..1000 grid; "resized": pixels of the
    `model_size` image). `point`: that position in pixels of the image given (floats; may lie off the image).
    Both are None when the output held no point; then `error` says why (a ParseError message: the output
    counts as wrong_format). `action`: the parsed action that carried the point, in model space.
    `raw`: the whole completion; `latency_s`: wall seconds of the engine call.
    """

    instruction: str
    image_size: tuple[int, int]
    space: str
    model_size: tuple[int, int]
    prompt_style: str
    raw: str
    latency_s: float
    point_model: Point | None = None
    point: Point | None = None
    action: Action | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # visagent/loop/pointing.py: "head" when the point is the model's pointing head's (then `written` is the point
    # the text gave, in image pixels), "text" otherwise; `pointer` is the head's answer whenever it had one.
    point_source: str = "text"
    written: Point | None = None
    pointer: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction, "image_size": list(self.image_size), "space": self.space,
            "model_size": list(self.model_size), "prompt_style": self.prompt_style,
            "point_model": None if self.point_model is None else [_num(v) for v in self.point_model],
            "point": None if self.point is None else [round(v, 2) for v in self.point],
            "action": None if self.action is None else self.action.to_dict(),
            "raw": self.raw, "latency_s": round(self.latency_s, 4), "error": self.error,
            "point_source": self.point_source,
            "written": None if self.written is None else [round(v, 2) for v in self.written],
            "pointer": self.pointer,
        }


def resolve_prompt_style(engine: Engine, prompt_style: str = "auto") -> str:
    """The concrete style for `engine` ("qwen3", "qwen25", "uitars" or "compact"). Raises ConfigError for an
    unknown name."""
    if prompt_style not in PROMPT_STYLES:
        raise ConfigError(f"unknown prompt style {prompt_style!r}; expected one of: {', '.join(PROMPT_STYLES)}")
    if prompt_style != "auto":
        return prompt_style
    profile = getattr(engine.info, "prompt_profile", "full")
    if profile in COMPACT_PROFILES:
        return profile
    if engine.info.coord_space == "norm1000":
        return "qwen3"
    spec = engine.info.spec.lower().replace("-", "").replace("_", "")
    return "uitars" if "uitars" in spec else "qwen25"


def grounding_request(
    image: Image.Image, instruction: str, *, style: str, platform: str, model_size: tuple[int, int],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for one grounding call in a concrete `style`; `model_size` is the resized image size
    (used by the tool description of "qwen25"). Raises ConfigError for an unknown style or platform."""
    if platform not in PLATFORMS:
        raise ConfigError(f"unknown platform {platform!r}; expected 'desktop' or 'phone'")
    if style == "uitars":
        text = Template(load_prompt("grounding_uitars")).safe_substitute(instruction=instruction)
        return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}], None
    if style in COMPACT_PROFILES:
        from visagent.loop.prompting import build_messages

        messages = build_messages(instruction, [], image, platform=platform, space="norm1000", profile=style)
        return messages, [tool_for(platform, "norm1000", model_size[0], model_size[1], style)]
    if style not in ("qwen3", "qwen25"):
        raise ConfigError(f"unknown prompt style {style!r}; expected one of: {', '.join(PROMPT_STYLES[1:])}")
    space = _STYLE_SPACE[style]
    tool = tool_for(platform, space, model_size[0], model_size[1])
    system = Template(load_prompt("grounding_system")).safe_substitute(
        tool=tool_name_for(platform), action=CLICK if platform == "phone" else LEFT_CLICK)
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": instruction}]},
    ]
    return messages, [tool]


def ground(
    engine: Engine,
    image: Image.Image,
    instruction: str,
    *,
    platform: str = "desktop",
    config: GenerationConfig | None = None,
    prompt_style: str = "auto",
    point_from: str = "auto",
) -> GroundingResult:
    """Ask `engine` where `instruction` points on `image` (any PIL mode; sent as RGB) and read the point back.

    `platform` "desktop" (computer_use tool) or "phone" (mobile_use). `config` defaults to greedy, 128 new
    tokens. An output without a point is not an error: the result carries `error` and no point.
    `point_from` (visagent/loop/pointing.py): with a head in use, a click's point is the head's (the written one in
    `written`), exactly as the agent loop would click.
    Raises ConfigError for an empty instruction or a bad platform / style / point source (or "head" with an
    engine that has none), EngineError from the engine.
    """
    from visagent.loop.parsing import parse_output

    if not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError("the grounding instruction is empty; say which element to find, e.g. 'the Save button'")
    style = resolve_prompt_style(engine, prompt_style)
    head = uses_head(engine.info, point_from)
    space = _STYLE_SPACE[style]
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    model_size = (1000, 1000) if space == "norm1000" else smart_resize(width, height, engine.info.vision)
    messages, tools = grounding_request(rgb, instruction.strip(), style=style, platform=platform,
                                        model_size=model_size)
    started = time.perf_counter()
    gen = engine.generate(messages, tools=tools, config=config or DEFAULT_CONFIG)
    latency = time.perf_counter() - started
    result = GroundingResult(instruction=instruction.strip(), image_size=(width, height), space=space,
                             model_size=model_size, prompt_style=style, raw=gen.text, latency_s=latency,
                             timings=dict(gen.timings))
    pointer = getattr(gen, "pointer", None)
    if pointer is not None:
        result.pointer = pointer.to_dict()
    try:
        parsed = parse_output(gen.text, space=space, tool_calls=gen.tool_calls, platform=platform)
    except ParseError as exc:
        result.error = str(exc)
        return result
    action = next((a for a in parsed.actions if a.coordinate is not None), None)
    if action is None:
        result.error = ("the answer holds no point: " + "; ".join(a.summary() for a in parsed.actions)
                        + " (expected a click with a coordinate)")
        return result
    moved = with_head_point(action, pointer, space, model_size) if head else None
    if moved is not None:
        result.written = model_to_image(tuple(float(v) for v in action.coordinate), model_size, (width, height))  # type: ignore[arg-type, union-attr]
        result.point_source = "head"
        action = moved
    x, y = action.coordinate  # type: ignore[misc]
    result.action = action
    result.point_model = (float(x), float(y))
    result.point = model_to_image(result.point_model, model_size, (width, height))
    return result


def model_to_image(point: Point, model_size: tuple[int, int], image_size: tuple[int, int]) -> Point:
    """A position in the model's space (grid 0..model_w) → the same position in image pixels (floats)."""
    return (point[0] * image_size[0] / model_size[0], point[1] * image_size[1] / model_size[1])


def point_in_box(point: Point, box: Box) -> bool:
    """Whether `point` lies inside `box` = (x1, y1, x2, y2), edges included (the ScreenSpot rule)."""
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def annotate(image: Image.Image, result: GroundingResult | None, box: Box | None = None) -> Image.Image:
    """A copy of `image` (RGB) with `box` (x1, y1, x2, y2 image pixels) outlined in green and the predicted point
    as a red ring with a cross; marks scale with the image so they show on 4K screenshots. Raises nothing."""
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    draw = ImageDraw.Draw(out)
    unit = max(2, round(max(out.size) / 400))
    if box is not None:
        draw.rectangle([box[0], box[1], box[2], box[3]], outline=(0, 200, 0), width=unit)
    if result is not None and result.point is not None:
        x, y = result.point
        r = unit * 5
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 0, 0), width=unit)
        draw.line([x - 2 * r, y, x + 2 * r, y], fill=(255, 0, 0), width=max(1, unit // 2))
        draw.line([x, y - 2 * r, x, y + 2 * r], fill=(255, 0, 0), width=max(1, unit // 2))
    return out


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 3)
