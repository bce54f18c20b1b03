"""Generated token ids → streamed text deltas, split into thinking and answer, cut at stop strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.api import Delta, ThinkingSplitter


class TextStream:
    """Turns generated token ids into text deltas: holds back incomplete UTF-8 and possible stop-string starts."""

    def __init__(self, tokenizer, stop: Sequence[str], splitter: ThinkingSplitter, on_delta: Callable[[Delta], None] | None) -> None:
        self._tokenizer = tokenizer
        self._stop = [s for s in stop if s]
        self._splitter = splitter
        self._on_delta = on_delta
        self._ids: list[int] = []
        self._text = ""
        self._emitted = 0
        self._deltas: list[Delta] = []

    def push(self, token: int) -> bool:
        """Add one token; True when a stop string completed (the text is cut before it)."""
        self._ids.append(token)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character split across tokens: wait for the rest
            return False
        self._text = text
        for stop in self._stop:
            idx = text.find(stop, max(0, self._emitted - len(stop) + 1))
            if idx >= 0:
                self._text = text[:idx]
                self._emit(self._text[self._emitted :])
                return True
        hold = max((_overlap(text, s) for s in self._stop), default=0)
        self._emit(text[self._emitted : len(text) - hold])
        return False

    def finish(self) -> tuple[str, str, str]:
        """Flush what was held back; returns (text, thinking, answer) exactly as streamed."""
        self._emit(self._text[self._emitted :])
        for delta in self._splitter.flush():
            self._send(delta)
        thinking = "".join(d.text for d in self._deltas if d.kind == "thinking").strip()
        answer = "".join(d.text for d in self._deltas if d.kind == "answer").strip()
        return self._text, thinking, answer

    def _emit(self, piece: str) -> None:
        if not piece:
            return
        self._emitted += len(piece)
        for delta in self._splitter.feed(piece):
            self._send(delta)

    def _send(self, delta: Delta) -> None:
        self._deltas.append(delta)
        if self._on_delta is not None:
            self._on_delta(delta)


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of stop."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
