"""`visagent tiny --out DIR` builds a complete qwen3_5_moe checkpoint that loads through the real-checkpoint path,
and its chat template renders Qwen3.5's conversation format."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoConfig, AutoTokenizer

from engine import tiny_checkpoint_path
from engine.checkpoint import inspect_checkpoint
from engine.tiny import SPECIAL_TOKENS, TEXT_TOKENS, build_tiny_checkpoint, train_tokenizer

TOOLS = [{"type": "function", "function": {"name": "computer_use", "description": "Use the mouse.",
                                           "parameters": {"type": "object", "properties": {"action": {"type": "string"}},
                                                          "required": ["action"]}}}]
TOOL_JSON = ('{"type": "function", "function": {"name": "computer_use", "description": "Use the mouse.", '
             '"parameters": {"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}}}')
TOOL_INSTRUCTIONS = (
    "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested "
    "within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function call, "
    "but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge and do "
    "not tell the user about function calls\n</IMPORTANT>"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory, visagent_bin_module):
    """One checkpoint built by the CLI for this module (the corpus comes from visagent itself)."""
    out = tmp_path_factory.mktemp("tiny") / "ckpt"
    proc = subprocess.run([visagent_bin_module, "tiny", "--out", str(out), "--seed", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "rendered actions" in proc.stdout
    return out


@pytest.fixture(scope="module")
def visagent_bin_module():
    import sys
    from pathlib import Path

    path = Path(sys.executable).parent / "visagent"
    assert path.exists(), f"visagent console script not found at {path}; run scripts/setup.sh"
    return str(path)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(tiny_checkpoint_path()))


def test_cli_builds_every_file_a_real_checkpoint_has(built):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "preprocessor_config.json", "processor_config.json", "generation_config.json"):
        assert (built / name).is_file(), name
    total = sum(f.stat().st_size for f in built.iterdir())
    assert total < 20_000_000
    assert inspect_checkpoint(built).model_type == "qwen3_5_moe"


def test_architecture_is_hybrid_moe_with_a_vision_tower(built):
    config = AutoConfig.from_pretrained(str(built))
    text, vision = config.text_config, config.vision_config
    assert config.model_type == "qwen3_5_moe"
    assert {"linear_attention", "full_attention"} <= set(text.layer_types)
    assert text.num_experts > text.num_experts_per_tok >= 2
    assert text.shared_expert_intermediate_size > 0
    assert (vision.patch_size, vision.spatial_merge_size) == (16, 2)
    with safe_open(str(built / "model.safetensors"), "pt") as f:
        names = list(f.keys())
        assert f.get_tensor(names[0]).dtype.is_floating_point
    assert any(".mlp.experts." in n for n in names) and any(".mlp.shared_expert." in n for n in names)
    assert any("linear_attn" in n for n in names) and any("self_attn" in n for n in names)
    assert any(n.startswith("model.visual.") for n in names)


def test_token_ids_in_config_match_the_tokenizer(built):
    config = json.loads((built / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(built))
    assert config["image_token_id"] == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config["video_token_id"] == tok.convert_tokens_to_ids("<|video_pad|>")
    assert config["vision_start_token_id"] == tok.convert_tokens_to_ids("<|vision_start|>")
    assert config["vision_end_token_id"] == tok.convert_tokens_to_ids("<|vision_end|>")
    assert config["text_config"]["vocab_size"] >= len(tok)
    eos = json.loads((built / "generation_config.json").read_text())["eos_token_id"]
    assert tok.convert_tokens_to_ids("<|im_end|>") in eos


def test_the_same_seed_builds_the_same_checkpoint(tmp_path):
    corpus = ["Click the OK button at [120, 480].", "The answer is 42."] * 20
    a = build_tiny_checkpoint(tmp_path / "a", corpus, seed=3, num_hidden_layers=4, vision_depth=1)
    b = build_tiny_checkpoint(tmp_path / "b", corpus, seed=3, num_hidden_layers=4, vision_depth=1)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    with pytest.raises(ValueError, match="not hybrid"):
        build_tiny_checkpoint(tmp_path / "c", corpus, num_hidden_layers=3, full_attention_interval=4)
    with pytest.raises(ValueError, match="unknown tiny checkpoint size"):
        build_tiny_checkpoint(tmp_path / "d", corpus, hidden=64)


def test_digits_are_split_one_per_token(tokenizer):
    assert [t for t in tokenizer.tokenize("[1234, 567]") if t.isdigit()] == ["1", "2", "3", "4", "5", "6", "7"]


def test_number_tokens_spell_every_coordinate_value_as_one_token():
    corpus = ["Click the OK button at [120, 480].", "<parameter=coordinate>\n[12, 7]\n</parameter>"] * 20
    tok = train_tokenizer(corpus, vocab_size=4096, numbers=1000)
    assert all(len(tok.encode(str(n)).ids) == 1 for n in range(1001))
    enc = tok.encode("[1000, 523] in 2026")
    assert [t for t in enc.tokens if t.isdigit()] == ["1000", "523", "202", "6"]  # leftmost, longest
    assert tok.decode(enc.ids) == "[1000, 523] in 2026"
    plain = train_tokenizer(corpus, vocab_size=4096)
    assert [t for t in plain.encode("[1000, 5]").tokens if t.isdigit()] == ["1", "0", "0", "0", "5"]


def test_a_negative_number_token_count_is_refused_in_one_line(tmp_path, capsys):
    from visagent.cli import main

    with pytest.raises(ValueError, match="number_tokens"):
        build_tiny_checkpoint(tmp_path / "n", ["x 1"], number_tokens=-1)
    assert main(["train-tiny", "--out", str(tmp_path / "w"), "--number-tokens", "-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--number-tokens -3" in err[0]
    assert not (tmp_path / "w").exists()  # refused before any data or base is written


def test_number_tokens_start_from_a_code_that_makes_near_numbers_near(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    corpus = ["Click the OK button at [120, 480]."] * 20
    out = build_tiny_checkpoint(tmp_path / "n", corpus, num_hidden_layers=2, full_attention_interval=2,
                                vision_depth=1, number_tokens=1000)
    tok = AutoTokenizer.from_pretrained(out)  # transformers' Qwen3.5 class, which rebuilds Qwen's digit split
    assert tok.tokenize("[1000, 523]") == ["[", "1000", ",", "Ġ", "523", "]"]
    assert tok.decode(tok("<tool_call>[7, 99]</tool_call>")["input_ids"]) == "<tool_call>[7, 99]</tool_call>"
    weights = load_file(out / "model.safetensors")
    head = next(v for k, v in weights.items() if k.endswith("lm_head.weight")).float()
    row = {n: head[tok.convert_tokens_to_ids(str(n))] for n in (400, 410, 900)}
    cos = torch.nn.functional.cosine_similarity
    assert cos(row[400], row[410], dim=0) > 0.8 > 0.2 > cos(row[400], row[900], dim=0)
    other = head[tok.convert_tokens_to_ids("Click")]
    assert abs(float(cos(row[400], other, dim=0))) < 0.5


def test_qwen_tokens_are_single_tokens_and_control_tokens_are_skipped_when_decoding(tokenizer):
    for token in (*SPECIAL_TOKENS, *TEXT_TOKENS):
        assert tokenizer.tokenize(token) == [token]
    ids = tokenizer("<think>\nhm\n</think>\n\n<tool_call>\nx\n</tool_call><|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>\nhm\n</think>\n\n<tool_call>\nx\n</tool_call>"
    assert tokenizer.decode(tokenizer("héllo wörld ✓")["input_ids"]) == "héllo wörld ✓"


def _render(tokenizer, messages, **kwargs):
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def test_template_puts_tools_in_the_system_turn(tokenizer):
    text = _render(tokenizer, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                   tools=TOOLS, add_generation_prompt=True, enable_thinking=False)
    assert text == (
        "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n<tools>\n" + TOOL_JSON
        + "\n</tools>\n\n" + TOOL_INSTRUCTIONS + "\n\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_template_thinking_on_and_off(tokenizer):
    messages = [{"role": "user", "content": "hi"}]
    assert _render(tokenizer, messages, add_generation_prompt=True, enable_thinking=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert _render(tokenizer, messages, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert _render(tokenizer, messages, add_generation_prompt=True, enable_thinking=False) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_template_writes_xml_tool_calls_and_tool_responses_in_a_user_turn(tokenizer):
    messages = [
        {"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (8, 8))}, {"type": "text", "text": "Save"}]},
        {"role": "assistant", "content": "<think>\nThe save icon.\n</think>\n\nClicking it.",
         "tool_calls": [{"type": "function", "function": {"name": "computer_use", "arguments": {
             "action": "left_click", "coordinate": [120, 40], "text": "two\nlines"}}}]},
        {"role": "tool", "content": "ok"},
        {"role": "tool", "content": [{"type": "image", "image": Image.new("RGB", (8, 8))}]},
    ]
    assert _render(tokenizer, messages, add_generation_prompt=True, enable_thinking=True) == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Save<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nThe save icon.\n</think>\n\nClicking it.\n\n"
        "<tool_call>\n<function=computer_use>\n"
        "<parameter=action>\nleft_click\n</parameter>\n"
        "<parameter=coordinate>\n[120, 40]\n</parameter>\n"
        "<parameter=text>\ntwo\nlines\n</parameter>\n"
        "</function>\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nok\n</tool_response>\n"
        "<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )


def test_template_drops_thinking_of_turns_before_the_last_user_query(tokenizer):
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "<think>r2</think>a2"},
    ]
    assert _render(tokenizer, messages) == (
        "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
        "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n"
    )


def test_template_rejects_what_qwen_rejects(tokenizer):
    from jinja2 import TemplateError

    with pytest.raises(TemplateError, match="No user query"):
        _render(tokenizer, [{"role": "system", "content": "s"}])
    with pytest.raises(TemplateError, match="System message cannot contain images"):
        _render(tokenizer, [{"role": "system", "content": [{"type": "image", "image": Image.new("RGB", (8, 8))}]},
                            {"role": "user", "content": "x"}])


def test_position_code_puts_column_and_row_in_the_first_dimensions():
    import torch

    from engine.tiny import position_code

    grid = torch.randn(16, 40)  # a 4x4 grid, row-major
    out = position_code(grid, 2.0, frequencies=2).view(4, 4, 40)  # code: 5 dims per axis
    u = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    assert torch.allclose(out[:, :, 0], 2 * u[None, :].expand(4, 4))  # column ramp, same on every row
    assert torch.allclose(out[:, :, 5], 2 * u[:, None].expand(4, 4))  # row ramp, same on every column
    assert torch.allclose(out[1, :, 1], 2 * torch.sin(torch.pi * (u + 1) / 2))
    assert torch.equal(out[:, :, 10:], grid.view(4, 4, 40)[:, :, 10:])  # the rest keeps its random draw
    with pytest.raises(ValueError, match="not square"):
        position_code(torch.zeros(15, 40), 1.0)
    with pytest.raises(ValueError, match="needs 34 dimensions"):
        position_code(torch.zeros(16, 20), 1.0)


def test_screenshot_tokens_of_a_fresh_base_carry_their_column(tmp_path):
    """The reason for the code: with transformers' random grid a screenshot token's column cannot be read back
    linearly from the language model's input, so no answer can copy it into click digits."""
    import torch

    from engine.local import LocalEngine

    corpus = ["Click the OK button at [120, 480].", "The answer is 42."] * 20
    image = Image.effect_noise((1024, 640), 24).convert("RGB")  # content differs from token to token; 640 tokens
    errors = {}
    for code in (0.0, 2.0):
        path = build_tiny_checkpoint(tmp_path / str(code), corpus, seed=0, num_hidden_layers=4,
                                     vision_position_code=code)
        engine = LocalEngine(path, spec=str(path), device="cpu", dtype="fp32")
        pixels, grid = engine._preprocess([image])
        with torch.no_grad():
            feats = engine.model.model.get_image_features(pixels, grid)
        tokens = torch.cat(feats.pooler_output).float()
        _, h, w = (int(v) // 2 for v in grid[0])
        column = (torch.arange(h * w) % w).float() / (w - 1)
        x = torch.cat([tokens, torch.ones(len(tokens), 1)], 1)
        fit, test = torch.arange(len(x)) % 2 == 0, torch.arange(len(x)) % 2 == 1
        weights = torch.linalg.solve(x[fit].T @ x[fit] + torch.eye(x.shape[1]), x[fit].T @ column[fit])
        errors[code] = float((x[test] @ weights - column[test]).abs().mean())
    assert errors[2.0] < 0.06, errors  # 32 columns: 1/31 apart
    assert errors[0.0] > 2 * errors[2.0], errors
