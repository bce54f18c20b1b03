"""The other supported model types load and generate through the same Auto classes and LocalEngine path.

Each test writes a small random checkpoint of that type (transformers' own config and model classes,
saved with save_pretrained) next to the tiny checkpoint's tokenizer and chat template.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine import load_engine, tiny_checkpoint_path
from engine.api import GenerationConfig, smart_resize

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _tokens() -> dict[str, int]:
    config = json.loads((tiny_checkpoint_path() / "config.json").read_text())
    keys = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return {k: config[k] for k in keys} | {"vocab": config["text_config"]["vocab_size"],
                                           "eos": config["text_config"]["eos_token_id"]}


def _qwen3_5(ids):
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    text = dict(vocab_size=ids["vocab"], hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                layer_types=["linear_attention"] * 3 + ["full_attention"], num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4,
                linear_key_head_dim=16, linear_value_head_dim=16, eos_token_id=ids["eos"], bos_token_id=None,
                rope_parameters={"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                                 "mrope_section": [1, 1, 0], "mrope_interleaved": True})
    vision = dict(depth=1, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                  patch_size=16, spatial_merge_size=2, num_position_embeddings=256)
    return Qwen3_5ForConditionalGeneration(Qwen3_5Config(text_config=text, vision_config=vision, **_ids(ids))), 16


def _qwen3_vl(ids):
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    text = dict(vocab_size=ids["vocab"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, eos_token_id=ids["eos"], bos_token_id=None,
                rope_parameters={"rope_type": "default", "rope_theta": 5000000, "mrope_section": [4, 2, 2],
                                 "mrope_interleaved": True})
    vision = dict(depth=1, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=16,
                  spatial_merge_size=2, num_position_embeddings=256, deepstack_visual_indexes=[0])
    return Qwen3VLForConditionalGeneration(Qwen3VLConfig(text_config=text, vision_config=vision, **_ids(ids))), 16


def _qwen2_5_vl(ids):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = dict(vocab_size=ids["vocab"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, eos_token_id=ids["eos"], bos_token_id=None,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000, "mrope_section": [2, 3, 3]})
    vision = dict(depth=1, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=14,
                  spatial_merge_size=2, window_size=112, fullatt_block_indexes=[0])
    return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision, **_ids(ids))), 14


def _ids(ids):
    return {k: ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}


BUILDERS = {"qwen3_5": (_qwen3_5, "norm1000"), "qwen3_vl": (_qwen3_vl, "norm1000"),
            "qwen2_5_vl": (_qwen2_5_vl, "resized")}


def _checkpoint(root: Path, model_type: str) -> Path:
    import torch

    out = root / model_type
    out.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(tiny_checkpoint_path() / name, out / name)
    torch.manual_seed(0)
    model, patch = BUILDERS[model_type][0](_tokens())
    model.save_pretrained(str(out))
    mean, std = ([0.5] * 3, [0.5] * 3) if patch == 16 else (CLIP_MEAN, CLIP_STD)
    (out / "preprocessor_config.json").write_text(json.dumps({
        "patch_size": patch, "merge_size": 2, "temporal_patch_size": 2, "image_mean": mean, "image_std": std,
        "size": {"shortest_edge": 64 * (2 * patch) ** 2, "longest_edge": 1024 * (2 * patch) ** 2}}))
    return out


@pytest.mark.parametrize("model_type", sorted(BUILDERS))
def test_model_type_loads_and_generates_with_its_coordinate_space(tmp_path, model_type):
    path = _checkpoint(tmp_path, model_type)
    engine = load_engine(str(path), device="cpu")
    try:
        assert engine.info.model_type == model_type
        assert engine.info.coord_space == BUILDERS[model_type][1]
        factor = 28 if model_type == "qwen2_5_vl" else 32
        assert engine.info.vision.factor == factor
        messages = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (300, 200), (9, 99, 9))},
                                                 {"type": "text", "text": "Where is the button?"}]}]
        result = engine.generate(messages, config=GenerationConfig(max_new_tokens=4))
        w, h = smart_resize(300, 200, engine.info.vision)
        assert result.visual_tokens == (w // factor) * (h // factor)
        assert 1 <= result.generated_tokens <= 4
    finally:
        engine.close()
