"""Chunked prefill: run a prompt's new tokens in pieces so Stop and timeouts are honoured between them.

One forward over a 2,400-token prompt with four screenshots takes 13-52 s on a loaded CPU (tiny model), and
a real Qwen3.5 with 1080p screenshots is slower still; a `cancel` checked only per decoded token would make a
Stop wait for the whole prefill. So prefill runs chunks of about `chunk_tokens` tokens, checking `cancel`
between them, each on top of the cache of the previous ones, exactly as a session runs the segment a new turn
adds (engine/segments.py's `segment_runner`: each chunk gets its slice of the M-RoPE `position_ids`, of
`mm_token_type_ids` and the `pixel_values` rows of the images inside it); the hybrid cache (Gated DeltaNet
conv + recurrent state, full-attention KV) carries over between chunks as between session steps.

A chunk never cuts through an image: its `<|image_pad|>` run and its patches go to the model together,
so a cut inside an image moves back to the image's start, or, when the image itself starts the chunk and
is longer than `chunk_tokens`, forward to its end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.errors import EngineError

#: Tokens per prefill chunk unless configured. bench/prefill_chunk.py, tiny checkpoint, loaded 2-core CPU:
#: 4 x 1280x800 screenshots (4144 tokens) took 7.1 s chunked by 512 vs 7.3 s in one forward, the longest
#: chunk (= the wait after Stop) 2.5 s vs 10.4 s; 8 x 640x400 (2200 tokens) 1.5 s vs 1.8 s, longest chunk
#: 0.3 s, while 128-token chunks cost +22%. A chunk never splits an image, so an image bigger than the chunk
#: is one forward of its own: below ~1000 tokens the size mostly changes the text runs between images.
DEFAULT_PREFILL_CHUNK = 512


class PrefillCancelled(Exception):
    """`cancel` was set between two prefill chunks. `done`: prompt tokens the cache holds now."""

    def __init__(self, done: int) -> None:
        super().__init__(f"prefill cancelled after {done} prompt tokens")
        self.done = done


class _Span(Protocol):
    token_start: int
    token_end: int


@dataclass(frozen=True)
class PrefillControl:
    """What a prefill checks between chunks.

    `chunk_tokens`: tokens per chunk (None or 0: one forward, no checks inside). `cancel`: set from any
    thread to stop before the next chunk (PrefillCancelled). `deadline`: time.monotonic() value after which
    the next check raises EngineError naming `timeout_s`. `on_chunk(start, end)`: called after every chunk
    ran (tests count chunks with it; progress displays may too).
    """

    chunk_tokens: int | None = DEFAULT_PREFILL_CHUNK
    cancel: threading.Event | None = None
    deadline: float | None = None
    timeout_s: float | None = None
    on_chunk: Callable[[int, int], None] | None = None

    def check(self, done: int) -> None:
        """Raise PrefillCancelled / EngineError when the prefill must stop with `done` tokens in the cache."""
        if self.cancel is not None and self.cancel.is_set():
            raise PrefillCancelled(done)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise EngineError(
                f"generation exceeded timeout_s={self.timeout_s} while prefilling the prompt ({done} tokens done); "
                "raise timeout_s or send fewer or smaller screenshots"
            )


def chunk_ends(start: int, end: int, chunk_tokens: int | None, spans: Sequence[_Span]) -> list[int]:
    """Ends of the chunks that cover tokens [start, end), in order; the last one is `end`.

    Chunks hold about `chunk_tokens` tokens (None / 0: one chunk). `spans` (sorted, each with token_start /
    token_end) are the images: no end falls strictly inside one. `end` itself must not cut an image.
    """
    if end <= start:
        return []
    if not chunk_tokens or chunk_tokens <= 0:
        return [end]
    ends: list[int] = []
    position = start
    while position < end:
        cut = min(position + chunk_tokens, end)
        for span in spans:
            if span.token_start < cut < span.token_end:
                cut = span.token_start if span.token_start > position else span.token_end
                break
        ends.append(cut)
        position = cut
    return ends
