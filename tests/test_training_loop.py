"""`visagent train` on the real tiny qwen3_5_moe: loss falls, save/resume continues identically, the output is a
checkpoint load_engine and model-info accept, LoRA runs. Records here are small hand-made ones (a coloured
square to click) in the export record schema, so each step takes a fraction of a second."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
import torch
from PIL import Image, ImageDraw

from engine import load_engine
from visagent.actions import Action
from visagent.parsing import render_action
from visagent.training.examples import build_example, example_loss
from visagent.training.trainer import Trainer, TrainConfig

PIXELS = 64 * 32 * 32  # 64 visual tokens per image


def _records(root, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = Image.new("RGB", (256, 256), "white")
        x, y = rng.randint(20, 200), rng.randint(20, 200)
        ImageDraw.Draw(img).rectangle([x, y, x + 32, y + 32], fill="red")
        img.save(root / "img" / f"{i}.png")
        action = Action("left_click", coordinate=(round((x + 16) / 256 * 1000), round((y + 16) / 256 * 1000)),
                        space="norm1000")
        out.append({"id": str(i), "messages": [
            {"role": "system", "content": "You click things."},
            {"role": "user", "content": [{"type": "image", "image": f"img/{i}.png"},
                                         {"type": "text", "text": "Click the red square."}]}],
            "tools": [], "target": render_action(action, "qwen35", platform="desktop"),
            "meta": {"kind": "grounding" if i % 2 else "trajectory"}})
    (root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    _records(root, 12)
    return root


def _config(data, out, **kw) -> TrainConfig:
    base = dict(base="tiny", data=str(data), out=str(out), steps=6, batch=2, lr=3e-3, warmup=1, save_every=0,
                max_pixels=PIXELS, threads=1, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def _mean_loss(trainer: Trainer) -> float:
    trainer.model.eval()
    with torch.no_grad():
        losses = [float(example_loss(trainer.model, build_example(trainer.engine, r, trainer.root), "cpu"))
                  for r in trainer.records[:6]]
    trainer.model.train()
    return sum(losses) / len(losses)


def test_a_few_steps_lower_the_loss_and_the_output_is_a_checkpoint(data, tmp_path, visagent_bin):
    trainer = Trainer(_config(data, tmp_path / "out", steps=8), progress=False)
    before = _mean_loss(trainer)
    out = trainer.run()
    after = _mean_loss(trainer)
    assert after < before * 0.8, (before, after)
    curve = json.loads((out / "curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [8] and curve["points"][0]["loss"] > 0
    engine = load_engine(str(out), device="cpu")
    assert engine.info.vision.max_pixels == PIXELS  # the training budget travels with the checkpoint
    proc = subprocess.run([visagent_bin, "model-info", str(out), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "check:" in proc.stdout


def test_resume_continues_identically(data, tmp_path):
    straight = Trainer(_config(data, tmp_path / "a", steps=4), progress=False)
    straight.run()
    first = Trainer(_config(data, tmp_path / "b", steps=4, save_every=2), progress=False)
    first.run(until=3)  # interrupted during step 3: checkpoint-2 holds the last state
    assert (tmp_path / "b" / "checkpoint-2" / "trainer_state.pt").is_file()
    resumed = Trainer(_config(data, tmp_path / "b", steps=4, save_every=2, resume=True), progress=False)
    resumed.run()
    assert resumed.step == 4
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(a, b), name
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()


def test_resume_without_a_checkpoint_starts_at_zero(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "c", steps=1, resume=True), progress=False)
    assert trainer.resume() is False and trainer.step == 0


def test_lora_trains_adapters_only_and_saves_merged_weights(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "lora", steps=2, lora=True, lora_rank=4, lr=1e-2), progress=False)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    out = trainer.run()
    engine = load_engine(str(out), device="cpu")
    names = [n for n, _ in engine.model.named_parameters()]
    assert not any("lora_" in n for n in names)


def test_train_command_rejects_a_missing_data_directory(tmp_path, visagent_bin):
    proc = subprocess.run([visagent_bin, "train", "--base", "tiny", "--data", str(tmp_path / "none"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "records.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def test_records_in_another_prompt_profile_are_refused(tmp_path):
    """Records rendered with the full prompt cannot train a base that is prompted compactly (or vice versa):
    the model would be trained on a prompt it never gets."""
    from engine import tiny_checkpoint_path
    from visagent.errors import ConfigError
    from visagent.training.trainer import load_base

    records = _records(tmp_path / "d", 2)
    base_profile = load_base("tiny", "cpu", PIXELS).info.prompt_profile
    other = "full" if base_profile == "compact" else "compact"
    for r in records:
        r["meta"]["prompt_profile"] = other
    (tmp_path / "d" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=f"prompt profile '{other}'.*--prompt-profile {base_profile}"):
        Trainer(_config(tmp_path / "d", tmp_path / "out"), progress=False)
    assert tiny_checkpoint_path().is_dir()


def test_shared_prefix_gives_the_same_loss_and_trains(tmp_path):
    """--share-prefix: the system turn runs once per batch from a cache; the loss of an example is unchanged
    (same tokens, same positions) and a few steps with it still lower the loss."""
    from visagent.training.examples import prefix_cache

    root = tmp_path / "d"
    _records(root, 8, seed=5)
    trainer = Trainer(_config(root, tmp_path / "out", share_prefix=True, steps=5), progress=False)
    example = build_example(trainer.engine, trainer.records[0], trainer.root)
    assert 0 < example.prefix_length < example.prompt_length  # the system turn, before the image
    with torch.no_grad():
        full = float(example_loss(trainer.model, example, "cpu"))
        shared = float(example_loss(trainer.model, example, "cpu", prefix=prefix_cache(trainer.model, example, "cpu")))
    assert abs(full - shared) < 1e-4
    before = _mean_loss(trainer)
    trainer.run()
    assert _mean_loss(trainer) < before
