"""The auxiliary pointer loss (`visagent train --pointer-weight`): its targets map the record's box onto the
screenshot's visual tokens and its queries onto the coordinate digits; training with it lowers it; the
head's flag is written beside the checkpoint's weights (the engine's pointing head) and survives a resume. The readout loss (`--readout-weight`) is computed from the
model's own attention weights and a position probe, and training with it lowers it. Records are small
hand-made ones on the shipped tiny."""

from __future__ import annotations

import json
import random

import pytest
import torch
from PIL import Image, ImageDraw

from engine import load_engine
from engine.api import GenerationConfig
from visagent.core.actions import Action
from visagent.loop.parsing import render_action
from visagent.training.examples import build_example, example_losses, example_terms, readout_layer
from visagent.training.pointer import PointerHead
from visagent.training.trainer import Trainer, TrainConfig

SIDE = 256
PIXELS = 64 * 32 * 32  # 256x256 stays 256x256: 8x8 visual tokens of 32 px


def _records(root, n: int, seed: int = 0, boxes: bool = True) -> list[dict]:
    rng = random.Random(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = Image.new("RGB", (SIDE, SIDE), "white")
        x, y = rng.randint(0, 180), rng.randint(0, 180)
        colour = rng.choice(["red", "blue"])
        ImageDraw.Draw(img).rectangle([x, y, x + 60, y + 60], fill=colour)
        img.save(root / "img" / f"{i}.png")
        action = Action("left_click", coordinate=(round((x + 30) / SIDE * 1000), round((y + 30) / SIDE * 1000)),
                        space="norm1000")
        meta = {"kind": "grounding"}
        if boxes:
            meta.update(bbox=[x, y, x + 60, y + 60], image_size=[SIDE, SIDE])
        out.append({"id": str(i), "messages": [
            {"role": "system", "content": "You click things."},
            {"role": "user", "content": [{"type": "image", "image": f"img/{i}.png"},
                                         {"type": "text", "text": f"Click the {colour} square."}]}],
            "tools": [], "target": render_action(action, "qwen35", platform="desktop"), "meta": meta})
    (root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pointer-records")
    _records(root, 12)
    return root


@pytest.fixture(scope="module")
def engine():
    from visagent.training.trainer import load_base

    return load_base("tiny", "cpu", PIXELS)


def _config(data, out, **kw) -> TrainConfig:
    base = dict(base="tiny", data=str(data), out=str(out), steps=6, batch=2, lr=3e-3, warmup=1, save_every=0,
                max_pixels=PIXELS, threads=1, seed=1, pointer_weight=1.0)
    base.update(kw)
    return TrainConfig(**base)


def test_targets_are_the_visual_tokens_inside_the_box_and_the_digit_positions(data, engine):
    records = [json.loads(line) for line in (data / "records.jsonl").read_text().splitlines()]
    for record in records[:4]:
        ex = build_example(engine, record, data)
        p = ex.pointer
        assert p is not None
        assert len(p.visual) == 64 and bool((ex.mm_token_type_ids[0, p.visual] == 1).all())
        rows = ex.position_ids[2, 0, p.visual] - ex.position_ids[2, 0, p.visual].min()
        cols = ex.position_ids[3, 0, p.visual] - ex.position_ids[3, 0, p.visual].min()
        x0, y0, x1, y1 = record["meta"]["bbox"]
        inside = {(int(r), int(c)) for r, c in zip(rows[p.inside], cols[p.inside])}
        expected = {(r, c) for r in range(8) for c in range(8)
                    if x0 <= (c + 0.5) * 32 <= x1 and y0 <= (r + 0.5) * 32 <= y1}
        assert inside == expected and len(expected) >= 1
        # each query position is followed by a digit of the coordinate, and there is one per digit
        following = [engine.tokenizer.decode(ex.input_ids[0, q + 1]) for q in p.queries.tolist()]
        x, y = json.loads(record["target"].split("<parameter=coordinate>")[1].split("</parameter>")[0])
        assert "".join(following) == f"{x}{y}"
        assert all(q >= ex.prompt_length - 1 for q in p.queries.tolist())


def test_with_number_tokens_there_is_one_query_per_coordinate_value(tmp_path, data):
    from engine.tiny import build_tiny_checkpoint
    from visagent.training.trainer import load_base

    records = [json.loads(line) for line in (data / "records.jsonl").read_text().splitlines()]
    base = build_tiny_checkpoint(tmp_path / "base", [r["target"] for r in records] * 4, num_hidden_layers=2,
                                 full_attention_interval=2, vision_depth=1, number_tokens=1000)
    engine = load_base(str(base), "cpu", PIXELS)
    for record in records[:3]:
        ex = build_example(engine, record, data)
        following = [engine.tokenizer.decode(ex.input_ids[0, q + 1]) for q in ex.pointer.queries.tolist()]
        x, y = json.loads(record["target"].split("<parameter=coordinate>")[1].split("</parameter>")[0])
        assert following == [str(x), str(y)]


def test_records_without_a_box_or_a_coordinate_get_no_pointer_target(tmp_path, engine):
    record = _records(tmp_path, 1, boxes=False)[0]
    assert build_example(engine, record, tmp_path).pointer is None
    boxed = _records(tmp_path / "b", 1)[0]
    boxed["target"] = render_action(Action("terminate", status="success"), "qwen35", platform="desktop")
    assert build_example(engine, boxed, tmp_path / "b").pointer is None


def test_pointer_loss_is_the_negative_log_mass_inside_the_box(data, engine):
    record = json.loads((data / "records.jsonl").read_text().splitlines()[0])
    ex = build_example(engine, record, data)
    head = PointerHead(int(engine.model.config.get_text_config().hidden_size))
    with torch.no_grad():
        lm, pointer = example_losses(engine.model, ex, "cpu", pointer_head=head)
        lm_only, none = example_losses(engine.model, ex, "cpu")
        hidden = engine.model(input_ids=ex.input_ids, position_ids=ex.position_ids, pixel_values=ex.pixel_values,
                              image_grid_thw=ex.image_grid_thw, mm_token_type_ids=ex.mm_token_type_ids,
                              output_hidden_states=True).hidden_states[-1][0]
        h = head.norm(hidden)
        scores = head.q(h[ex.pointer.queries]) @ head.k(h[ex.pointer.visual]).T * head.scale
        mass = scores.softmax(-1)[:, ex.pointer.inside].sum(-1)
        flagged = head.flag(h[ex.pointer.visual])[:, 0].softmax(-1)[ex.pointer.inside].sum()
    assert none is None and torch.allclose(lm, lm_only)
    assert torch.allclose(pointer, -mass.log().mean() - flagged.log(), atol=1e-5)


def test_training_with_the_pointer_lowers_it_and_writes_the_flag_head_beside_the_weights(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "out", steps=10, lr=1e-2), progress=False)

    def mean_pointer() -> float:
        with torch.no_grad():
            values = [example_losses(trainer.model, build_example(trainer.engine, r, trainer.root), "cpu",
                                     pointer_head=trainer.pointer_head)[1] for r in trainer.records[:6]]
        return float(sum(values) / len(values))

    before = mean_pointer()
    out = trainer.run()
    after = mean_pointer()
    assert after < before * 0.8, (before, after)
    curve = json.loads((out / "curve.json").read_text())
    assert curve["points"][-1]["pointer_loss"] > 0
    loaded = load_engine(str(out), device="cpu")
    saved = {n for n, _ in loaded.model.named_parameters()}
    assert saved == {n for n, _ in trainer.model.named_parameters()}  # no head parameters in the model's weights
    # the flag part of the head is the checkpoint's pointing head (engine/pointer.py), exactly as trained
    assert loaded.info.points and (out / "pointer_head.safetensors").is_file()
    trained = trainer.pointer_head.state_dict()
    for name, value in loaded.pointer_head.state_dict().items():
        assert torch.equal(value, trained[name].float()), name
    # and it learned where the squares are: its top token lies inside the clicked square more often than chance
    hits = 0
    for record in trainer.records:
        image = Image.open(data / record["messages"][1]["content"][0]["image"]).convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text",
                     "text": record["messages"][1]["content"][1]["text"]}]}]
        pointer = loaded.generate(messages, config=GenerationConfig(max_new_tokens=1)).pointer
        x0, y0, x1, y1 = record["meta"]["bbox"]
        hits += x0 <= pointer.x * SIDE <= x1 and y0 <= pointer.y * SIDE <= y1
    # a 60-px square covers 1-4 of the 64 tokens' centres: a constant or random token hits ~4% of records
    assert hits >= len(trainer.records) // 2, hits


def test_resume_restores_the_pointer_head(data, tmp_path):
    straight = Trainer(_config(data, tmp_path / "a", steps=4), progress=False)
    straight.run()
    first = Trainer(_config(data, tmp_path / "b", steps=4, save_every=2), progress=False)
    first.run(until=3)
    resumed = Trainer(_config(data, tmp_path / "b", steps=4, save_every=2, resume=True), progress=False)
    resumed.run()
    for (name, a), (_, b) in zip(straight.pointer_head.named_parameters(), resumed.pointer_head.named_parameters()):
        assert torch.equal(a, b), name
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(a, b), name


def test_resume_with_other_auxiliary_heads_is_refused_naming_them(data, tmp_path):
    from visagent.core.errors import ConfigError

    Trainer(_config(data, tmp_path / "o", steps=4, save_every=2), progress=False).run(until=3)
    resumed = Trainer(_config(data, tmp_path / "o", steps=4, save_every=2, resume=True, readout_weight=1.0),
                      progress=False)
    with pytest.raises(ConfigError, match=r"auxiliary heads differ .*carry\.weight.*pos\.weight"):
        resumed.run()
    assert not (tmp_path / "o" / "checkpoint-4").exists()  # nothing trained, the checkpoint it found is kept
    assert (tmp_path / "o" / "checkpoint-2" / "trainer_state.pt").is_file()


@pytest.mark.parametrize("flag", ["--pointer-weight", "--readout-weight"])
def test_negative_auxiliary_weight_is_refused(data, tmp_path, visagent_bin, flag):
    import subprocess

    proc = subprocess.run([visagent_bin, "train", "--base", "tiny", "--data", str(data), "--out", str(tmp_path / "o"),
                           flag, "-0.5"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    # the recipe refuses it before generating data or building a base
    proc = subprocess.run([visagent_bin, "train-tiny", "--out", str(tmp_path / "r"), flag, "-0.5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "data").exists()


def test_readout_loss_is_attention_mass_on_the_target_and_the_position_error(data, tmp_path):
    from visagent.training.trainer import load_base

    eng = load_base("tiny", "cpu", PIXELS)
    eng.model.set_attn_implementation({"text_config": "eager"})
    record = json.loads((data / "records.jsonl").read_text().splitlines()[1])
    ex = build_example(eng, record, data)
    head = PointerHead(int(eng.model.config.get_text_config().hidden_size), readout=True)
    layer = readout_layer(eng.model)
    assert eng.model.config.get_text_config().layer_types[layer] == "full_attention"
    assert all(t != "full_attention" for t in eng.model.config.get_text_config().layer_types[layer + 1:])
    with torch.no_grad():
        terms = example_terms(eng.model, ex, "cpu", pointer_head=head, pointer=False, readout=True)
        out = eng.model(input_ids=ex.input_ids, position_ids=ex.position_ids, pixel_values=ex.pixel_values,
                        image_grid_thw=ex.image_grid_thw, mm_token_type_ids=ex.mm_token_type_ids,
                        output_hidden_states=True, output_attentions=True)
        att = out.attentions[-1][0, 0]  # last full-attention layer, head 0: (L, L)
        mass = att[ex.pointer.queries][:, ex.pointer.visual[ex.pointer.inside]].sum(-1)
        def normed(h):  # per token, as layer_norm without weights
            return (h - h.mean(-1, keepdim=True)) / (h.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()

        where = head.pos(normed(out.hidden_states[layer][0][ex.pointer.visual]))  # the probe reads the layer input
        said = head.carry(normed(out.hidden_states[-1][0][ex.pointer.queries]))  # the second: the answer's last state
    assert set(terms) == {"lm", "readout"}
    assert 0 < float(mass.max()) < 1
    # centres: token (row, col) -> ((col + .5) / 8, (row + .5) / 8) on the 8x8 grid
    rows = ex.position_ids[2, 0, ex.pointer.visual] - ex.position_ids[2, 0, ex.pointer.visual].min()
    assert torch.allclose(ex.pointer.centres[:, 1], (rows.float() + 0.5) / 8)
    goal = ex.pointer.centres[ex.pointer.inside].mean(0)
    expected = (-mass.log().mean() + 10 * ((where - ex.pointer.centres) ** 2).sum(-1).mean()
                + 10 * ((said - goal) ** 2).sum(-1).mean())
    assert torch.allclose(terms["readout"], expected, atol=1e-4)


def test_training_with_the_readout_lowers_it(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "out", steps=10, lr=1e-2, pointer_weight=0.0, readout_weight=1.0),
                      progress=False)

    def mean_readout() -> float:
        with torch.no_grad():
            values = [example_terms(trainer.model, build_example(trainer.engine, r, trainer.root), "cpu",
                                    pointer_head=trainer.pointer_head, pointer=False, readout=True)["readout"]
                      for r in trainer.records[:6]]
        return float(sum(values) / len(values))

    before = mean_readout()
    out = trainer.run()
    after = mean_readout()
    assert after < before * 0.8, (before, after)
    point = json.loads((out / "curve.json").read_text())["points"][-1]
    assert point["readout_loss"] > 0 and "pointer_loss" not in point
    # inference is unchanged: the saved checkpoint loads with the default attention and no head
    saved = {n for n, _ in load_engine(str(out), device="cpu").model.named_parameters()}
    assert saved == {n for n, _ in trainer.model.named_parameters()}


def test_resume_with_other_auxiliary_settings_is_refused_in_one_line(data, tmp_path):
    from visagent.core.errors import ConfigError

    Trainer(_config(data, tmp_path / "o", steps=2, save_every=1), progress=False).run(until=2)
    with pytest.raises(ConfigError, match="--readout-weight"):
        Trainer(_config(data, tmp_path / "o", steps=2, save_every=1, resume=True, readout_weight=1.0),
                progress=False).run()


def test_training_on_from_a_checkpoint_that_points_starts_from_its_head(data, tmp_path):
    first = Trainer(_config(data, tmp_path / "first", steps=2), progress=False)
    out = first.run()
    again = Trainer(_config(data, tmp_path / "again", steps=2, base=str(out), seed=5), progress=False)
    trained = first.pointer_head.state_dict()
    for name in ("norm.weight", "norm.bias", "flag.weight", "flag.bias"):
        assert torch.equal(again.pointer_head.state_dict()[name], trained[name]), name
    fresh = Trainer(_config(data, tmp_path / "fresh", steps=2, seed=5), progress=False)  # the shipped tiny's own head
    assert not torch.equal(fresh.pointer_head.state_dict()["flag.weight"], trained["flag.weight"])


def test_held_out_evaluation_during_training_clicks_where_the_flag_points_now(data, tmp_path, monkeypatch):
    import visagent.traces.evaluate

    trainer = Trainer(_config(data, tmp_path / "ev", steps=2, eval_seeds=1), progress=False)
    trainer.run()
    seen = {}

    def fake_evaluate(scenarios, factory, **kw):  # records what the loop would have run with, runs nothing
        engine = factory(None, None)
        seen["points"], seen["head"] = engine.info.points, engine.pointer_head.state_dict()
        return visagent.traces.evaluate.EvalReport(model=kw.get("model", ""), split="heldout")

    def fake_steps(engine, scenarios, seeds, **kw):  # the step accuracy too: same engine, same head
        seen["step_points"], seen["step_head"] = engine.info.points, engine.pointer_head.state_dict()
        return visagent.traces.step_eval.StepReport(model="", split="heldout")

    import visagent.traces.step_eval

    monkeypatch.setattr(visagent.traces.evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(visagent.traces.step_eval, "step_accuracy", fake_steps)
    base_head, base_info = trainer.engine.pointer_head, trainer.engine.info
    point = trainer.evaluate_heldout()
    assert seen["points"] and seen["step_points"]
    assert point["heldout_step_accuracy"] == 0.0 and point["heldout_steps"] == 0
    trained = trainer.pointer_head.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in seen["head"].items())
    assert all(torch.equal(v, trained[k]) for k, v in seen["step_head"].items())
    # restored afterwards (the base's own head: the shipped tiny has one)
    assert trainer.engine.pointer_head is base_head and trainer.engine.info is base_info
