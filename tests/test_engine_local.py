"""LocalEngine on the shipped tiny qwen3_5_moe checkpoint: real transformers classes, real generation on CPU."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image

from engine import load_engine
from engine.api import Engine, GenerationConfig, smart_resize, split_thinking
from engine.errors import EngineError
from engine.local import LocalEngine

USER = [{"role": "system", "content": "You are a GUI agent."}, {"role": "user", "content": "Open the settings."}]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    eng = load_engine("tiny", device="cpu")
    yield eng
    eng.close()


def _screenshot(width: int = 320, height: int = 200) -> Image.Image:
    img = Image.new("RGB", (width, height), (240, 240, 240))
    img.paste((30, 90, 200), (width // 2, height // 2, width // 2 + 40, height // 2 + 20))
    return img


def _with_image(width: int = 320, height: int = 200):
    return [
        {"role": "system", "content": "You are a GUI agent."},
        {"role": "user", "content": [{"type": "image", "image": _screenshot(width, height)},
                                     {"type": "text", "text": "Click the blue button."}]},
    ]


def test_load_tiny_reports_what_callers_need(engine):
    assert isinstance(engine, Engine)
    assert engine.info.spec == "tiny"
    assert engine.info.model_type == "qwen3_5_moe"
    assert engine.info.coord_space == "norm1000"
    assert engine.info.vision.factor == 32
    assert engine.dtype == torch.float32  # CPU default
    assert set(engine.kernels) == {"gated_delta_rule", "causal_conv1d"}
    assert engine.threads == 1  # a tiny model on CPU runs single-threaded
    assert type(engine.model).__name__ == "Qwen3_5MoeForConditionalGeneration"


def test_generate_with_an_image_counts_visual_tokens(engine):
    result = engine.generate(_with_image(320, 200), config=GenerationConfig(max_new_tokens=6))
    w, h = smart_resize(320, 200, engine.info.vision)
    assert result.visual_tokens == (w // 32) * (h // 32)
    assert result.prompt_tokens > result.visual_tokens
    assert 1 <= result.generated_tokens <= 6
    assert result.finish_reason in ("length", "stop")
    assert set(result.timings) == {"preprocess", "prefill", "decode", "total"}
    assert all(v >= 0 for v in result.timings.values())


def test_the_prompt_is_the_chat_template_with_one_pad_per_visual_token(engine):
    prompt = engine.prepare(_with_image(640, 400), enable_thinking=False)
    assert prompt.text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert prompt.text.count("<|image_pad|>") == 1
    pad = engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((prompt.input_ids == pad).sum()) == prompt.visual_tokens == 20 * 12  # 640x400 → 640x384
    assert prompt.position_ids.shape == (4, 1, prompt.length)
    # M-RoPE: the 240 image tokens use a 20x12 grid of positions, so later text positions run ahead by less
    assert prompt.rope_delta == -(prompt.visual_tokens - 20)


def test_prompt_patches_are_what_transformers_image_processor_makes(engine):
    from transformers import Qwen2VLImageProcessorPil

    v = engine.info.vision
    reference = Qwen2VLImageProcessorPil(
        patch_size=v.patch_size, merge_size=v.merge_size, temporal_patch_size=v.temporal_patch_size,
        size={"shortest_edge": v.min_pixels, "longest_edge": v.max_pixels},
        image_mean=list(v.image_mean), image_std=list(v.image_std),
    )(images=[_screenshot(640, 384)], return_tensors="pt")
    prompt = engine.prepare(_with_image(640, 384))
    assert torch.equal(prompt.image_grid_thw, reference["image_grid_thw"])
    assert torch.allclose(prompt.pixel_values, reference["pixel_values"], atol=1e-5)  # no resize at 640x384


def test_greedy_is_deterministic_and_streaming_equals_non_streaming(engine):
    config = GenerationConfig(max_new_tokens=24)
    plain = engine.generate(USER, config=config)
    deltas = []
    streamed = engine.generate(USER, config=config, on_delta=deltas.append)
    assert streamed.text == plain.text
    assert (streamed.thinking, streamed.answer) == (plain.thinking, plain.answer)
    assert deltas and "".join(d.text for d in deltas).strip() == plain.text.strip()
    assert "".join(d.text for d in deltas if d.kind == "answer").strip() == plain.answer


@pytest.mark.parametrize("thinking", [True, False])
def test_thinking_split_matches_the_prompt_mode(engine, thinking):
    deltas = []
    result = engine.generate(USER, config=GenerationConfig(max_new_tokens=24, enable_thinking=thinking),
                             on_delta=deltas.append)
    # thinking on: the prompt opened <think>, so the completion continues the thinking block
    expected = split_thinking(("<think>" if thinking else "") + result.text)
    assert (result.thinking, result.answer) == expected
    if "</think>" not in result.text:
        assert {d.kind for d in deltas} == {"thinking" if thinking else "answer"}


def test_cancellation_stops_within_one_token(engine):
    cancel = threading.Event()
    deltas = []

    def on_delta(delta):
        deltas.append(delta)
        cancel.set()

    result = engine.generate(USER, config=GenerationConfig(max_new_tokens=64), on_delta=on_delta, cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens <= len(deltas) + 1 < 64


def test_cancel_set_before_the_call_generates_nothing(engine):
    cancel = threading.Event()
    cancel.set()
    result = engine.generate(USER, config=GenerationConfig(max_new_tokens=16), cancel=cancel)
    assert result.finish_reason == "cancelled" and result.generated_tokens == 0 and result.text == ""


def test_stop_string_cuts_the_text_before_it(engine):
    free = engine.generate(USER, config=GenerationConfig(max_new_tokens=40))
    assert len(free.text) >= 12, free.text
    stop = free.text[8:11]
    deltas = []
    stopped = engine.generate(USER, config=GenerationConfig(max_new_tokens=40, stop=(stop,)), on_delta=deltas.append)
    assert stopped.finish_reason == "stop_string"
    assert stopped.text == free.text[: free.text.find(stop)]
    assert stop not in "".join(d.text for d in deltas)
    assert stopped.generated_tokens < free.generated_tokens


def test_seeded_sampling_is_reproducible(engine):
    def sample(seed):
        config = GenerationConfig(max_new_tokens=20, temperature=1.5, top_k=200, top_p=0.98, seed=seed,
                                  repetition_penalty=1.1, presence_penalty=0.3)
        return engine.generate(USER, config=config).text

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first  # near-uniform logits over ~1.5k tokens: two seeds agreeing on 20 tokens is ~impossible


def test_max_new_tokens_bounds_the_generation(engine):
    result = engine.generate(USER, config=GenerationConfig(max_new_tokens=3))
    assert result.generated_tokens <= 3
    if result.finish_reason == "length":
        assert result.generated_tokens == 3


def test_generation_restores_the_callers_thread_setting(engine):
    before = torch.get_num_threads()
    engine.generate(USER, config=GenerationConfig(max_new_tokens=2))
    assert torch.get_num_threads() == before


def test_device_map_auto_loads_through_accelerate_and_generates_the_same(engine):
    mapped = load_engine("tiny", device_map="auto", dtype="fp32")
    try:
        assert {p.device.type for p in mapped.model.parameters()} == {"cpu"}  # the only device here
        config = GenerationConfig(max_new_tokens=8)
        assert mapped.generate(USER, config=config).text == engine.generate(USER, config=config).text
    finally:
        mapped.close()
    with pytest.raises(EngineError, match="was closed"):
        mapped.generate(USER)


def test_timeout_raises_engine_error(engine):
    with pytest.raises(EngineError, match="timeout_s"):
        engine.generate(USER, config=GenerationConfig(max_new_tokens=50, timeout_s=1e-9))


def test_concurrent_callers_are_serialised(engine):
    config = GenerationConfig(max_new_tokens=12)
    expected = engine.generate(USER, config=config).text
    results: list[str] = []
    errors: list[BaseException] = []

    def call():
        try:
            results.append(engine.generate(USER, config=config).text)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [expected] * 3


def test_tool_call_history_is_accepted_with_json_string_arguments(engine):
    tools = [{"type": "function", "function": {"name": "computer_use", "parameters": {"type": "object"}}}]
    messages = USER + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "computer_use",
                                              "arguments": '{"action": "left_click", "coordinate": [10, 20]}'}}]},
        {"role": "tool", "content": "clicked"},
    ]
    text = engine.prepare(messages, tools=tools).text
    assert "<parameter=coordinate>\n[10, 20]\n</parameter>" in text
    assert "<|im_start|>user\n<tool_response>\nclicked\n</tool_response><|im_end|>" in text


def test_bad_messages_get_one_line_errors(engine):
    with pytest.raises(EngineError, match="PIL.Image"):
        engine.generate([{"role": "user", "content": [{"type": "image", "image": "shot.png"}]}])
    with pytest.raises(EngineError, match="image_url parts are for remote servers"):
        engine.generate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}])
    with pytest.raises(EngineError, match="No user query"):
        engine.generate([{"role": "system", "content": "only a system turn"}])
    with pytest.raises(EngineError, match="max_new_tokens"):
        engine.generate(USER, config=GenerationConfig(max_new_tokens=0))
    with pytest.raises(EngineError, match="temperature"):
        engine.generate(USER, config=GenerationConfig(temperature=-1))


_DENORMALS = r'''
import json, threading
import torch
from engine import load_engine
from engine.api import GenerationConfig
from engine.devices import flush_denormals

def kept():  # is a denormal float32 kept (True) or read as zero (False), in the calling thread?
    return (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() != 0.0

supported = torch.set_flush_denormal(False)  # the default; True when this CPU can flush at all
out = {"supported": supported, "before": kept()}
with flush_denormals("cpu"):
    out["inside"] = kept()
    inner = {}
    t = threading.Thread(target=lambda: inner.__setitem__("v", kept())); t.start(); t.join()
    out["thread_started_inside"] = inner["v"]
out["after"] = kept()
engine = load_engine("tiny", device="cpu")
out["after_load"] = kept()
seen = []
engine.model.register_forward_pre_hook(lambda module, args: seen.append(kept()))
worker = {}
def generate():  # a worker thread, as a dashboard's or an evaluation's
    engine.generate([{"role": "user", "content": "Open the settings."}], config=GenerationConfig(max_new_tokens=2))
    worker["after_generate"] = kept()
t = threading.Thread(target=generate); t.start(); t.join()
out["during_generate"] = seen
out.update(worker)
print(json.dumps(out))
'''


def test_the_engine_reads_denormal_floats_as_zero_while_it_works_and_leaves_the_caller_alone():
    """Trained tiny weights drive values into the denormal range, many times slower on x86 (engine/devices.py
    flush_denormals): inside the scope denormals read as zero (also in threads started there), every forward of a
    generation runs so, and the caller's setting is back afterwards — loading changes nothing (hypothesis, for
    one, refuses to run where subnormals are off). A fresh process, so no other test's setting counts."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", _DENORMALS], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["supported"]:
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal returned False)")
    assert out["before"]  # the probe sees denormals where nothing flushed
    assert not out["inside"] and not out["thread_started_inside"]
    assert out["after"] and out["after_load"]
    assert out["during_generate"] and not any(out["during_generate"])  # every forward of the generation
    assert out["after_generate"]


def test_training_mode_never_kernelizes_from_the_hub(monkeypatch):
    """transformers (5.25) kernelizes a model loaded with its default use_kernels=True from the Hugging Face Hub's
    kernel repositories whenever it enters training mode; on a lent GPU with no network `model.train()` then failed
    (docs/gpu.md). The engine loads with use_kernels=False, so switching modes never asks for hub kernels."""
    eng = load_engine("tiny", device="cpu")
    calls = []
    monkeypatch.setattr(type(eng.model), "set_use_kernels", lambda self, *a, **k: calls.append((a, k)))
    assert eng.model.use_kernels is False
    eng.model.train()
    eng.model.eval()
    assert calls == []
    eng.close()


@pytest.mark.parametrize("capability, triton, tilelang, refused", [
    ((9, 0), "3.6.0", False, True),   # the lent H200: torch 2.11's Triton 3.6, fla 0.6 refused the backward pass
    ((9, 0), "3.4.0", False, True),
    ((9, 0), "3.7.1", False, False),  # fixed Triton
    ((9, 0), "3.6.0", True, False),   # tilelang takes the kernel
    ((8, 0), "3.6.0", False, False),  # not Hopper
    ((9, 0), "3.3.1", False, False),
])
def test_fused_training_problem_names_flas_hopper_refusal(capability, triton, tilelang, refused):
    from engine.devices import fused_training_problem

    problem = fused_training_problem("cuda", fla=True, capability=capability, triton=triton, tilelang=tilelang)
    assert (problem is not None) == refused
    if refused:
        assert triton in problem and "\n" not in problem and "tilelang" in problem
    assert fused_training_problem("cpu", fla=True, capability=capability, triton=triton, tilelang=tilelang) is None
    assert fused_training_problem("cuda", fla=False, capability=capability, triton=triton, tilelang=tilelang) is None
