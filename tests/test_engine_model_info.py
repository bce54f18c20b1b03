"""`visagent model-info` describes a checkpoint from config.json alone (model on the meta device, no weights)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.errors import CheckpointError
from engine.model_info import model_info

FIXTURE = Path(__file__).parent / "fixtures" / "qwen3.5-35b-a3b"


@pytest.fixture(scope="module")
def info_35b():
    return model_info(FIXTURE)


def test_fixture_directory_holds_only_the_config():
    assert [p.name for p in FIXTURE.iterdir()] == ["config.json"]


def test_layers_of_qwen35_35b_a3b(info_35b):
    assert len(info_35b.layer_types) == 40
    assert info_35b.layer_types.count("linear_attention") == 30
    assert [i for i, t in enumerate(info_35b.layer_types) if t == "full_attention"] == list(range(3, 40, 4))


def test_experts_and_parameters_of_qwen35_35b_a3b(info_35b):
    assert (info_35b.experts_total, info_35b.experts_per_token, info_35b.shared_experts) == (256, 8, 1)
    assert 34.5e9 < info_35b.total_params < 36e9  # "35B"
    # active = total minus the 248 of 256 routed experts a token skips (3 x 2048 x 512 params each, 40 layers)
    skipped = 40 * 248 * 3 * 2048 * 512
    assert info_35b.active_params == info_35b.total_params - skipped
    assert info_35b.mtp_layers == 1


def test_context_and_screenshot_cost_of_qwen35_35b_a3b(info_35b):
    assert info_35b.context_length == 262144
    assert info_35b.screen_resized == (1920, 1088)
    assert info_35b.screen_visual_tokens == 2040


def test_cli_prints_the_summary(tmp_path, capsys):
    from visagent.cli import main

    only_config = tmp_path / "model"
    only_config.mkdir()
    shutil.copy(FIXTURE / "config.json", only_config / "config.json")
    assert main(["model-info", str(only_config)]) == 0
    out = capsys.readouterr().out
    assert "40 = 30 linear_attention (Gated DeltaNet) + 10 full_attention" in out
    assert "256 routed per layer, 8 per token, 1 shared" in out
    assert "262144 tokens" in out
    assert "1920x1080 → 1920x1088 = 2040 visual tokens" in out
    assert "agent prompt" not in out  # a released checkpoint declares no prompt of its own

    (only_config / "visagent.json").write_text(json.dumps({"prompt_profile": "compact", "history_images": 2}))
    assert main(["model-info", str(only_config)]) == 0
    assert "agent prompt:    compact profile (visagent.json), at most 2 screenshots per prompt" in capsys.readouterr().out
    assert main(["model-info", str(only_config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["prompt_profile"], data["history_images"]) == ("compact", 2)


def test_cli_json_for_the_tiny_checkpoint(capsys):
    from visagent.cli import main

    assert main(["model-info", "tiny", "--json", "--check"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_type"] == "qwen3_5_moe"
    assert {"linear_attention", "full_attention"} <= set(data["layer_types"])
    assert data["active_params"] < data["total_params"]
    assert data["weight_bytes"] > 0


def test_unsupported_model_type_is_one_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="'gpt2'.*not supported"):
        model_info(tmp_path)
