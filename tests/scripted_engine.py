"""ScriptedTestEngine: a stand-in Engine for server tests whose output must be known in advance.

The tiny checkpoint answers with random-weight gibberish, so it can never be made to emit a tool call or a
thinking block on demand; this engine does, to test the server's parsing and streaming of them. It follows the
Engine protocol (deltas, cancel within one piece, session ids) and records every call it served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.api import (Delta, EngineInfo, GenerationConfig, GenerationResult, Message, ThinkingSplitter,
                        ToolSchema, VisionSpec, split_thinking)


class ScriptedTestEngine:
    """Replies with `reply(messages, config)`, streamed in `piece`-character deltas, `delay_s` apart."""

    def __init__(self, reply: Callable[[Sequence[Message], GenerationConfig], str], *, piece: int = 4,
                 delay_s: float = 0.0, context_length: int | None = 4096) -> None:
        self.reply = reply
        self.piece = piece
        self.delay_s = delay_s
        self.info = EngineInfo(spec="scripted", model_type="scripted", coord_space="norm1000", vision=VisionSpec(),
                               context_length=context_length)
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self.closed = False

    def generate(self, messages: Sequence[Message], *, tools: Sequence[ToolSchema] | None = None,
                 config: GenerationConfig = GenerationConfig(), on_delta: Callable[[Delta], None] | None = None,
                 cancel: threading.Event | None = None, session_id: str | None = None) -> GenerationResult:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            text = self.reply(messages, config)
            record = {"messages": list(messages), "tools": tools, "config": config, "session_id": session_id,
                      "cancelled": False}
            self.calls.append(record)
            splitter = ThinkingSplitter(config.enable_thinking)
            out = ""
            finish = "stop"
            for i in range(0, len(text), self.piece):
                if cancel is not None and cancel.is_set():
                    finish = "cancelled"
                    record["cancelled"] = True
                    break
                if self.delay_s:
                    time.sleep(self.delay_s)
                chunk = text[i:i + self.piece]
                out += chunk
                for delta in splitter.feed(chunk):
                    if on_delta:
                        on_delta(delta)
            for delta in splitter.flush():
                if on_delta:
                    on_delta(delta)
            if config.enable_thinking and "</think>" in out and not out.startswith("<think>"):
                out = "<think>" + out
            thinking, answer = split_thinking(out)
            return GenerationResult(text=out, thinking=thinking, answer=answer, finish_reason=finish,  # type: ignore[arg-type]
                                    prompt_tokens=sum(len(str(m.get("content"))) for m in messages),
                                    generated_tokens=len(out) // self.piece + 1)
        finally:
            with self._lock:
                self.active -= 1

    def close(self) -> None:
        self.closed = True
