"""Chunked prefill (engine/prefill.py) on the shipped tiny qwen3_5_moe checkpoint (real transformers classes).

Chunks must give the logits of one forward (fp32, within 1e-4) whatever the chunk size, never cut an
image, and let a Stop from another thread end the prefill before the next chunk.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from engine import load_engine
from engine.api import GenerationConfig
from engine.errors import EngineError
from engine.local import _collect_images
from engine.prefill import PrefillControl, chunk_ends
from engine.session import SessionStore, image_spans, session_prefill

GREEDY = GenerationConfig(max_new_tokens=6, temperature=0.0)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def engine():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    eng = load_engine("tiny", device="cpu", dtype="fp32")
    yield eng
    eng.close()
    torch.set_num_threads(before)


def screen(seed: int, size: tuple[int, int] = (320, 256)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def two_image_messages() -> list[dict]:
    """System + user turn with a 320x256 screenshot (80 visual tokens), an answer, a 256x192 one (48)."""
    return [
        {"role": "system", "content": "You operate a computer through the computer_use tool."},
        {"role": "user", "content": [{"type": "text", "text": "Open the settings."}, {"type": "image", "image": screen(1)}]},
        {"role": "assistant", "content": "I click the gear icon."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<tool_response>clicked</tool_response>"},
                {"type": "image", "image": screen(2, (256, 192))},
            ],
        },
    ]


@dataclass
class Span:
    token_start: int
    token_end: int


def test_chunk_ends_cover_the_range_and_never_cut_an_image() -> None:
    spans = [Span(10, 40), Span(45, 50)]
    ends = chunk_ends(0, 60, 16, spans)
    assert ends == [10, 40, 56, 60]  # 16 would cut the first image: back to its start; then it runs whole
    assert chunk_ends(0, 60, None, spans) == [60] == chunk_ends(0, 60, 0, spans)
    assert chunk_ends(5, 5, 16, spans) == []
    for chunk in range(1, 70):
        ends = chunk_ends(3, 60, chunk, spans)
        assert ends[-1] == 60 and ends == sorted(set(ends)) and ends[0] > 3
        assert not any(s.token_start < e < s.token_end for e in ends for s in spans)


@pytest.mark.parametrize("chunk", [16, 37, 100])
def test_chunked_prefill_equals_one_forward(engine, chunk: int) -> None:
    prompt = engine.prepare(two_image_messages())
    spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, 2)
    assert len(spans) == 2 and prompt.length > 2 * chunk
    ran: list[tuple[int, int]] = []
    control = PrefillControl(chunk_tokens=chunk, on_chunk=lambda s, e: ran.append((s, e)))
    chunked, chunked_cache = engine.prefill(prompt, control=control)
    whole, whole_cache = engine.prefill(prompt)
    assert (chunked - whole).abs().max().item() <= TOLERANCE
    # contiguous chunks over the whole prompt, none cutting an image
    assert ran[0][0] == 0 and ran[-1][1] == prompt.length and len(ran) >= prompt.length // max(chunk, 80)
    assert all(a[1] == b[0] for a, b in zip(ran, ran[1:]))
    assert not any(s.token_start < e < s.token_end for _, e in ran for s in spans)
    ours, _ = engine.decode(prompt, chunked, chunked_cache, GREEDY)
    theirs, _ = engine.decode(prompt, whole, whole_cache, GREEDY)
    assert ours.text == theirs.text


def test_prefill_from_an_offset_with_images_in_both_parts(engine) -> None:
    """start > 0 with an image before and one after it (refused before prefill reused segment_runner)."""
    prompt = engine.prepare(two_image_messages())
    spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, 2)
    cut = spans[0].token_end + 3
    _, head_cache = engine.prefill(_truncated(prompt, cut))
    logits, _ = engine.prefill(prompt, head_cache, start=cut, control=PrefillControl(chunk_tokens=30))
    whole, _ = engine.prefill(prompt)
    assert (logits - whole).abs().max().item() <= TOLERANCE


def _truncated(prompt, length: int):
    """The prompt's first `length` tokens (images wholly inside them only)."""
    out = copy.copy(prompt)
    out.input_ids = prompt.input_ids[:, :length]
    out.mm_token_type_ids = prompt.mm_token_type_ids[:, :length]
    out.position_ids = prompt.position_ids[:, :, :length]
    spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, 2)
    inside = [s for s in spans if s.token_end <= length]
    out.image_grid_thw = prompt.image_grid_thw[: len(inside)]
    out.pixel_values = prompt.pixel_values[: inside[-1].row_end] if inside else None
    return out


def test_cancel_from_another_thread_stops_within_one_chunk(engine) -> None:
    """Stop pressed while chunk 2 runs: generate returns 'cancelled' (no exception) before chunk 3."""
    messages = two_image_messages()
    cancel = threading.Event()
    second_started = threading.Event()
    ran: list[tuple[int, int]] = []

    def on_chunk(start: int, end: int) -> None:
        ran.append((start, end))
        if len(ran) == 1:
            second_started.set()  # the stopper thread presses Stop "during" chunk 2 ...
            assert cancel.wait(30), "the stopper thread never set cancel"  # ... which runs after it did

    stopper = threading.Thread(target=lambda: (second_started.wait(30), cancel.set()))
    stopper.start()
    engine.prefill_chunk, engine.on_prefill_chunk = 16, on_chunk
    try:
        result = engine.generate(messages, config=GREEDY, cancel=cancel)
    finally:
        engine.prefill_chunk, engine.on_prefill_chunk = 512, None
        stopper.join()
    total = len(chunk_ends(0, result.prompt_tokens, 16, image_spans(*_mm(engine, messages))))
    assert result.finish_reason == "cancelled" and result.text == "" and result.generated_tokens == 0
    assert len(ran) == 1 < total  # stopped at the first check after Stop, not after the other chunks


def _mm(engine, messages):
    prompt = engine.prepare(messages)
    return prompt.mm_token_type_ids, prompt.image_grid_thw, 2


def test_deadline_is_checked_between_chunks(engine) -> None:
    ran: list[int] = []
    engine.prefill_chunk, engine.on_prefill_chunk = 16, lambda s, e: ran.append(e)
    try:
        with pytest.raises(EngineError, match="timeout_s=1e-09 while prefilling"):
            engine.generate(two_image_messages(), config=GenerationConfig(max_new_tokens=4, timeout_s=1e-9))
    finally:
        engine.prefill_chunk, engine.on_prefill_chunk = 512, None
    assert ran == []  # the deadline had passed before the first chunk (preprocessing took longer than 1 ns)


def test_a_session_resumes_after_a_cancelled_prefill(engine) -> None:
    """Cancelled after 3 chunks: the session holds exactly those tokens, and the next call continues from
    them to the logits / text of a full prefill."""
    messages = two_image_messages()
    images = _collect_images(messages)
    store = SessionStore()
    cancel = threading.Event()
    ran: list[tuple[int, int]] = []

    def on_chunk(start: int, end: int) -> None:
        ran.append((start, end))
        if len(ran) == 3:
            cancel.set()

    from engine.prefill import PrefillCancelled

    lazy = engine.prepare(messages, pixels=False)
    with pytest.raises(PrefillCancelled) as stopped:
        session_prefill(engine, store, "s", lazy, images, PrefillControl(20, cancel=cancel, on_chunk=on_chunk))
    done = ran[-1][1]
    assert stopped.value.done == done and len(ran) == 3
    session = store.get("s")
    ids = lazy.input_ids[0].tolist()
    assert session.token_ids == ids[:done]
    kv = next(layer.keys.shape[-2] for layer in session.cache.layers if not hasattr(layer, "recurrent_states"))
    assert kv == done
    assert [start for start, _ in session.images] == [s.token_start for s in image_spans(lazy.mm_token_type_ids, lazy.image_grid_thw, 2) if s.token_start < done]

    step = session_prefill(engine, store, "s", engine.prepare(messages, pixels=False), images, PrefillControl(20))
    assert step.cached_tokens == done and step.cached_tokens + step.prefilled_tokens == len(ids)
    full = engine.prepare(messages)
    whole, whole_cache = engine.prefill(full)
    assert (step.logits - whole).abs().max().item() <= TOLERANCE
    ours, _ = engine.decode(full, step.logits, step.cache, GREEDY)
    theirs, _ = engine.decode(full, whole, whole_cache, GREEDY)
    assert ours.text == theirs.text


def test_generate_with_a_session_after_a_cancel_matches_generate_without(engine) -> None:
    messages = two_image_messages()
    engine.sessions.clear()
    cancel = threading.Event()
    engine.prefill_chunk = 16
    engine.on_prefill_chunk = lambda s, e: cancel.set() if e > 100 else None
    try:
        stopped = engine.generate(messages, config=GREEDY, cancel=cancel, session_id="run")
        engine.on_prefill_chunk = None
        resumed = engine.generate(messages, config=GREEDY, session_id="run")
        plain = engine.generate(messages, config=GREEDY)
    finally:
        engine.prefill_chunk, engine.on_prefill_chunk = 512, None
        engine.sessions.clear()
    assert stopped.finish_reason == "cancelled"
    assert 100 < resumed.cached_tokens < resumed.prompt_tokens
    assert resumed.text == plain.text and resumed.finish_reason == plain.finish_reason


def test_a_negative_chunk_size_is_refused() -> None:
    from engine.local import LocalEngine
    from engine import tiny_checkpoint_path

    with pytest.raises(EngineError, match="prefill_chunk"):
        LocalEngine(tiny_checkpoint_path(), device="cpu", dtype="fp32", prefill_chunk=-1)


@pytest.mark.parametrize("model_type", ["qwen3_5", "qwen3_vl", "qwen2_5_vl"])
def test_chunked_prefill_on_the_other_model_types(tmp_path, model_type: str) -> None:
    """Dense Qwen3.5 (hybrid cache), Qwen3-VL (deepstack) and Qwen2.5-VL (patch 14): chunks = one forward."""
    from tests.test_engine_families import _checkpoint

    other = load_engine(str(_checkpoint(tmp_path, model_type)), device="cpu", dtype="fp32")
    try:
        prompt = other.prepare(two_image_messages())
        merge = other.checkpoint.vision.merge_size
        spans = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, merge)
        ran: list[tuple[int, int]] = []
        chunked, _ = other.prefill(prompt, control=PrefillControl(24, on_chunk=lambda s, e: ran.append((s, e))))
        whole, _ = other.prefill(prompt)
        assert (chunked - whole).abs().max().item() <= TOLERANCE
        assert len(ran) > 2 * len(spans) and ran[-1][1] == prompt.length
        assert not any(s.token_start < e < s.token_end for _, e in ran for s in spans)
    finally:
        other.close()
