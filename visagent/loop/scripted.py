"""Scripted engines: test / demo engines that follow the Engine protocol but are not models.

- `OracleEngine` answers each call with the sim oracle's next action for a scenario, written in the Qwen3.5
  XML tool-call format, so real parsing, coordinate conversion and execution solve scenarios end to end
  (tests, `visagent eval --policy oracle`, demos, training data).
- `ScriptedEngine` answers fixed texts in order (tests of parse errors, loops, risky actions, controls).

Both stream their answer through `on_delta`, honour `cancel` between pieces and record every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.api import (
    Delta, EngineInfo, GenerationConfig, GenerationResult, Message, ThinkingSplitter, ToolSchema, VisionSpec,
    smart_resize, split_thinking,
)
from engine.errors import EngineError
from visagent.screen.base import ScreenGeometry


def _stream(text: str, config: GenerationConfig, on_delta: Callable[[Delta], None] | None,
            cancel: threading.Event | None, piece: int, delay_s: float) -> tuple[str, str]:
    """Stream `text` in pieces; returns (text actually produced, finish_reason)."""
    splitter = ThinkingSplitter(config.enable_thinking)
    out = ""
    for i in range(0, max(len(text), 1), piece):
        if cancel is not None and cancel.is_set():
            return out, "cancelled"
        chunk = text[i:i + piece]
        out += chunk
        if on_delta is not None:
            for delta in splitter.feed(chunk):
                on_delta(delta)
        if delay_s:
            time.sleep(delay_s)
    if on_delta is not None:
        for delta in splitter.flush():
            on_delta(delta)
    return out, "stop"


def _result(text: str, finish: str, messages: Sequence[Message], started: float) -> GenerationResult:
    thinking, answer = split_thinking(text)
    images = sum(1 for m in messages if isinstance(m.get("content"), list)
                 for part in m["content"] if part.get("type") == "image")
    return GenerationResult(text=text, thinking=thinking, answer=answer, finish_reason=finish,  # type: ignore[arg-type]
                            prompt_tokens=0, visual_tokens=0, generated_tokens=len(text.split()),
                            timings={"total": time.monotonic() - started, "images": float(images)})


class ScriptedEngine:
    """A scripted test engine (not a model): call k answers `outputs[k]`.

    When the outputs run out it raises EngineError (or repeats the last one with `repeat_last=True`).
    `piece` / `delay_s`: streaming granularity and the pause after each piece (cancel is checked between
    pieces). `calls` records (messages, tools, config, session_id) of each call.
    """

    def __init__(self, outputs: Sequence[str], *, repeat_last: bool = False, piece: int = 16, delay_s: float = 0.0,
                 coord_space: str = "norm1000", vision: VisionSpec | None = None) -> None:
        self.outputs = list(outputs)
        self.repeat_last = repeat_last
        self.piece = max(1, piece)
        self.delay_s = delay_s
        self.info = EngineInfo(spec="scripted", model_type="scripted", coord_space=coord_space,  # type: ignore[arg-type]
                               vision=vision or VisionSpec())
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def generate(self, messages: Sequence[Message], *, tools: Sequence[ToolSchema] | None = None,
                 config: GenerationConfig = GenerationConfig(), on_delta: Callable[[Delta], None] | None = None,
                 cancel: threading.Event | None = None, session_id: str | None = None) -> GenerationResult:
        started = time.monotonic()
        with self._lock:
            k = len(self.calls)
            self.calls.append({"messages": list(messages), "tools": tools, "config": config,
                               "session_id": session_id})
        if k >= len(self.outputs):
            if not (self.repeat_last and self.outputs):
                raise EngineError(f"ScriptedEngine has no output for call {k + 1} (it holds {len(self.outputs)})")
            k = len(self.outputs) - 1
        text, finish = _stream(self.outputs[k], config, on_delta, cancel, self.piece, self.delay_s)
        return _result(text, finish, messages, started)

    def close(self) -> None:
        pass


class OracleEngine:
    """A scripted test engine that plays the sim oracle: each call answers the oracle's next action for
    `scenario` on the current world (`world_provider()`), converted from screen pixels to the model space
    `space` on `geometry` and written in Qwen3.5 XML. Not a model.

    `geometry`: the executor's screen geometry, or a callable returning it (e.g. `executor.geometry`).
    `thinking`: also write a short thought before the call when the request enables thinking.
    Raises EngineError when the oracle has no action (the message names the scenario).
    """

    def __init__(self, scenario: Any, world_provider: Callable[[], Any], *,
                 geometry: ScreenGeometry | Callable[[], ScreenGeometry] | None = None,
                 space: str = "norm1000", vision: VisionSpec | None = None, piece: int = 24,
                 delay_s: float = 0.0) -> None:
        self.scenario = scenario
        self.world_provider = world_provider
        self._geometry = geometry
        self.piece = max(1, piece)
        self.delay_s = delay_s
        self.info = EngineInfo(spec="oracle", model_type="oracle", coord_space=space,  # type: ignore[arg-type]
                               vision=vision or VisionSpec(), supports_thinking=True)
        self.calls: list[dict[str, Any]] = []

    def geometry(self) -> ScreenGeometry:
        g = self._geometry
        if g is None:
            world = self.world_provider()
            size = getattr(world, "size", None)
            if size is None:
                raise EngineError("OracleEngine needs the screen geometry: pass geometry=executor.geometry")
            return ScreenGeometry.simple(int(size[0]), int(size[1]))
        return g() if callable(g) else g

    def next_text(self) -> str:
        """The oracle's next action as Qwen3.5 XML in this engine's coordinate space."""
        from visagent.loop.coords import from_screen
        from visagent.loop.parsing import render_action
        from visagent.sim.oracle import next_action

        world = self.world_provider()
        action = next_action(self.scenario, world)
        geometry = self.geometry()
        image_size = (geometry.physical_width, geometry.physical_height)
        resized = smart_resize(image_size[0], image_size[1], self.info.vision)
        model_action = from_screen(action, geometry, space=self.info.coord_space, image_size=image_size,
                                   resized_size=resized)
        # the platform picks the tool: a phone terminate is a mobile_use call, as the phone prompt's schema says
        return render_action(model_action, "qwen35", platform=getattr(world, "platform", None))

    def generate(self, messages: Sequence[Message], *, tools: Sequence[ToolSchema] | None = None,
                 config: GenerationConfig = GenerationConfig(), on_delta: Callable[[Delta], None] | None = None,
                 cancel: threading.Event | None = None, session_id: str | None = None) -> GenerationResult:
        started = time.monotonic()
        self.calls.append({"messages": list(messages), "tools": tools, "config": config, "session_id": session_id})
        try:
            call = self.next_text()
        except EngineError:
            raise
        except Exception as exc:
            name = getattr(self.scenario, "id", self.scenario)
            raise EngineError(f"the oracle has no next action for scenario {name!r}: {exc}") from exc
        text = call
        if config.enable_thinking:
            text = f"I follow the known solution one action at a time.\n</think>\n\n{call}"
        out, finish = _stream(text, config, on_delta, cancel, self.piece, self.delay_s)
        return _result(out, finish, messages, started)

    def close(self) -> None:
        pass
