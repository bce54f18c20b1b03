"""A bad checkpoint directory gets one clear CheckpointError (and one CLI line, exit 2), never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from engine import load_engine, tiny_checkpoint_path
from engine.checkpoint import FAMILIES, inspect_checkpoint
from engine.errors import CheckpointError


@pytest.fixture
def ckpt(tmp_path):
    """A copy of the shipped tiny checkpoint that a test may damage."""
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint_path(), dst)
    return dst


def _error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        inspect_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_shipped_tiny_checkpoint_is_valid():
    info = inspect_checkpoint(tiny_checkpoint_path())
    assert info.model_type == "qwen3_5_moe"
    assert info.family.coord_space == "norm1000"
    assert info.vision.factor == 32
    assert info.chat_template.name == "chat_template.jinja"
    assert info.weight_bytes == sum(f.stat().st_size for f in info.weight_files)


def test_missing_directory(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope")


def test_no_config_json(ckpt):
    (ckpt / "config.json").unlink()
    assert "no config.json" in _error(ckpt)


def test_config_json_not_json(ckpt):
    (ckpt / "config.json").write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in _error(ckpt)


def test_unknown_model_type_names_the_supported_ones(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["model_type"] = "llama"
    (ckpt / "config.json").write_text(json.dumps(config))
    message = _error(ckpt)
    assert "'llama'" in message
    for model_type in ("qwen3_5_moe", "qwen3_5", "qwen3_vl", "qwen3_vl_moe", "qwen2_5_vl"):
        assert model_type in message


def test_no_weights(ckpt):
    (ckpt / "model.safetensors").unlink()
    assert "no weights" in _error(ckpt)


def test_truncated_weights(ckpt):
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    message = _error(ckpt)
    assert "truncated" in message and "model.safetensors" in message


def test_shard_listed_in_index_but_missing(ckpt):
    index = {"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                                            "b.weight": "model-00002-of-00002.safetensors"}}
    (ckpt / "model.safetensors").rename(ckpt / "model-00001-of-00002.safetensors")
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    message = _error(ckpt)
    assert "1 of 2 weight shards" in message and "model-00002-of-00002.safetensors" in message


def test_no_tokenizer(ckpt):
    (ckpt / "tokenizer.json").unlink()
    assert "no tokenizer" in _error(ckpt)


def test_no_chat_template(ckpt):
    (ckpt / "chat_template.jinja").unlink()
    assert "no chat template" in _error(ckpt)


def test_chat_template_inside_tokenizer_config_is_accepted(ckpt):
    template = (ckpt / "chat_template.jinja").read_text()
    (ckpt / "chat_template.jinja").unlink()
    config = json.loads((ckpt / "tokenizer_config.json").read_text())
    config["chat_template"] = template
    (ckpt / "tokenizer_config.json").write_text(json.dumps(config))
    assert inspect_checkpoint(ckpt).chat_template.name == "tokenizer_config.json"


def test_families_record_their_coordinate_space_and_token_size():
    assert FAMILIES["qwen3_5_moe"].default_vision().factor == 32
    assert FAMILIES["qwen3_vl"].coord_space == "norm1000"
    assert FAMILIES["qwen2_5_vl"].coord_space == "resized"
    assert FAMILIES["qwen2_5_vl"].default_vision().factor == 28


def test_load_engine_reports_a_bad_directory_before_loading(ckpt):
    (ckpt / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_engine(str(ckpt))


def test_load_engine_rejects_a_spec_that_is_nothing(tmp_path):
    with pytest.raises(CheckpointError, match="neither 'tiny'"):
        load_engine(str(tmp_path / "missing-model"))


@pytest.mark.parametrize("damage, expected", [("config", "no config.json"), ("weights", "truncated"),
                                              ("template", "no chat template")])
def test_cli_prints_one_line_and_exits_2(ckpt, capsys, damage, expected):
    from visagent.cli import main

    if damage == "config":
        (ckpt / "config.json").unlink()
    elif damage == "weights":
        weights = ckpt / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        (ckpt / "chat_template.jinja").unlink()
    assert main(["model-info", str(ckpt), "--check"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("visagent: error:") and expected in lines[0]


def test_cli_subprocess_exits_2_without_a_traceback(tmp_path, visagent_bin):
    proc = subprocess.run([visagent_bin, "model-info", str(tmp_path), "--check"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"visagent: error: no config.json in {tmp_path}: not a Hugging Face "
                                                "checkpoint directory"]


def test_load_engine_sends_urls_to_the_remote_engine():
    from engine.remote import RemoteEngine

    engine = load_engine("http://127.0.0.1:9/v1", model_name="qwen3.5-35b", api_key="k")  # nothing listens: lazy
    assert isinstance(engine, RemoteEngine)
    assert engine.info.spec == "http://127.0.0.1:9/v1"


def test_history_window_comes_from_visagent_json(ckpt):
    """A checkpoint trained on prompts with N screenshots says so in visagent.json (the agent keeps to it);
    released checkpoints declare none; a bad value is a one-line error naming the file, not a silent default."""
    (ckpt / "visagent.json").unlink(missing_ok=True)
    assert inspect_checkpoint(ckpt).history_images is None
    (ckpt / "visagent.json").write_text(json.dumps({"prompt_profile": "compact", "history_images": 1}))
    info = inspect_checkpoint(ckpt)
    assert (info.history_images, info.prompt_profile) == (1, "compact")
    for bad in (0, "2", True, 1.5):
        (ckpt / "visagent.json").write_text(json.dumps({"history_images": bad}))
        assert "history_images must be a whole number >= 1" in _error(ckpt)
    (ckpt / "visagent.json").write_text("[1]")
    assert "visagent.json must hold a JSON object" in _error(ckpt)
    (ckpt / "visagent.json").unlink()


def test_prompt_profile_comes_from_visagent_json(ckpt):
    (ckpt / "visagent.json").unlink(missing_ok=True)
    assert inspect_checkpoint(ckpt).prompt_profile == "full"  # released checkpoints have no such file
    (ckpt / "visagent.json").write_text(json.dumps({"prompt_profile": "compact"}))
    assert inspect_checkpoint(ckpt).prompt_profile == "compact"
    (ckpt / "visagent.json").write_text(json.dumps({"prompt_profile": "short"}))
    assert "prompt_profile must be one of full, compact" in _error(ckpt)
    (ckpt / "visagent.json").write_text("{not json")
    assert "visagent.json is not valid JSON" in _error(ckpt)
