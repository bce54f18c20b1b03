"""The engine seam: what visagent may call. Chat messages (text + images) + tool schemas → streamed text.

Messages use the Hugging Face chat format::

    {"role": "system" | "user" | "assistant" | "tool",
     "content": "text" | [{"type": "text", "text": "..."}, {"type": "image", "image": PIL.Image.Image}]}

An assistant message may carry `tool_calls` ([{"type": "function", "function": {"name", "arguments": {...}}}])
as transformers' chat templates expect (a call belongs in `tool_calls` or written in `content`, never both: Qwen's
template prints both) and `reasoning_content` (its thinking, printed in `<think>` by Qwen3.5's template); a tool result is a `{"role": "tool", "content": ...}` message, which
Qwen's template renders inside `<tool_response>` in a user turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

# Re-exported for visagent: the one tool-call text parser, shared by `visagent serve` and the agent.
# Screenshots are PNG-encoded once and the encoding shared by the trace and every request (engine/image_codec.py).
from engine.image_codec import PNG_MODES, keep_encoding, png_bytes  # noqa: F401
from engine.toolcall_text import (  # noqa: F401
    ParsedToolCall, ToolCallScan, convert_param_value, parse_tool_calls, render_tool_call_xml, scan_tool_calls,
    show_value,
)

Message = dict[str, Any]
ToolSchema = dict[str, Any]

#: How a model family writes screen coordinates: on a 0..1000 grid over the image (Qwen3-VL, Qwen3.5) or in
#: absolute pixels of the smart-resized image it saw (Qwen2.5-VL, UI-TARS-1.5).
CoordSpaceName = Literal["norm1000", "resized"]


@dataclass(frozen=True)
class VisionSpec:
    """How screenshots are resized and cut into visual tokens for one model family."""

    patch_size: int = 16
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 64 * 32 * 32
    max_pixels: int = 2560 * 32 * 32
    # Per-channel (R, G, B) normalisation applied to pixels scaled to 0..1; Qwen3-VL / Qwen3.5 use 0.5 / 0.5,
    # Qwen2.5-VL uses the OpenAI CLIP mean / std (see engine.preprocess.QWEN25_VL_VISION).
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @property
    def factor(self) -> int:
        """Side of the pixel square that becomes one visual token (32 for Qwen3.5, 28 for Qwen2.5-VL)."""
        return self.patch_size * self.merge_size


@dataclass(frozen=True)
class SamplingPreset:
    """One set of sampling values a model's authors recommend (temperature 0: greedy). `source` says where the
    values come from (a model card, a checkpoint's generation_config.json)."""

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    source: str = ""

    def apply(self, config: GenerationConfig) -> GenerationConfig:
        """`config` with this preset's sampling values (its length, seed, stop and thinking switch kept)."""
        return replace(config, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, min_p=self.min_p,
                       presence_penalty=self.presence_penalty, repetition_penalty=self.repetition_penalty)


@dataclass(frozen=True)
class RecommendedSampling:
    """The recommended sampling for each mode of a model: thinking on, thinking off (see engine/presets.py)."""

    thinking: SamplingPreset
    non_thinking: SamplingPreset

    def for_mode(self, thinking: bool) -> SamplingPreset:
        return self.thinking if thinking else self.non_thinking


@dataclass(frozen=True)
class EngineInfo:
    """What a caller must know about the model behind an engine."""

    spec: str  # what the user passed: "tiny", a directory, or a URL
    model_type: str  # config.json model_type, or "remote"
    coord_space: CoordSpaceName
    vision: VisionSpec
    supports_thinking: bool = True
    context_length: int | None = None
    max_images: int | None = None  # per request, when the engine has a limit
    # The agent prompt the model was trained on: "full" (Qwen's agent prompt, every released model) or
    # "compact" (short system prompt + tool schema; a checkpoint declares it in visagent.json).
    prompt_profile: str = "full"
    # Screenshots per prompt the model was trained with (visagent.json "history_images"); the agent sends no more.
    history_images: int | None = None
    # The checkpoint carries a pointing head (engine/pointer.py): results then hold `pointer`.
    points: bool = False
    # What the model's authors recommend per mode (engine/presets.py); None: nothing known, decode as asked.
    sampling: RecommendedSampling | None = None
    # Who serves it (engine/providers.py: vllm, sglang, llamacpp, ollama, modelstudio, openai, visagent,
    # generic); None for an in-process engine.
    provider: str | None = None


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings. temperature 0 means greedy; seed makes sampling reproducible."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    enable_thinking: bool = False
    timeout_s: float | None = None  # wall-clock limit for the whole call; EngineError when exceeded
    # Tokens the thinking may take (thinking on); a server with a native cap (engine/providers.py) gets it.
    # max_new_tokens stays the cap on the whole answer, thinking included.
    thinking_budget: int | None = None


@dataclass(frozen=True)
class Delta:
    """A streamed piece of model output, already split into thinking and answer."""

    kind: Literal["thinking", "answer"]
    text: str


@dataclass(frozen=True)
class Pointer:
    """Where a checkpoint's pointing head (engine/pointer.py) says the prompt's last image holds what the
    prompt names: the centre of its top-scored visual token, x and y as fractions of that image (0..1), the
    softmax mass on that token (`score`) and how many tokens the image had (`tokens`)."""

    x: float
    y: float
    score: float
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"x": round(self.x, 5), "y": round(self.y, 5), "score": round(self.score, 4), "tokens": self.tokens}


@dataclass
class GenerationResult:
    """A finished generation. `text` is the raw completion; `thinking` + `answer` are its split."""

    text: str
    thinking: str
    answer: str
    finish_reason: Literal["stop", "length", "cancelled", "stop_string"]
    prompt_tokens: int = 0
    visual_tokens: int = 0
    generated_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds: preprocess, prefill, decode, total
    tool_calls: list[dict[str, Any]] | None = None  # structured calls when a server parsed them (OpenAI form)
    cached_tokens: int = 0  # prompt tokens served from a session cache
    pointer: Pointer | None = None  # set by an engine whose checkpoint has a pointing head (info.points)
    # The assistant message's content as the model produced it, thinking removed, when it differs from `answer`:
    # beside structured `tool_calls` it is only the prose (while `answer` also carries the calls written as
    # Qwen3.5 XML, for text parsers). None: the content is `answer`. See `turn_content`.
    content: str | None = None

    def turn_content(self) -> str:
        """The assistant turn's content to send back in later prompts: the prose beside structured calls, else the
        answer text (tool calls written in it as the model wrote them). Never both a call as text and as tool_calls."""
        return self.answer if self.content is None else self.content


@runtime_checkable
class Engine(Protocol):
    """Anything that turns messages + tools into streamed text. Thread-safe: calls may be serialised inside."""

    info: EngineInfo

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        config: GenerationConfig = GenerationConfig(),
        on_delta: Callable[[Delta], None] | None = None,
        cancel: threading.Event | None = None,
        session_id: str | None = None,
    ) -> GenerationResult:
        """Generate one assistant turn.

        `on_delta` is called from the generating thread for every new piece of text. Setting `cancel`
        stops generation within one token, or while the prompt is prefilled within one prefill chunk
        (finish_reason "cancelled", empty text; no exception). `session_id` lets an engine reuse
        cached state for a conversation that only grew since the last call (ignored where unsupported).
        Raises engine.errors.EngineError with a message a user can act on.
        """
        ...

    def close(self) -> None:
        """Release the model / connections."""
        ...


def split_thinking(text: str) -> tuple[str, str]:
    """Split a completion into (thinking, answer).

    Qwen3.5's generation prompt opens `<think>\\n` when thinking is on, so the completion may hold `</think>`
    without its opener; an explicit `<think>` is accepted too. No `</think>` at all → everything is answer.
    """
    close = text.find("</think>")
    if close < 0:
        start = text.find("<think>")
        if start >= 0:  # thinking still open (e.g. cut by max_new_tokens)
            return text[start + len("<think>"):].strip(), text[:start].strip()
        return "", text.strip()
    head, tail = text[:close], text[close + len("</think>"):]
    start = head.find("<think>")
    if start >= 0:
        head = head[start + len("<think>"):]
    return head.strip(), tail.strip()


class ThinkingSplitter:
    """Incremental version of `split_thinking` for streams: feed raw text pieces, get Deltas.

    `thinking_open` says whether the prompt already opened a `<think>` block (thinking on).
    Holds back a possible partial tag at the end of the buffer until the next piece decides it.
    """

    _TAGS = ("<think>", "</think>")

    def __init__(self, thinking_open: bool) -> None:
        self._in_thinking = thinking_open
        self._pending = ""

    def feed(self, piece: str) -> list[Delta]:
        buf = self._pending + piece
        out: list[Delta] = []
        while buf:
            tag = "</think>" if self._in_thinking else "<think>"
            idx = buf.find(tag)
            if idx >= 0:
                self._emit(out, buf[:idx])
                buf = buf[idx + len(tag):]
                self._in_thinking = not self._in_thinking
                continue
            keep = _partial_suffix(buf, tag)
            self._emit(out, buf[: len(buf) - keep])
            buf = buf[len(buf) - keep:]
            break
        self._pending = buf
        return out

    def flush(self) -> list[Delta]:
        out: list[Delta] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[Delta], text: str) -> None:
        if text:
            out.append(Delta("thinking" if self._in_thinking else "answer", text))


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of buf that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:n]):
            return n
    return 0


def smart_resize(width: int, height: int, vision: VisionSpec) -> tuple[int, int]:
    """Qwen's smart resize: sides rounded to multiples of `vision.factor`, pixel count within the budget.

    Returns (resized_width, resized_height). A 1920x1080 screenshot → (1920, 1088) with the default budget.
    """
    import math

    factor = vision.factor
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(width, height) / min(width, height) > 200:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds 200")
    # Same arithmetic as transformers' Qwen2-VL image processor (a side may round to 0 here and is then
    # grown by the min-pixels branch), so shapes and image_grid_thw match it for every size.
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > vision.max_pixels:
        beta = math.sqrt((height * width) / vision.max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < vision.min_pixels:
        beta = math.sqrt(vision.min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(factor, w_bar), max(factor, h_bar)


def visual_tokens(width: int, height: int, vision: VisionSpec) -> int:
    """Visual tokens one image of this size costs after smart resize (one per factor x factor square)."""
    w, h = smart_resize(width, height, vision)
    return (w // vision.factor) * (h // vision.factor)
