"""Engine sessions on the shipped tiny qwen3_5_moe checkpoint (real transformers classes, random weights).

Every session prefill is checked against one full prefill of the same prompt: logits within 1e-4 (fp32)
and the same greedy continuation.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from engine import load_engine
from engine.api import GenerationConfig
from engine.local import _collect_images
from engine.hybrid_cache import cache_bytes, restore_snapshot, take_snapshot
from engine.session import (
    SessionLimits,
    SessionStore,
    image_fingerprint,
    image_spans,
    session_prefill,
)

GREEDY = GenerationConfig(max_new_tokens=6, temperature=0.0)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def engine():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add hand-off cost on a shared CPU
    eng = load_engine("tiny", device="cpu", dtype="fp32")
    yield eng
    eng.close()
    torch.set_num_threads(before)


def screenshot(step: int, size: tuple[int, int] = (320, 256)) -> Image.Image:
    """A different random screen per step (320x256 → 80 visual tokens on the tiny checkpoint)."""
    rng = np.random.default_rng(1000 + step)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def first_turn() -> list[dict]:
    return [
        {"role": "system", "content": "You operate a computer through the computer_use tool."},
        {"role": "user", "content": [{"type": "text", "text": "Turn Wi-Fi off."}, {"type": "image", "image": screenshot(0)}]},
    ]


def next_turn(step: int, answer: str) -> list[dict]:
    return [
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"<tool_response>step {step} done</tool_response>"},
                {"type": "image", "image": screenshot(step)},
            ],
        },
    ]


def check_against_full_prefill(engine, store: SessionStore, session_id: str, messages: list[dict]):
    """Session prefill vs one full prefill: logits and greedy continuation. Returns (step info, text)."""
    prompt = engine.prepare(messages)
    lazy = engine.prepare(messages, pixels=False)  # what generate(session_id=...) does: sizes only
    assert lazy.pixel_values is None and torch.equal(lazy.input_ids, prompt.input_ids)
    assert torch.equal(lazy.position_ids, prompt.position_ids)
    step = session_prefill(engine, store, session_id, lazy, _collect_images(messages))
    full_logits, full_cache = engine.prefill(prompt)
    assert (step.logits - full_logits).abs().max().item() <= TOLERANCE
    assert step.cached_tokens + step.prefilled_tokens == prompt.length
    ours, _ = engine.decode(prompt, step.logits, copy.deepcopy(step.cache), GREEDY)
    theirs, _ = engine.decode(prompt, full_logits, full_cache, GREEDY)
    assert ours.text == theirs.text
    store.commit(session_id, step.cache, [], prompt.rope_delta)
    return step, prompt, ours.text


def test_ten_steps_match_full_prefill_and_reuse_the_cache(engine) -> None:
    store = SessionStore()
    im_start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    messages = first_turn()
    previous_ids: list[int] = []
    for step_no in range(1, 11):
        step, prompt, text = check_against_full_prefill(engine, store, "run", messages)
        if previous_ids:
            # Everything before the last assistant turn came from the cache: the template re-renders that
            # turn without the generation prompt's empty think block, so it resumes at its <|im_start|>.
            last_boundary = len(previous_ids) - 1 - previous_ids[::-1].index(im_start)
            assert step.cached_tokens == last_boundary
        previous_ids = prompt.input_ids[0].tolist()
        messages = messages + next_turn(step_no, f"Clicked at step {step_no}: {text!r}")
    memory = store.memory()
    assert memory["sessions"] == 1 and memory["bytes"] == store.get("run").nbytes > 0


def test_dropping_an_old_screenshot_rolls_back_to_a_boundary(engine) -> None:
    store = SessionStore()
    messages = first_turn()
    for step_no in range(1, 6):
        _, prompt, _ = check_against_full_prefill(engine, store, "run", messages)
        messages = messages + next_turn(step_no, f"Clicked {step_no}.")
    check_against_full_prefill(engine, store, "run", messages)
    # A history window replaces the second screenshot (inside turn 3) with a note: not an extension.
    windowed = copy.deepcopy(messages[:3]) + [
        {"role": "user", "content": "<tool_response>step 1 done</tool_response>[screenshot dropped]"}
    ] + messages[4:]
    before = len(store.get("run").token_ids)
    step, prompt, _ = check_against_full_prefill(engine, store, "run", windowed)
    assert step.restored_to is not None and 0 < step.restored_to < before
    ids = prompt.input_ids[0].tolist()
    im_start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[step.restored_to] == im_start  # resumed exactly at a turn boundary
    # ... and the session goes on appending after the rollback.
    messages = windowed + next_turn(9, "Clicked 9.")
    step, _, _ = check_against_full_prefill(engine, store, "run", messages)
    assert step.cached_tokens > step.prefilled_tokens


def test_same_tokens_different_screenshot_is_not_reused(engine) -> None:
    store = SessionStore()
    messages = first_turn() + next_turn(1, "Clicked.")
    check_against_full_prefill(engine, store, "run", messages)
    changed = copy.deepcopy(messages)
    changed[-1]["content"][1]["image"] = screenshot(77)  # same size: same <|image_pad|> ids
    prompt = engine.prepare(changed)
    changed_start = image_spans(prompt.mm_token_type_ids, prompt.image_grid_thw, 2)[-1].token_start
    step, _, _ = check_against_full_prefill(engine, store, "run", changed)
    assert 0 < step.cached_tokens <= changed_start


def test_the_same_prompt_twice_gives_the_same_logits(engine) -> None:
    store = SessionStore()
    messages = first_turn() + next_turn(1, "Clicked.")
    first, _, _ = check_against_full_prefill(engine, store, "run", messages)
    second, _, _ = check_against_full_prefill(engine, store, "run", messages)
    assert torch.allclose(first.logits, second.logits, atol=TOLERANCE, rtol=0)
    assert second.restored_to is not None and second.prefilled_tokens < first.prefilled_tokens


def test_two_sessions_never_mix(engine) -> None:
    store = SessionStore()
    a = first_turn()
    b = [a[0], {"role": "user", "content": [{"type": "text", "text": "Open mail."}, {"type": "image", "image": screenshot(50)}]}]
    for step_no in range(1, 4):
        check_against_full_prefill(engine, store, "a", a)
        check_against_full_prefill(engine, store, "b", b)
        a = a + next_turn(step_no, "A.")
        b = b + next_turn(100 + step_no, "B.")
    assert len(store) == 2


def test_memory_is_reported_from_the_cache_tensors(engine) -> None:
    store = SessionStore()
    text = engine.model.config.text_config
    full_layers = sum(t == "full_attention" for t in text.layer_types)
    per_token = full_layers * 2 * text.num_key_value_heads * text.head_dim * 4  # K and V, fp32
    messages = first_turn()
    step1, p1, _ = check_against_full_prefill(engine, store, "run", messages)
    bytes1 = cache_bytes(step1.cache)
    messages = messages + next_turn(1, "Clicked.")
    step2, p2, _ = check_against_full_prefill(engine, store, "run", messages)
    assert cache_bytes(step2.cache) - bytes1 == per_token * (p2.length - p1.length)
    session = store.get("run")
    assert store.memory()["per_session"]["run"] == {
        "tokens": len(session.token_ids),
        "bytes": cache_bytes(session.cache) + sum(s.nbytes for s in session.snapshots),
        "snapshots": len(session.snapshots),
    }


def test_lru_eviction_and_snapshot_cap(engine) -> None:
    store = SessionStore(SessionLimits(max_sessions=2, max_snapshots=3))
    messages = first_turn()
    for step_no in range(1, 5):
        check_against_full_prefill(engine, store, "old", messages)
        messages = messages + next_turn(step_no, "Clicked.")
    snapshots = store.get("old").snapshots
    assert len(snapshots) == 3
    assert snapshots[0].length < snapshots[1].length < snapshots[2].length
    first_boundary = engine.prepare(first_turn()).input_ids[0].tolist().index(
        engine.tokenizer.convert_tokens_to_ids("<|im_start|>"), 1
    )
    assert snapshots[0].length == first_boundary  # the task turn's boundary is kept
    check_against_full_prefill(engine, store, "mid", first_turn())
    check_against_full_prefill(engine, store, "new", first_turn())
    assert "old" not in store and {"mid", "new"} <= {sid for sid in store.memory()["per_session"]}


def test_byte_cap_evicts_least_recently_used(engine) -> None:
    probe = SessionStore()
    check_against_full_prefill(engine, probe, "x", first_turn())
    one = probe.get("x").nbytes
    store = SessionStore(SessionLimits(max_bytes=int(one * 1.5)))
    check_against_full_prefill(engine, store, "a", first_turn())
    check_against_full_prefill(engine, store, "b", first_turn())
    assert "a" not in store and "b" in store
    assert store.memory()["bytes"] <= int(one * 1.5)
    tiny_cap = SessionStore(SessionLimits(max_bytes=1))
    check_against_full_prefill(engine, tiny_cap, "a", first_turn())  # still correct, just not kept
    assert len(tiny_cap) == 0


def test_image_fingerprint_tells_content_apart() -> None:
    one, same, other = screenshot(1), screenshot(1), screenshot(2)
    assert image_fingerprint(one) == image_fingerprint(same) != image_fingerprint(other)
    assert image_fingerprint(np.asarray(one)) == image_fingerprint(np.asarray(same))


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SessionLimits(max_snapshots=0)


def kv_length(cache) -> int:
    return next(layer.keys.shape[-2] for layer in cache.layers if not hasattr(layer, "recurrent_states"))


def test_generate_with_a_session_equals_generate_without(engine) -> None:
    """The agent-loop path: LocalEngine.generate(session_id=...) over 10 steps, a new screenshot each."""
    engine.sessions.clear()
    im_start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    messages = first_turn()
    previous_ids: list[int] = []
    for step_no in range(1, 11):
        with_session = engine.generate(messages, config=GREEDY, session_id="agent-run")
        without = engine.generate(messages, config=GREEDY)
        assert with_session.text == without.text
        assert without.cached_tokens == 0
        if previous_ids:  # reused up to the previous generation prompt's <|im_start|>
            assert with_session.cached_tokens == len(previous_ids) - 1 - previous_ids[::-1].index(im_start)
        previous_ids = engine.prepare(messages).input_ids[0].tolist()
        session = engine.sessions.get("agent-run")
        # Generated tokens stay in the cache: all but the last sampled one were fed back.
        fed = len(session.token_ids) - with_session.prompt_tokens
        assert fed == with_session.generated_tokens - 1
        assert kv_length(session.cache) == len(session.token_ids)
        messages = messages + next_turn(step_no, with_session.text)
    assert "agent-run" in engine.sessions


def test_cancelled_generation_keeps_a_consistent_session(engine) -> None:
    import threading

    engine.sessions.clear()
    cancel = threading.Event()
    cancel.set()
    messages = first_turn()
    result = engine.generate(messages, config=GREEDY, session_id="c", cancel=cancel)
    assert result.finish_reason == "cancelled"
    session = engine.sessions.get("c")
    # Stop before the first prefill chunk (engine/prefill.py): nothing ran, and the session says so.
    assert session.token_ids == [] and session.cache is None and result.generated_tokens == 0
    messages = messages + next_turn(1, "Clicked.")
    assert engine.generate(messages, config=GREEDY, session_id="c").text == engine.generate(messages, config=GREEDY).text


def test_restoring_a_snapshot_puts_every_layer_back(engine) -> None:
    prompt = engine.prepare(first_turn() + next_turn(1, "Clicked."))
    from engine.session import segment_runner

    run = segment_runner(
        engine.model, prompt.input_ids, prompt.position_ids, prompt.mm_token_type_ids, prompt.pixel_values,
        prompt.image_grid_thw, merge_size=2, device="cpu", dtype=torch.float32,
    )
    boundary = prompt.input_ids[0].tolist().index(engine.tokenizer.convert_tokens_to_ids("<|im_start|>"), 1)
    _, cache = run(0, boundary, None)  # the system turn, then a snapshot, then the rest
    snapshot = take_snapshot(cache, boundary)
    kv_before = [layer.keys.clone() for layer in cache.layers if not hasattr(layer, "recurrent_states")]
    run(boundary, prompt.length, cache)
    assert kv_length(cache) == prompt.length
    restore_snapshot(cache, snapshot)
    assert kv_length(cache) == boundary
    for index, (conv, recurrent) in snapshot.states.items():
        assert torch.equal(cache.layers[index].conv_states[0], conv)
        assert torch.equal(cache.layers[index].recurrent_states[0], recurrent)
    kv_after = [layer.keys for layer in cache.layers if not hasattr(layer, "recurrent_states")]
    assert all(torch.equal(a, b) for a, b in zip(kv_before, kv_after))
    text = engine.model.config.text_config
    assert len(snapshot.states) == sum(t == "linear_attention" for t in text.layer_types)


@pytest.mark.parametrize("model_type", ["qwen3_5", "qwen3_vl", "qwen2_5_vl"])
def test_sessions_on_the_other_model_types(tmp_path, model_type: str) -> None:
    """Dense Qwen3.5 (hybrid cache), Qwen3-VL and Qwen2.5-VL (KV only, other M-RoPE / patch 14)."""
    from tests.test_engine_families import _checkpoint  # small random checkpoints of each type

    other = load_engine(str(_checkpoint(tmp_path, model_type)), device="cpu", dtype="fp32")
    try:
        store = SessionStore()
        messages = first_turn()
        for step_no in range(1, 4):
            step, _, text = check_against_full_prefill(other, store, "run", messages)
            if step_no > 1:
                assert step.cached_tokens > 0
            messages = messages + next_turn(step_no, f"Clicked {step_no}: {text!r}")
    finally:
        other.close()
