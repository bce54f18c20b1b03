"""Training data: oracle runs on train-split scenarios exported to records; held-out scenarios/seeds refused;
records render with the tiny checkpoint's chat template and tokenise, labels mask the prompt."""

from __future__ import annotations

import json

import pytest

from engine.local import LocalEngine
from engine import tiny_checkpoint_path
from visagent.core.errors import ConfigError
from visagent.sim.scenarios import load_scenarios
from visagent.training.data import (
    TRAIN_SEED_BASE, build_dataset, check_train_episode, load_records, train_scenarios, train_seeds,
)
from visagent.training.examples import IGNORE, build_example, with_images

SCENARIOS = ["desktop-notes-click-save", "phone-settings-bluetooth-on"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    summary = build_dataset(out, data_seed=5, seeds_per_scenario=1, grounding_seeds=1, screens=1, per_screen=3,
                            scenario_ids=SCENARIOS, workers=2)
    return out, summary


@pytest.fixture(scope="module")
def engine():
    return LocalEngine(tiny_checkpoint_path(), device="cpu", max_pixels=64 * 32 * 32)


def test_heldout_scenarios_and_eval_seeds_are_refused():
    heldout = [s for s in load_scenarios() if s.split == "heldout"]
    assert heldout
    with pytest.raises(ConfigError, match="held-out|heldout"):
        check_train_episode(heldout[0], TRAIN_SEED_BASE + 1)
    train = train_scenarios()[0]
    with pytest.raises(ConfigError, match="evaluation seed"):
        check_train_episode(train, 2)
    check_train_episode(train, TRAIN_SEED_BASE)  # allowed
    with pytest.raises(ConfigError):
        train_scenarios([heldout[0].id])
    assert all(s.split == "train" for s in train_scenarios())


def test_training_seeds_are_disjoint_from_evaluation_seeds():
    seeds = train_seeds(0, 500)
    assert len(set(seeds)) == 500 and min(seeds) >= TRAIN_SEED_BASE
    assert train_seeds(0, 20) != train_seeds(1, 20)


def test_dataset_holds_only_train_scenarios_and_seeds(dataset):
    out, summary = dataset
    records, root = load_records(out)
    assert root == out
    assert summary.trajectory_records > 0 and summary.grounding_records > 0
    assert summary.failed_episodes == []
    heldout_ids = {s.id for s in load_scenarios() if s.split == "heldout"}
    kinds = {r["meta"]["kind"] for r in records}
    assert kinds == {"trajectory", "grounding"}
    for rec in records:
        assert rec["meta"]["scenario"] in SCENARIOS and rec["meta"]["scenario"] not in heldout_ids
        assert rec["meta"]["split"] == "train"
        assert int(rec["meta"]["seed"]) >= TRAIN_SEED_BASE
        assert "<tool_call>" in rec["target"]
    manifest = json.loads((out / "data.json").read_text())
    assert manifest["data_seed"] == 5 and manifest["trajectory_records"] == summary.trajectory_records


def test_a_record_of_a_heldout_scenario_is_refused_when_loading(dataset, tmp_path):
    out, _ = dataset
    records, _ = load_records(out)
    heldout = next(s for s in load_scenarios() if s.split == "heldout")
    bad = dict(records[0], meta={**records[0]["meta"], "scenario": heldout.id})
    file = tmp_path / "records.jsonl"
    file.write_text(json.dumps(records[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ConfigError, match="held"):
        load_records(file)
    seed_bad = dict(records[0], meta={**records[0]["meta"], "seed": 0})
    file.write_text(json.dumps(seed_bad) + "\n")
    with pytest.raises(ConfigError, match="evaluation seed"):
        load_records(file)


@pytest.mark.parametrize("kind", ["trajectory", "grounding"])
def test_records_render_with_the_chat_template_and_labels_mask_the_prompt(dataset, engine, kind):
    out, _ = dataset
    records, root = load_records(out)
    # a later trajectory step carries history (assistant + tool turns with images)
    rec = max((r for r in records if r["meta"]["kind"] == kind), key=lambda r: len(r["messages"]))
    example = build_example(engine, rec, root)
    text = engine.render_prompt(with_images(rec["messages"], root), tools=rec["tools"])
    assert "<tools>" in text and rec["instruction"] in text
    assert text.rstrip().endswith("</think>")  # thinking-off generation prompt, as the agent sends it
    n_prompt = example.prompt_length
    assert (example.labels[0, :n_prompt] == IGNORE).all()
    target = example.labels[0, n_prompt:]
    assert (target != IGNORE).all()
    assert engine.tokenizer.decode(target.tolist()) == rec["target"] + "<|im_end|>"
    assert int(example.mm_token_type_ids.sum()) > 0  # the screenshots are in the sequence as visual tokens
    assert int(example.mm_token_type_ids[0, n_prompt:].sum()) == 0
    # target positions continue the prompt's text positions (as decoding would place them)
    assert example.position_ids.shape[-1] == example.input_ids.shape[1]
    assert int(example.position_ids[0, 0, n_prompt]) == n_prompt


def test_model_card_names_the_command_seed_results_and_curve(tmp_path):
    from visagent.training.recipe import RecipeConfig, write_model_card

    cfg = RecipeConfig(out=str(tmp_path), data_seed=7, steps=20, history_images=2)
    manifest = {"trajectory_records": 11, "grounding_records": 22, "episodes": 3, "scenarios": ["a"],
                "train_seed_base": TRAIN_SEED_BASE}
    points = [{"step": 10, "loss": 2.5, "seconds": 30.0, "heldout_success": 0.0},
              {"step": 20, "loss": 1.25, "seconds": 60.0, "heldout_success": 0.25, "pointer_loss": 0.5,
               "heldout_step_accuracy": 0.125}]
    final = {"success_rate": 0.5, "seeds": [0], "episodes": 2, "seconds_per_step": 1.0,
             "steps": {"step_accuracy": 0.25, "steps": 8, "correct": 2, "mean_prefix": 0.5},
             "per_tag": {"difficulty:easy": {"episodes": 2, "successes": 1, "success_rate": 0.5}},
             "grounding": {"items": 4, "click_inside_rate": 0.25, "screens": 1, "label_prior_rate": 0.5}}
    card = write_model_card(tmp_path, cfg, ["visagent", "train-tiny", "--out", "x y"], manifest, points, final,
                            {"data_s": 60.0, "train_s": 600.0, "total_s": 700.0, "s_per_step": 30.0})
    text = card.read_text()
    assert "visagent train-tiny --out 'x y'" in text
    assert "data seed 7" in text and "11 trajectory records" in text
    assert "pointer loss weight 1.0, readout loss weight 0.0, prompt profile compact-task-first," in text
    assert "2 screenshot(s) per trajectory prompt" in text
    assert "| easy | 1/2 | 50% |" in text and "click inside the target 25%" in text
    assert "most clicked place in the training records scores 50% on the same items" in text
    assert "| 10 | 2.5000 |  | 0% |  | 30.0 |" in text and "| 20 | 1.2500 | 0.5 | 25% | 12.5% | 60.0 |" in text
    assert "Step accuracy (`visagent eval --split heldout --per-step`" in text and "2/8 (25.0%)" in text
    assert json.loads((tmp_path / "results.json").read_text())["final"]["success_rate"] == 0.5
    assert "cost: data 1.0 min, training 10.0 min" in text  # a whole run: no caveat
    resumed = write_model_card(tmp_path, cfg, ["visagent", "train-tiny", "--resume"], manifest, points, final,
                               {"data_s": 0.0, "train_s": 300.0, "total_s": 320.0, "s_per_step": 30.0,
                                "resumed_at_step": 10}).read_text()
    assert "cost of this invocation only (it resumed at step 10;" in resumed
    skipped = write_model_card(tmp_path, cfg, ["visagent", "train-tiny", "--final-eval-seeds", "0"], manifest, points,
                               None, {"data_s": 0.0, "train_s": 300.0, "total_s": 320.0, "s_per_step": 30.0,
                                      "steps_asked": 40}).read_text()
    assert "Not measured by this run (`--final-eval-seeds 0`)" in skipped and "Overall success" not in skipped
    assert "20 steps (of 40 asked: fitted to --max-minutes" in skipped
    assert "data not counted (OUT/data existed before this invocation)" in skipped


@pytest.mark.parametrize("profile", ["compact", "compact-task-first"])
def test_a_grounding_record_is_the_prompt_the_grounding_eval_sends(tmp_path, profile):
    """`visagent ground` / ground-eval ask with the annotation's instruction ("click the Save button"); the
    record for the same element was written as a sentence. The model must see the same prompt in both."""
    from PIL import Image

    from visagent.grounding.predict import grounding_request
    from visagent.grounding.sim_export import instruction_for
    from visagent.training.data import grounding_records

    scenarios = [s for s in load_scenarios() if s.split == "train" and s.platform == "desktop"][:1]
    records = grounding_records(tmp_path, scenarios, [TRAIN_SEED_BASE], screens=1, per_screen=2, data_seed=3,
                                relative_to=tmp_path, profile=profile)
    assert records
    for rec in records:
        image = Image.open(tmp_path / rec["screenshot"])
        messages, tools = grounding_request(image, instruction_for(rec["meta"]["label"].strip(), rec["meta"]["role"]),
                                            style=profile, platform="desktop", model_size=(1000, 1000))

        def layout(msgs):
            return [(m["role"], m["content"] if isinstance(m["content"], str)
                     else [c.get("text", c["type"]) for c in m["content"]]) for m in msgs]

        assert layout(messages) == layout(rec["messages"])
        assert tools == rec["tools"]


def test_the_desktop_launcher_gives_grounding_records_for_icon_and_taskbar_button(tmp_path):
    """Every desktop app is an icon and a taskbar button with the same label: records tell them apart by the
    instruction ("Open Calculator." / "Switch to Calculator in the taskbar."), so the screen every desktop task
    starts from is taught (it was left out while uniqueness went by label alone)."""
    from visagent.training.data import grounding_records

    launcher = [s for s in load_scenarios() if s.id == "desktop-settings-language"]  # starts on the desktop
    records = grounding_records(tmp_path, launcher, [TRAIN_SEED_BASE], screens=1, per_screen=20, data_seed=0,
                                relative_to=tmp_path, profile="compact-task-first")
    by_role: dict[str, dict[str, list]] = {}
    for rec in records:
        by_role.setdefault(rec["meta"]["role"], {})[rec["meta"]["label"]] = rec["meta"]["bbox"]
    assert {"icon", "taskbar_button"} <= set(by_role)
    both = set(by_role["icon"]) & set(by_role["taskbar_button"])
    assert "Calculator" in both and "Settings" in both
    for label in both:  # the same label, two different places
        assert by_role["icon"][label] != by_role["taskbar_button"][label]
    assert len({rec["instruction"] for rec in records}) == len(records)


def test_crop_records_hold_the_element_and_click_its_centre_in_the_crop(tmp_path):
    """--crops: each grounding record gets cropped copies; the element is whole inside each crop, the picture is
    the screen's pixels at that place, the target is the element's centre on the crop's 0..1000 grid, and the
    crops put the element at different places of the picture."""
    import re

    from PIL import Image

    from visagent.training.data import grounding_records

    scenarios = [s for s in load_scenarios() if s.id in SCENARIOS]
    plain = grounding_records(tmp_path / "p", scenarios, [TRAIN_SEED_BASE], screens=1, per_screen=3, data_seed=3,
                              relative_to=tmp_path / "p")
    records = grounding_records(tmp_path / "c", scenarios, [TRAIN_SEED_BASE], screens=1, per_screen=3, data_seed=3,
                                relative_to=tmp_path / "c", crops=2)
    full = [r for r in records if "crop" not in r["meta"]]
    cropped = [r for r in records if "crop" in r["meta"]]
    assert [r["target"] for r in full] == [r["target"] for r in plain]  # crops=0 data is unchanged
    assert len(cropped) == 2 * len(full) > 0
    places = set()
    for rec in cropped:
        meta = rec["meta"]
        x1, y1, x2, y2 = meta["crop"]
        bx1, by1, bx2, by2 = meta["bbox"]
        w, h = meta["image_size"]
        image = Image.open(tmp_path / "c" / rec["screenshot"])
        assert image.size == (w, h) == (x2 - x1, y2 - y1)
        whole = next(r for r in full if r["id"] == rec["id"].rsplit(":", 1)[0])
        screen = Image.open(tmp_path / "c" / whole["screenshot"])
        assert screen.crop((x1, y1, x2, y2)).tobytes() == image.convert(screen.mode).tobytes()
        assert 0 <= bx1 < bx2 <= w and 0 <= by1 < by2 <= h  # the whole element is in the picture
        px, py = (int(v) for v in re.search(r"\[(\d+), (\d+)\]", rec["target"]).groups())
        assert bx1 <= px * w / 1000 <= bx2 and by1 <= py * h / 1000 <= by2
        assert rec["instruction"] == whole["instruction"] and rec["meta"]["label"] == whole["meta"]["label"]
        places.add((round(px, -2), round(py, -2)))
    assert len(places) > len(cropped) // 3


def test_negative_crops_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="crops"):
        build_dataset(tmp_path, crops=-1, scenario_ids=SCENARIOS[:1])


def test_data_workers_write_the_same_records_as_one_process(tmp_path):
    """--workers N runs oracle episodes and renders grounding screens in N processes; the records (ids, prompts,
    targets, crops) and their order are those one process writes, and every screenshot they name exists."""
    def build(name, workers):
        out = tmp_path / name
        build_dataset(out, data_seed=2, seeds_per_scenario=1, grounding_seeds=2, screens=1, per_screen=2,
                      scenario_ids=SCENARIOS, workers=workers, crops=1)
        records, root = load_records(out)
        for rec in records:
            assert (root / rec["screenshot"]).is_file()
        return records

    def comparable(records):  # trace directories are named by run time: compare what a record says, not where
        return [(r["meta"]["kind"], r["meta"]["scenario"], r["meta"]["seed"], r["target"],
                 json.dumps(r["messages"]) if r["meta"]["kind"] == "grounding" else r["instruction"],
                 r["meta"].get("crop")) for r in records]

    one, four = build("one", 1), build("four", 4)
    assert comparable(one) == comparable(four)
    kinds = {r["meta"]["kind"] for r in one}
    assert kinds == {"trajectory", "grounding"}


def test_a_rerun_refuses_data_and_a_base_made_with_other_options(dataset, tmp_path, capsys):
    import shutil

    from visagent.cli import main
    from visagent.training.recipe import (
        INPUTS_FILE, RECIPE_SIZES, RecipeConfig, _record_inputs, base_settings, check_reuse,
    )

    data, _ = dataset
    work = tmp_path / "w"
    shutil.copytree(data, work / "data")  # made by `visagent train-data`: no recipe-inputs.json, only its manifest
    manifest = json.loads((work / "data" / "data.json").read_text())
    (work / "data" / "data.json").write_text(json.dumps({**manifest, "prompt_profile": "compact-task-first"}))  # the recipe's
    same = dict(out=str(work), data_seed=5, seeds=1, grounding_seeds=1, history_images=4)  # as run_recipe resolves it
    check_reuse(work, RecipeConfig(**same))  # the options it was made with: reused
    with pytest.raises(ConfigError, match="history_images 4; this command asks history_images 1"):
        check_reuse(work, RecipeConfig(**{**same, "history_images": 1}))  # its prompts show other screenshots
    assert main(["train-tiny", "--out", str(work), "--data-seed", "5", "--seeds", "1", "--grounding-seeds", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grounding_seeds 1" in err[0] and "grounding_seeds 4" in err[0] and "delete" in err[0]
    assert not (work / "base").exists() and not (work / "model").exists()  # refused before anything was built

    (work / "base").mkdir()
    (work / "base" / "config.json").write_text("{}")
    _record_inputs(work, "base", base_settings(RecipeConfig(**same)))
    assert json.loads((work / INPUTS_FILE).read_text())["base"]["sizes"]["vision_depth"] == 2
    check_reuse(work, RecipeConfig(**same))
    with pytest.raises(ConfigError, match="vision_depth 2; this command asks vision_depth 3"):
        check_reuse(work, RecipeConfig(**same, sizes={**RECIPE_SIZES, "vision_depth": 3}))
    with pytest.raises(ConfigError, match="number_tokens 0; this command asks number_tokens 1000"):
        # number_tokens was not among the sizes given: the default 0
        check_reuse(work, RecipeConfig(**same, sizes={**RECIPE_SIZES, "number_tokens": 1000}))
    with pytest.raises(ConfigError, match="prompt_profile compact-task-first; this command asks prompt_profile compact"):
        check_reuse(work, RecipeConfig(**same, prompt_profile="compact"))
    (work / INPUTS_FILE).write_text('{"data": ')  # cut short
    with pytest.raises(ConfigError, match="recipe-inputs.json: unreadable"):
        check_reuse(work, RecipeConfig(**same))


@pytest.mark.parametrize("item, says", [("bogus=1", "unknown size key 'bogus'"), ("vision_depth", "KEY=VALUE"),
                                        ("vision_depth=four", "'four' is not a number"),
                                        ("vision_hidden_size=130", "into vision_num_heads 4 heads"),
                                        ("num_experts_per_tok=9", "exceeds num_experts 8"),
                                        ("vision_depth=0", "must be positive")])
def test_a_bad_size_option_is_refused_in_one_line(tmp_path, capsys, item, says):
    from visagent.cli import main

    assert main(["train-tiny", "--out", str(tmp_path / "w"), "--size", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "w").exists()


def test_size_options_parse_to_numbers():
    from visagent.commands.train_tiny import parse_sizes

    assert parse_sizes(["vision_depth=4", "vision-hidden-size=256", "vision_position_code=0.5"]) == {
        "vision_depth": 4, "vision_hidden_size": 256, "vision_position_code": 0.5}


def test_the_recipe_end_to_end_writes_a_checkpoint_card_and_inputs_then_refuses_other_options(tmp_path, capsys):
    """`visagent train-tiny` at its smallest (grounding records of one seed, 2 steps, no final evaluation): the
    checkpoint loads, the card tells its command, sizes and size on disk, and a rerun with other options is refused
    while the same options resume."""
    from visagent.cli import main
    from visagent.training.recipe import INPUTS_FILE

    work = tmp_path / "w"
    args = ["train-tiny", "--out", str(work), "--seeds", "0", "--grounding-seeds", "1", "--steps", "2",
            "--grounding-steps", "1", "--eval-every", "100", "--final-eval-seeds", "0", "--workers", "1",
            "--size", "vision_depth=1", "--no-progress"]
    assert main(args) == 0
    card = (work / "model" / "README.md").read_text()
    assert "--size vision_depth=1" in card and '"vision_depth": 1' in card and "MB;" in card
    assert json.loads((work / "model" / "config.json").read_text())["vision_config"]["depth"] == 1
    inputs = json.loads((work / INPUTS_FILE).read_text())
    assert inputs["data"]["grounding_seeds"] == 1 and inputs["base"]["sizes"]["vision_depth"] == 1
    assert LocalEngine(work / "model", device="cpu", max_pixels=64 * 32 * 32) is not None
    capsys.readouterr()

    assert main([*args[:-3], "--size", "vision_depth=2", "--no-progress", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vision_depth 1; this command asks vision_depth 2" in err[0]
    assert main([*args, "--resume"]) == 0  # same options: data and base reused, nothing left to train


def test_the_recipe_continues_a_trained_checkpoint_with_base(tmp_path, capsys):
    """`train-tiny --base DIR`: no fresh base is built; the run starts from DIR's weights (its head included), the
    card names the base and keeps the base's own card beside it; a base prompted otherwise, or no checkpoint,
    is refused in one line before any data is made."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from engine import tiny_checkpoint_path
    from engine.pointer import POINTER_FILE
    from visagent.cli import main
    from visagent.training.recipe import BASE_CARD, card_command

    base = tmp_path / "base-ckpt"
    shutil.copytree(tiny_checkpoint_path(), base)
    profile = json.loads((base / "visagent.json").read_text())
    (base / "visagent.json").write_text(json.dumps({**profile, "history_images": 2}))  # a base trained on window 2
    work = tmp_path / "w"
    args = ["train-tiny", "--out", str(work), "--base", str(base), "--seeds", "0", "--grounding-seeds", "1",
            "--steps", "1", "--grounding-steps", "0", "--eval-every", "100", "--final-eval-seeds", "0",
            "--workers", "1", "--no-progress"]
    assert main(args) == 0
    model = work / "model"
    assert not (work / "base").exists()
    card = (model / "README.md").read_text()
    assert f"the trained checkpoint `{base}`" in card and "--base" in card
    made_by = card_command((base / "README.md").read_text())
    assert made_by and made_by.startswith("visagent train-tiny") and f"made by `{made_by}`" in card
    kept = (model / BASE_CARD).read_text()
    assert kept.startswith((base / "README.md").read_text().rstrip("\n"))
    if (base / BASE_CARD).is_file():  # the shipped tiny is itself a continuation: its base's card comes along
        assert kept.endswith((base / BASE_CARD).read_text())
    before, after = load_file(base / "model.safetensors"), load_file(model / "model.safetensors")
    assert before.keys() == after.keys()
    moved = [k for k in before if not torch.equal(before[k].float(), after[k].float())]
    assert moved  # it trained
    same = sum(torch.allclose(before[k].float(), after[k].float(), atol=0.05) for k in before)
    assert same == len(before)  # lr-warm-up-sized changes only: it continued the base
    assert (model / POINTER_FILE).is_file()
    # no --history-images: the records are made in the base's window, and the card and the model say so
    assert json.loads((work / "data" / "data.json").read_text())["history_images"] == 2
    assert "2 screenshot(s) per trajectory prompt" in card
    assert json.loads((model / "visagent.json").read_text())["history_images"] == 2
    capsys.readouterr()

    assert main([*args[:2], str(tmp_path / "x"), "--base", str(tmp_path / "nothing"), *args[5:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint there" in err[0]
    assert main([*args[:2], str(tmp_path / "y"), *args[3:], "--prompt-profile", "compact"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --prompt-profile compact-task-first" in err[0]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_the_recipe_window_is_the_asked_one_else_the_bases_else_four(tmp_path):
    from visagent.training.recipe import DEFAULT_HISTORY_IMAGES, RecipeConfig, window_of

    base = tmp_path / "b"
    base.mkdir()
    (base / "visagent.json").write_text(json.dumps({"prompt_profile": "compact-task-first"}))
    assert window_of(RecipeConfig(out="x"), None) == DEFAULT_HISTORY_IMAGES == 4  # a fresh base
    assert window_of(RecipeConfig(out="x"), base) == 4  # a base that declares none
    (base / "visagent.json").write_text(json.dumps({"prompt_profile": "compact-task-first", "history_images": 1}))
    assert window_of(RecipeConfig(out="x"), base) == 1
    assert window_of(RecipeConfig(out="x", history_images=3), base) == 3  # asked: a run may change the window
    (base / "visagent.json").write_text(json.dumps({"history_images": "two"}))
    with pytest.raises(ConfigError, match=r"--base b: .*history_images must be a whole number >= 1, got 'two'"):
        window_of(RecipeConfig(out="x", base="b"), base)


def test_a_chain_of_continuations_keeps_every_card(tmp_path):
    """BASE-README.md of a `--base` run holds the base's card and, when the base was itself continued, the
    base's own BASE-README.md after it; a base without a card gives none."""
    from visagent.training.recipe import BASE_CARD, base_lineage, card_command

    fresh, mid = tmp_path / "fresh", tmp_path / "mid"
    fresh.mkdir(), mid.mkdir()
    assert base_lineage(fresh) is None
    (fresh / "README.md").write_text("# fresh\n\n## How it was made\n\n    visagent train-tiny --out a\n\nsizes {}\n")
    assert base_lineage(fresh) == (fresh / "README.md").read_text()
    (mid / "README.md").write_text("# mid\n\n## How it was made\n\n    visagent train-tiny --out b --base a\n")
    (mid / BASE_CARD).write_text(base_lineage(fresh))
    chain = base_lineage(mid)
    assert chain.index("# mid") < chain.index("# fresh") and chain.endswith("sizes {}\n")
    assert card_command((mid / "README.md").read_text()) == "visagent train-tiny --out b --base a"
    assert card_command("# no command here\n") is None
