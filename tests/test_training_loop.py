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
from visagent.core.actions import Action
from visagent.loop.parsing import render_action
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
    # 12 steps: from the shipped (already trained) tiny 8 steps lowered it by 19%, 12 by 30%
    trainer = Trainer(_config(data, tmp_path / "out", steps=12), progress=False)
    before = _mean_loss(trainer)
    out = trainer.run()
    after = _mean_loss(trainer)
    assert after < before * 0.8, (before, after)
    curve = json.loads((out / "curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [12] and curve["points"][0]["loss"] > 0
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
    from visagent.core.errors import ConfigError
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


def test_the_checkpoint_declares_the_window_its_trajectory_records_were_rendered_with(tmp_path):
    """Records rendered with two screenshots (meta.history_images, as train-data and export write it) make every
    checkpoint declare that window in its visagent.json, beside the base's prompt profile; the engine the trainer
    evaluates with prompts that way too. Records that do not say leave the base's declaration as it was."""
    from engine import tiny_checkpoint_path
    from engine.checkpoint import inspect_checkpoint

    base_window = inspect_checkpoint(tiny_checkpoint_path()).history_images
    records = _records(tmp_path / "d", 4)
    for r in records:
        r["meta"]["history_images"] = 2
    (tmp_path / "d" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    trainer = Trainer(_config(tmp_path / "d", tmp_path / "out", steps=1), progress=False)
    assert trainer.engine.info.history_images == 2 != base_window
    info = inspect_checkpoint(trainer.run())
    assert info.history_images == 2 and info.prompt_profile == trainer.engine.info.prompt_profile

    _records(tmp_path / "plain", 4)  # no window in meta: the base's visagent.json is copied as it is
    plain = Trainer(_config(tmp_path / "plain", tmp_path / "out2", steps=1), progress=False)
    assert plain.engine.info.history_images == base_window
    assert inspect_checkpoint(plain.run()).history_images == base_window


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


def _mixed_records(root) -> list[dict]:
    """Records of different lengths and screenshot sizes (batched forward pads and concatenates them)."""
    records = _records(root, 4, seed=9)
    Image.new("RGB", (320, 192), "white").save(root / "img" / "wide.png")
    records[1]["messages"][1]["content"][0]["image"] = "img/wide.png"
    records[2]["target"] += "\nand a longer answer than the others"
    (root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def test_one_padded_forward_gives_each_example_its_own_loss(tmp_path):
    """batch_losses: the examples of a batch right-padded into one forward give the losses they give alone."""
    from visagent.training.examples import batch_losses

    records = _mixed_records(tmp_path)
    trainer = Trainer(_config(tmp_path, tmp_path / "out"), progress=False)
    examples = [build_example(trainer.engine, r, trainer.root) for r in records]
    assert len({int(e.input_ids.shape[1]) for e in examples}) > 1
    assert len({tuple(e.image_grid_thw[0].tolist()) for e in examples}) > 1
    trainer.model.eval()
    with torch.no_grad():
        alone = [float(example_loss(trainer.model, e, "cpu")) for e in examples]
        together = batch_losses(trainer.model, examples, "cpu").tolist()
    assert together == pytest.approx(alone, abs=1e-4)


def test_micro_batches_train_like_single_examples(tmp_path):
    """--micro-batch: a step's gradient from padded batches equals the one from one forward per example, and
    training with it lowers the loss."""
    records = _mixed_records(tmp_path)
    trainer = Trainer(_config(tmp_path, tmp_path / "a", steps=1, batch=4, micro_batch=4), progress=False)
    examples = [build_example(trainer.engine, r, trainer.root) for r in records]

    def gradients(accumulate):
        trainer.model.zero_grad(set_to_none=True)
        loss = accumulate(examples)
        return loss, {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}

    loss_one, one = gradients(trainer._accumulate)
    loss_four, four = gradients(trainer._accumulate_batched)
    assert loss_four == pytest.approx(loss_one, abs=1e-4)
    assert one.keys() == four.keys() and len(one) > 50
    for name in one:
        assert torch.allclose(one[name], four[name], atol=1e-5, rtol=1e-3), name
    trainer = Trainer(_config(tmp_path, tmp_path / "c", steps=8, batch=4, micro_batch=2), progress=False)
    before = _mean_loss(trainer)
    trainer.run()
    assert _mean_loss(trainer) < before * 0.8


def test_micro_batch_with_auxiliary_losses_is_refused(data, tmp_path):
    from visagent.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--micro-batch > 1 trains the plain target loss only"):
        Trainer(_config(data, tmp_path / "o", micro_batch=2, pointer_weight=1.0), progress=False)
    with pytest.raises(ConfigError, match="--trajectory-share must be between 0 and 1"):
        Trainer(_config(data, tmp_path / "o", trajectory_share=1.5), progress=False)


def test_trajectory_share_sets_the_mix_after_the_grounding_steps():
    from visagent.training.trainer import batch_indices

    pools = {"all": list(range(100)), "grounding": list(range(90)), "trajectory": list(range(90, 100))}
    drawn = [i for step in range(10, 210) for i in batch_indices(step, 8, pools, 10, 0, trajectory_share=0.5)]
    share = sum(i >= 90 for i in drawn) / len(drawn)
    assert 0.45 < share < 0.55  # uniform drawing would give 10%
    assert all(i < 90 for step in range(10) for i in batch_indices(step, 8, pools, 10, 0, trajectory_share=0.5))
    uniform = [i for step in range(10, 210) for i in batch_indices(step, 8, pools, 10, 0)]
    assert sum(i >= 90 for i in uniform) / len(uniform) < 0.15
    assert batch_indices(50, 8, pools, 10, 3, 0.5) == batch_indices(50, 8, pools, 10, 3, 0.5)  # resume-safe


class _Bar:
    """Stands in for the tqdm bar `_fit_budget` resizes."""
    total = 1000

    def refresh(self):
        pass


def test_max_minutes_fits_the_steps_to_the_budget_and_ends_with_a_checkpoint(data, tmp_path):
    from visagent.training.trainer import FIT_AFTER, WARM_STEPS

    trainer = Trainer(_config(data, tmp_path / "fit", steps=1000, grounding_steps=500, save_every=100,
                              max_minutes=1.0), progress=False)

    trainer.step = WARM_STEPS
    trainer._fit_budget(7.0, _Bar())  # slow first steps (start-up) are not counted
    trainer.step = FIT_AFTER
    trainer._fit_budget(10.0, _Bar())  # 15 steps in 3 s, 50 s left: 90% of 250 more steps
    assert trainer.config.steps == FIT_AFTER + 225
    assert trainer.config.grounding_steps == round(500 * 245 / 1000) and trainer.config.save_every == 24
    # it refits at 2x, 4x ... FIT_AFTER steps from the asked counts: steady steps slower than the first ones
    # shorten the run again, faster ones lengthen it, never past the steps asked; in between nothing moves
    trainer.step = FIT_AFTER + 10
    trainer._fit_budget(15.0, _Bar())
    assert trainer.config.steps == FIT_AFTER + 225
    trainer.step = 2 * FIT_AFTER
    trainer._fit_budget(5 + 2 * FIT_AFTER * 0.4, _Bar())  # 0.4 s a step since WARM_STEPS
    left = 60 - (5 + 2 * FIT_AFTER * 0.4)
    per_step = (2 * FIT_AFTER * 0.4 - 2) / (2 * FIT_AFTER - WARM_STEPS)
    assert trainer.config.steps == 2 * FIT_AFTER + int(0.9 * left / per_step) < FIT_AFTER + 225
    assert trainer.config.save_every == max(1, round(100 * trainer.config.steps / 1000))
    assert trainer.config.grounding_steps == round(500 * trainer.config.steps / 1000)
    trainer.step = 4 * FIT_AFTER
    trainer._fit_budget(7.5, _Bar())  # suddenly very fast: capped at the 1000 asked
    assert trainer.config.steps == 1000 and trainer.config.save_every == 100 and trainer.config.grounding_steps == 500
    # a budget already spent: the run stops after its first step, with a normal final checkpoint
    quick = Trainer(_config(data, tmp_path / "quick", steps=50, max_minutes=1e-6), progress=False)
    out = quick.run()
    assert quick.step == 1 and quick.config.steps == 1
    assert (out / "config.json").is_file() and json.loads((out / "curve.json").read_text())["points"][-1]["step"] == 1


def test_refits_move_the_evaluations_with_the_run_not_double_them(data, tmp_path):
    from visagent.training.trainer import FIT_AFTER, WARM_STEPS

    trainer = Trainer(_config(data, tmp_path / "marks", steps=1000, eval_every=250, save_every=100,
                              max_minutes=1.0), progress=False)

    def walk(to: int) -> list[int]:
        evals = []
        while trainer.step < to:
            trainer.step += 1
            if trainer._due("eval"):
                evals.append(trainer.step)
        return evals

    assert walk(WARM_STEPS) == []
    trainer._fit_budget(7.0, _Bar())  # as in the test above: fitted to 245 steps at FIT_AFTER
    assert walk(FIT_AFTER) == []
    trainer._fit_budget(10.0, _Bar())
    assert trainer.config.steps == 245 and trainer.config.eval_every == 61
    assert walk(100) == [62]  # a quarter of the run, once (the rescaled interval alone would also say 61 + 61)
    trainer.config.steps = 500  # a later refit lengthens the run: the quarter passed at 62 is not evaluated again
    assert walk(500) == [250, 375, 500]
    # without max_minutes: the plain intervals
    plain = Trainer(_config(data, tmp_path / "plain", steps=1000, eval_every=250, save_every=200), progress=False)
    due = []
    for plain.step in range(1, 1001):
        due += [(plain.step, kind) for kind in ("eval", "save") if plain._due(kind)]
    assert due == sorted([(n, "eval") for n in (250, 500, 750, 1000)] + [(n, "save") for n in range(200, 1001, 200)])


def test_prep_threads_build_the_same_batches(tmp_path):
    """--prep-threads: examples built ahead by threads train exactly as those built in the loop."""
    _mixed_records(tmp_path)
    plain = Trainer(_config(tmp_path, tmp_path / "a", steps=3, batch=3), progress=False)
    plain.run()
    threaded = Trainer(_config(tmp_path, tmp_path / "b", steps=3, batch=3, prep_threads=2), progress=False)
    threaded.run()
    assert threaded._pool is None  # shut down at the end
    for (name, a), (_, b) in zip(plain.model.named_parameters(), threaded.model.named_parameters()):
        assert torch.equal(a, b), name
