"""Engine sessions: keep a conversation's model state between calls and prefill only what is new.

A GUI agent re-sends its whole, growing conversation every step. A session keeps the token ids already in
the model's cache and, for each new prompt, finds the longest common prefix with them:

- the prompt extends the cache → prefill only the new tokens on top of it (their screenshots' patches, and
  position_ids sliced from the M-RoPE positions of the whole sequence, so image and text positions come out
  as in one full prefill);
- it does not (a history window dropped an old screenshot, the chat template re-rendered an earlier turn)
  → restore the latest snapshot at a turn boundary inside the common prefix and prefill from there.

Qwen3.5's cache holds two kinds of state (transformers' `DynamicCache` over `layer_types`): key/value
tensors for full-attention layers, which grow with the sequence and can be cut back to any length, and a
fixed-size convolution + recurrent state for Gated DeltaNet (linear-attention) layers, which cannot be
rewound. A snapshot therefore copies only the linear-attention states (a fixed few MB, whatever the
context length) plus the length it covers; restoring it cuts the KV tensors back to that length and copies
the states in. Snapshots are taken at every `<|im_start|>` in the prefilled tokens: the points where a
re-rendered conversation can start to differ (e.g. an assistant turn rendered without its thinking).

Screenshots are compared by content, not by token: every image of a size expands to the same run of
`<|image_pad|>` ids, so each image carries a fingerprint (a hash of its pixels, memoised per image object).

Memory is bounded: an LRU over sessions, a cap on total bytes (KV + states + snapshots) and on snapshots
per session, all in `SessionLimits`; `SessionStore.memory()` reports the bytes.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.hybrid_cache import Snapshot, cache_bytes, restore_snapshot, take_snapshot
from engine.prefill import PrefillCancelled, PrefillControl, chunk_ends
from engine.preprocess import preprocess_images
from engine.segments import ImageSpan, SegmentRunner, image_spans, segment_runner  # re-exported here too


@dataclass(frozen=True)
class SessionLimits:
    """Bounds of a SessionStore. Bytes count cache tensors (KV, conv, recurrent) and snapshots."""

    max_sessions: int = 8
    max_bytes: int = 4 << 30
    max_snapshots: int = 8  # per session; the earliest (system / task turn) is always kept

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.max_bytes < 1 or self.max_snapshots < 1:
            raise ValueError(f"session limits must be positive, got {self}")


@dataclass
class Session:
    """One conversation's state: the ids in the cache, the cache, its M-RoPE offset and snapshots.

    `rope_delta`: the M-RoPE position of token i (after the last image) is i + rope_delta.
    `images`: (first token index, fingerprint) of every image span in `token_ids`.
    """

    session_id: str
    token_ids: list[int] = field(default_factory=list)
    images: list[tuple[int, bytes]] = field(default_factory=list)
    cache: Any = None
    rope_delta: int = 0
    snapshots: list[Snapshot] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return cache_bytes(self.cache) + sum(s.nbytes for s in self.snapshots)


@dataclass(frozen=True)
class SessionPrefill:
    """What one session prefill did. `cached_tokens` were served from the cache, `prefilled_tokens` run now.

    `restored_to`: the snapshot length a rollback resumed from (0: from scratch), None when the cache was
    extended as it was.
    """

    logits: torch.Tensor
    cache: Any
    cached_tokens: int
    prefilled_tokens: int
    restored_to: int | None


class SessionStore:
    """Sessions by id, with LRU eviction. Thread-safe; one call per session at a time is the caller's job
    (LocalEngine serialises all generation under its lock)."""

    def __init__(self, limits: SessionLimits = SessionLimits()) -> None:
        self.limits = limits
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def drop(self, session_id: str) -> None:
        """Forget a session and free its cache (no error when unknown)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def memory(self) -> dict[str, Any]:
        """{"sessions", "bytes", "max_bytes", "per_session": {id: {"tokens", "bytes", "snapshots"}}}."""
        with self._lock:
            per = {
                sid: {"tokens": len(s.token_ids), "bytes": s.nbytes, "snapshots": len(s.snapshots)}
                for sid, s in self._sessions.items()
            }
        return {
            "sessions": len(per),
            "bytes": sum(p["bytes"] for p in per.values()),
            "max_bytes": self.limits.max_bytes,
            "per_session": per,
        }

    def prefill(
        self,
        session_id: str,
        input_ids: torch.Tensor,
        image_keys: Sequence[tuple[int, bytes]],
        run: SegmentRunner,
        *,
        boundary_token_id: int,
        control: PrefillControl | None = None,
        spans: Sequence[ImageSpan] = (),
    ) -> SessionPrefill:
        """Bring session `session_id` (created when new) to the prompt `input_ids` ((1, L) int64).

        `image_keys`: (first token index, fingerprint) per image in the prompt, in order. Runs only the
        tokens the cache does not hold (at least the last one, whose logits are returned); takes a snapshot
        before every `boundary_token_id` (`<|im_start|>`) it runs. The session's ids and cache then cover
        the prompt; call `commit` after decoding to add the generated tokens.

        `control` (engine/prefill.py) splits the new tokens into chunks that never cut one of `spans` (the
        prompt's images) and is checked before each: on PrefillCancelled the session keeps the chunks that
        ran (ids, images and cache up to the last chunk end), so the next call resumes from there.
        """
        ids = input_ids[0].tolist()
        if not ids:
            raise ValueError("session prefill needs at least one prompt token")
        with self._lock:
            session = self._sessions.pop(session_id, None) or Session(session_id)
            self._sessions[session_id] = session  # most recently used last
        common = _common_prefix(session, ids, image_keys)
        usable = min(common, len(ids) - 1)  # the last prompt token must run: its logits start decoding
        restored: int | None = None
        if session.cache is None or usable < len(session.token_ids):
            restored = self._rewind(session, usable)
        start = len(session.token_ids) if restored is None else restored
        try:
            logits, cache = self._run_pieces(session, ids, image_keys, start, run, boundary_token_id, control, spans)
        except PrefillCancelled:
            with self._lock:
                self._enforce(session_id)
            raise
        session.token_ids = ids
        session.images = list(image_keys)
        session.cache = cache
        return SessionPrefill(logits, cache, start, len(ids) - start, restored)

    def commit(self, session_id: str, cache: Any, fed_tokens: Sequence[int], rope_delta: int) -> None:
        """Record the generated tokens that were fed into `cache`, then enforce the limits."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return
            session.cache = cache
            session.token_ids = session.token_ids + [int(t) for t in fed_tokens]
            session.rope_delta = rope_delta
            self._enforce(session_id)

    # -- internals -----------------------------------------------------------------------------------------

    def _rewind(self, session: Session, usable: int) -> int:
        """Restore the latest snapshot of length <= usable (dropping later ones); returns its length."""
        session.snapshots = [s for s in session.snapshots if s.length <= usable]
        if not session.snapshots or session.cache is None:
            session.snapshots = []
            session.cache = None
            session.token_ids = []
            return 0
        snapshot = session.snapshots[-1]
        restore_snapshot(session.cache, snapshot)
        session.token_ids = session.token_ids[: snapshot.length]
        return snapshot.length

    def _run_pieces(
        self,
        session: Session,
        ids: list[int],
        image_keys: Sequence[tuple[int, bytes]],
        start: int,
        run: SegmentRunner,
        boundary_token_id: int,
        control: PrefillControl | None,
        spans: Sequence[ImageSpan],
    ) -> tuple[torch.Tensor, Any]:
        cuts = [i for i in range(start + 1, len(ids)) if ids[i] == boundary_token_id]
        cache = session.cache
        logits = None
        for piece_start, piece_end in zip([start, *cuts], [*cuts, len(ids)]):
            begin = piece_start
            for end in chunk_ends(piece_start, piece_end, control.chunk_tokens if control else None, spans):
                if control is not None:
                    control.check(begin)  # PrefillCancelled: the session holds tokens [0, begin)
                logits, cache = run(begin, end, cache)
                if end < len(ids):  # the session now covers [0, end): a cancel before the next chunk keeps it
                    session.cache = cache
                    session.token_ids = ids[:end]
                    session.images = [key for key in image_keys if key[0] < end]
                    if end == piece_end:
                        self._add_snapshot(session, take_snapshot(cache, end))
                if control is not None and control.on_chunk is not None:
                    control.on_chunk(begin, end)
                begin = end
        assert logits is not None
        return logits, cache

    def _add_snapshot(self, session: Session, snapshot: Snapshot) -> None:
        session.snapshots.append(snapshot)
        excess = len(session.snapshots) - self.limits.max_snapshots
        if excess > 0:  # keep the earliest (task / system turn) and the most recent ones
            session.snapshots = session.snapshots[:1] + session.snapshots[1 + excess :]

    def _enforce(self, current: str) -> None:
        """LRU-evict other sessions, then trim the current one's snapshots, then drop it if still too big."""
        while len(self._sessions) > self.limits.max_sessions:
            self._sessions.pop(next(iter(self._sessions)))
        total = sum(s.nbytes for s in self._sessions.values())
        for sid in [sid for sid in self._sessions if sid != current]:
            if total <= self.limits.max_bytes:
                return
            total -= self._sessions.pop(sid).nbytes
        session = self._sessions[current]
        while total > self.limits.max_bytes and session.snapshots:
            total -= session.snapshots.pop(0).nbytes
        if total > self.limits.max_bytes:
            del self._sessions[current]


def _common_prefix(session: Session, ids: list[int], image_keys: Sequence[tuple[int, bytes]]) -> int:
    """Longest prefix where token ids and the images inside it are the same as in the session."""
    cached = session.token_ids
    n = min(len(cached), len(ids))
    if n:
        a = np.asarray(cached[:n], dtype=np.int64)
        b = np.asarray(ids[:n], dtype=np.int64)
        diff = np.flatnonzero(a != b)
        n = int(diff[0]) if diff.size else n
    before = dict(session.images)
    for start, key in image_keys:
        if start >= n:
            break
        if before.get(start) != key:  # same pad tokens, different screenshot
            return start
    return n


# id(image) → (weak reference, fingerprint); PIL images compare by content, so they cannot be dict keys.
_FINGERPRINTS: dict[int, tuple[weakref.ref, bytes]] = {}
_FINGERPRINT_LOCK = threading.Lock()


def image_fingerprint(image: Any) -> bytes:
    """A 16-byte hash of an image's size, mode and pixels, memoised per image object (same object → no rehash).

    A PIL image is assumed unchanged once sent (an agent captures a new one per step). Numpy arrays are
    hashed on every call.
    """
    if isinstance(image, np.ndarray):
        return _digest(str(image.shape).encode(), np.ascontiguousarray(image).tobytes())
    key = id(image)
    with _FINGERPRINT_LOCK:
        known = _FINGERPRINTS.get(key)
    if known is not None and known[0]() is image:
        return known[1]
    fingerprint = _digest(f"{image.mode}{image.size}".encode(), image.tobytes())
    ref = weakref.ref(image, lambda _ref, key=key: _forget(key, _ref))
    with _FINGERPRINT_LOCK:
        _FINGERPRINTS[key] = (ref, fingerprint)
    return fingerprint


def _forget(key: int, ref: weakref.ref) -> None:
    with _FINGERPRINT_LOCK:
        if key in _FINGERPRINTS and _FINGERPRINTS[key][0] is ref:
            del _FINGERPRINTS[key]


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.digest()


def session_prefill(
    engine: Any,
    store: SessionStore,
    session_id: str,
    prompt: Any,
    images: Sequence[Any],
    control: PrefillControl | None = None,
    keep_hidden: Callable[[int, int, torch.Tensor], None] | None = None,
) -> SessionPrefill:
    """Prefill `prompt` (an engine.local.PreparedPrompt of `engine`, a LocalEngine) in session `session_id`.

    `images`: the prompt's images in order (their fingerprints tell screenshots apart). A prompt prepared
    with `pixels=False` gets only the images outside the cached prefix preprocessed. `control`: chunking
    and cancel / deadline checks (engine/prefill.py). PrefillCancelled leaves the session holding the
    chunks that ran; on any other error the session is dropped (its cache may be half-updated) and the
    error re-raised.
    """
    merge = engine.checkpoint.vision.merge_size
    spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, merge)
    if len(spans) != len(images):
        raise ValueError(f"the prompt holds {len(spans)} images but {len(images)} were given")
    keys = [(span.token_start, image_fingerprint(image)) for span, image in zip(spans, images)]
    vision = engine.checkpoint.vision

    def pixels_for(first: int, stop: int) -> torch.Tensor:
        pixel_values, grid = preprocess_images(list(images[first:stop]), vision)
        if not torch.equal(grid, prompt.image_grid_thw[first:stop]):
            raise ValueError(f"images {first}..{stop - 1} preprocess to {grid.tolist()}, not the prompt's grid")
        return pixel_values

    run = segment_runner(
        engine.model,
        prompt.input_ids,
        prompt.position_ids,
        prompt.mm_token_type_ids,
        prompt.pixel_values,
        prompt.image_grid_thw,
        merge_size=merge,
        device=engine.model.get_input_embeddings().weight.device,
        dtype=engine.dtype,
        pixels_for=pixels_for,
        keep_hidden=keep_hidden,
    )
    boundary = int(engine.tokenizer.convert_tokens_to_ids("<|im_start|>"))
    try:
        return store.prefill(
            session_id, prompt.input_ids, keys, run, boundary_token_id=boundary, control=control, spans=spans
        )
    except PrefillCancelled:
        raise
    except BaseException:
        store.drop(session_id)
        raise
