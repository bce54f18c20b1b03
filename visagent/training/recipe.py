"""The tiny checkpoint's full recipe (`visagent train-tiny`): data → fresh tiny base → training → held-out
evaluation (agent success per difficulty, grounding click-inside rate) → model card (README.md).

Layout under `out`: `data/` (records), `base/` (the random-init tiny checkpoint the run starts from; absent
with `--base`, which continues a trained checkpoint instead),
`model/` (the trained checkpoint with `README.md` and `curve.json`; what `engine/tiny/` is rebuilt from), and
`recipe-inputs.json` (the options data/ and base/ were made with: a rerun reuses them only for the same options).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from visagent.core.errors import ConfigError

#: Capacity and screenshot budget of the trained tiny checkpoint (keys of engine.tiny.DEFAULT_SIZES).
#: max_pixels 256,000: a 1280x800 desktop is sent as 640x400 (250 visual tokens instead of 1,000).
#: 4 layers alternating DeltaNet / full attention: measured 3-4x faster per training example than the default
#: 8 layers with attention every 4th (transformers' PyTorch DeltaNet fallback dominates on CPU), and more
#: full attention for query → object binding.
RECIPE_SIZES: dict[str, Any] = {"num_hidden_layers": 4, "full_attention_interval": 2, "max_pixels": 256_000}
#: The tiny model is prompted with the compact system prompt + tool schema (visagent.core.schemas): ~1,300 → ~300
#: prompt tokens per step, both in training and when the dashboard runs it on a CPU.
PROMPT_PROFILE = "compact-task-first"
#: Grounding items scored in the final evaluation: every k-th of the held-out sim grounding set as
#: `visagent scenarios export-grounding --split heldout` writes it by default (3 seeds, 2 screens an episode).
GROUNDING_ITEMS = 60
#: The screenshot window of a fresh base's trajectory prompts (the agent's default, visagent.loop.agent.AgentConfig).
DEFAULT_HISTORY_IMAGES = 4
#: What OUT/data and OUT/base were made with (see `check_reuse`).
INPUTS_FILE = "recipe-inputs.json"
#: With --base: the model card of the checkpoint the run continued, copied beside the new card (provenance).
BASE_CARD = "BASE-README.md"


@dataclass
class RecipeConfig:
    """Settings of the recipe; steps/batch/lr as in `visagent train`."""

    out: str
    device: str = "cpu"
    data_seed: int = 0
    seeds: int = 6
    grounding_seeds: int = 20
    grounding_crops: int = 0
    steps: int = 2000
    batch: int = 8
    lr: float = 2e-3
    grounding_steps: int = 1200
    eval_every: int = 500
    eval_seeds: int = 1
    final_eval_seeds: int = 1
    resume: bool = False
    pointer_weight: float = 1.0
    readout_weight: float = 0.0
    prompt_profile: str = PROMPT_PROFILE
    workers: int = 2
    micro_batch: int = 1
    trajectory_share: float | None = None
    max_minutes: float = 0.0
    prep_threads: int = 0
    #: screenshots per trajectory prompt (visagent.loop.prompting); the model declares it. None: the --base's declared
    #: window, else DEFAULT_HISTORY_IMAGES (see `window_of`)
    history_images: int | None = None
    sizes: dict[str, Any] = field(default_factory=lambda: dict(RECIPE_SIZES))
    base: str | None = None  # a trained checkpoint to continue ("tiny": the shipped one) instead of a fresh base


def run_recipe(cfg: RecipeConfig, *, argv: list[str] | None = None, progress: bool = True) -> Path:
    """Run the whole recipe; returns the trained checkpoint directory (`out/model`)."""
    from visagent.training.trainer import Trainer, TrainConfig, check_aux_weights

    from engine import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus
    from visagent.training.data import MANIFEST_FILE, RECORDS_FILE, build_dataset

    check_aux_weights(cfg.pointer_weight, cfg.readout_weight)  # before minutes of data generation, not after

    root = Path(cfg.out).expanduser().resolve()
    continued = continued_base(cfg)  # before minutes of data generation, not after
    cfg = replace(cfg, history_images=window_of(cfg, continued))
    check_reuse(root, cfg)  # before minutes of training on data or a base other options made
    started = time.perf_counter()
    data = root / "data"
    if not (data / MANIFEST_FILE).is_file():
        build_dataset(data, data_seed=cfg.data_seed, seeds_per_scenario=cfg.seeds, grounding_seeds=cfg.grounding_seeds,
                      profile=cfg.prompt_profile, crops=cfg.grounding_crops, workers=cfg.workers,
                      history_images=cfg.history_images)
        _record_inputs(root, "data", data_settings(cfg))
    data_s = time.perf_counter() - started
    base = continued or root / "base"
    if not (base / "config.json").is_file():
        build_tiny_checkpoint(base, agent_corpus(seed=cfg.data_seed).texts, seed=cfg.data_seed,
                              prompt_profile=cfg.prompt_profile, **cfg.sizes)
        _record_inputs(root, "base", base_settings(cfg))
    model = root / "model"
    train = TrainConfig(base=str(base), data=str(data), out=str(model), steps=cfg.steps, batch=cfg.batch, lr=cfg.lr,
                        warmup=min(50, cfg.steps // 10 + 1), device=cfg.device, resume=cfg.resume,
                        eval_every=cfg.eval_every, eval_seeds=cfg.eval_seeds, grounding_steps=cfg.grounding_steps,
                        seed=cfg.data_seed, save_every=max(1, cfg.steps // 8), pointer_weight=cfg.pointer_weight,
                        readout_weight=cfg.readout_weight, micro_batch=cfg.micro_batch,
                        trajectory_share=cfg.trajectory_share, max_minutes=cfg.max_minutes,
                        prep_threads=cfg.prep_threads)
    trainer = Trainer(train, on_point=lambda p: print(json.dumps(p), flush=True), progress=progress)
    t0 = time.perf_counter()
    trainer.run()
    train_s = time.perf_counter() - t0
    asked = cfg.steps
    ran_cfg = replace(cfg, steps=train.steps, grounding_steps=train.grounding_steps)  # --max-minutes may fit them
    ran = train.steps - trainer.started_at
    final = (final_evaluation(model, cfg.device, cfg.final_eval_seeds, records=data / RECORDS_FILE)
             if cfg.final_eval_seeds > 0 else None)
    lineage = base_lineage(continued) if continued is not None and continued != model else None
    if lineage is not None:
        (model / BASE_CARD).write_text(lineage, encoding="utf-8")
    write_model_card(model, ran_cfg, argv or sys.argv, json.loads((data / MANIFEST_FILE).read_text()),
                     trainer.points, final, {"data_s": data_s, "train_s": train_s,
                                             "total_s": time.perf_counter() - started,
                                             "s_per_step": train_s / max(1, ran),
                                             "resumed_at_step": trainer.started_at, "steps_asked": asked},
                     base_path=continued)
    return model


def base_lineage(base: Path) -> str | None:
    """What a `--base` run keeps as BASE-README.md: the base's card, followed by the base's own BASE-README.md
    when it was itself a continuation, so a chain of continuations keeps every card back to the fresh base.
    None: the base has no card."""
    card = base / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    older = base / BASE_CARD
    if older.is_file():
        text = (text.rstrip("\n") + "\n\n---\n\n<!-- the base's own base: its " + BASE_CARD + " -->\n\n"
                + older.read_text(encoding="utf-8"))
    return text


def card_command(card_text: str) -> str | None:
    """The command a model card says made its checkpoint (the indented line under "## How it was made")."""
    match = re.search(r"^## How it was made\s*\n\s*\n    (\S.*)$", card_text, re.MULTILINE)
    return match.group(1).strip() if match else None


def continued_base(cfg: RecipeConfig) -> Path | None:
    """`--base`: the trained checkpoint directory the run continues ("tiny": the shipped one), or None (a fresh
    base). ConfigError (one line) when it is not a checkpoint or is prompted with another profile than the data
    would be written in."""
    if not cfg.base:
        return None
    from engine import tiny_checkpoint_path
    from engine import read_prompt_profile
    from engine.errors import CheckpointError

    path = tiny_checkpoint_path() if cfg.base == "tiny" else Path(cfg.base).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ConfigError(f"--base {cfg.base}: no checkpoint there (no config.json); give a trained checkpoint "
                          "directory or 'tiny', or leave --base out for a fresh base")
    try:
        profile = read_prompt_profile(path)
    except CheckpointError as exc:
        raise ConfigError(f"--base {cfg.base}: {exc}") from None
    if profile != cfg.prompt_profile:
        raise ConfigError(f"--base {cfg.base} is prompted with {profile!r} (its visagent.json) but the data would be "
                          f"written in {cfg.prompt_profile!r}: give --prompt-profile {profile}")
    return path


def window_of(cfg: RecipeConfig, base: Path | None) -> int:
    """The screenshot window the run's records are made in: --history-images when given, else the window the
    --base checkpoint declares (a continuation keeps the prompts its model was trained on, as it keeps the base's
    prompt profile), else DEFAULT_HISTORY_IMAGES. ConfigError (one line) for a bad declaration in the base."""
    if cfg.history_images is not None:
        return cfg.history_images
    if base is None:
        return DEFAULT_HISTORY_IMAGES
    from engine import read_history_images
    from engine.errors import CheckpointError

    try:
        declared = read_history_images(base)
    except CheckpointError as exc:
        raise ConfigError(f"--base {cfg.base}: {exc}") from None
    return declared if declared is not None else DEFAULT_HISTORY_IMAGES


def data_settings(cfg: RecipeConfig) -> dict[str, Any]:
    """The options OUT/data is made from (another value of any of them makes other records)."""
    return {"data_seed": cfg.data_seed, "seeds": cfg.seeds, "grounding_seeds": cfg.grounding_seeds,
            "grounding_crops": cfg.grounding_crops, "prompt_profile": cfg.prompt_profile,
            "history_images": cfg.history_images}


def base_settings(cfg: RecipeConfig) -> dict[str, Any]:
    """The options OUT/base is made from: its seed, prompt profile and sizes (--size, --number-tokens, --max-pixels)."""
    from engine import DEFAULT_SIZES

    sizes = {**DEFAULT_SIZES, **cfg.sizes}  # in full: a size left at its default still differs from one set
    return json.loads(json.dumps({"seed": cfg.data_seed, "prompt_profile": cfg.prompt_profile, "sizes": sizes}))


def check_reuse(root: Path, cfg: RecipeConfig) -> None:
    """OUT/data and OUT/base are reused when they exist (a rerun or --resume skips minutes of data generation);
    raise ConfigError when they were made with other options than `cfg`'s, instead of training on them silently.

    What they were made with is read from OUT/INPUTS_FILE, written when the recipe builds them. Folders from
    before that file: the data's options are read back from its manifest, the base's prompt profile from its
    visagent.json (its sizes cannot be, and are not checked)."""
    from visagent.training.data import MANIFEST_FILE

    inputs = root / INPUTS_FILE
    recorded = _read_json(inputs) if inputs.is_file() else {}
    manifest = root / "data" / MANIFEST_FILE
    if manifest.is_file():
        made = recorded.get("data") or _data_settings_of(_read_json(manifest))
        _refuse_other(root / "data", made, data_settings(cfg))
    profile_file = root / "base" / "visagent.json"
    if not cfg.base and (root / "base" / "config.json").is_file():
        made = recorded.get("base")
        if made is None and profile_file.is_file():
            made = {"prompt_profile": _read_json(profile_file).get("prompt_profile")}
        _refuse_other(root / "base", made or {}, base_settings(cfg))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete it (and the folder it describes) to rebuild") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: not a JSON object; delete it (and the folder it describes) to rebuild")
    return value


def _data_settings_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """A data manifest's options (DataSummary.to_dict): trajectory seeds = episodes per scenario, the rest grounding."""
    scenarios = max(1, len(manifest.get("scenarios") or []))
    seeds = int(manifest.get("episodes") or 0) // scenarios
    return {"data_seed": manifest.get("data_seed"), "seeds": seeds,
            "grounding_seeds": len(manifest.get("seeds") or []) - seeds,
            "grounding_crops": manifest.get("grounding_crops", 0), "prompt_profile": manifest.get("prompt_profile"),
            "history_images": manifest.get("history_images", DEFAULT_HISTORY_IMAGES)}


def _refuse_other(folder: Path, made: dict[str, Any], asked: dict[str, Any]) -> None:
    made, asked = _flat(made), _flat(asked)
    differ = [k for k in made if k in asked and made[k] != asked[k]]
    if differ:
        was = ", ".join(f"{k} {made[k]}" for k in differ)
        now = ", ".join(f"{k} {asked[k]}" for k in differ)
        raise ConfigError(f"{folder} was made with {was}; this command asks {now}: give the same options, "
                          f"another --out, or delete {folder} to rebuild it")


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    """{"sizes": {"vision_depth": 2}} -> {"vision_depth": 2}: a size that differs is named on its own."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


def _record_inputs(root: Path, part: str, settings: dict[str, Any]) -> None:
    path = root / INPUTS_FILE
    recorded = _read_json(path) if path.is_file() else {}
    recorded[part] = settings
    path.write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")


def final_evaluation(model: Path, device: str, seeds: int, records: Path | None = None) -> dict[str, Any]:
    """`visagent eval --split heldout --model MODEL --seeds N` (agent defaults) and up to GROUNDING_ITEMS items
    of the held-out sim grounding set (`visagent scenarios export-grounding --split heldout`: 3 seeds, 2 screens).
    `records` (the training records): the same items are also scored by the label prior, the place each label was
    most often clicked in them (`visagent.grounding.baselines`) — what a model that memorised positions gets."""
    import tempfile

    from engine import load_engine
    from visagent.loop.agent import AgentConfig
    from visagent.traces.evaluate import evaluate
    from visagent.grounding.data import load_annotations
    from visagent.grounding.scoring import evaluate_grounding
    from visagent.grounding.sim_export import export_sim_grounding
    from visagent.sim.scenarios import load_scenarios
    from visagent.traces.step_eval import step_accuracy

    engine = load_engine(str(model), device=device)
    scenarios = [s for s in load_scenarios() if s.split == "heldout"]
    report = evaluate(scenarios, lambda sc, ex: engine, seeds=list(range(seeds)), workers=1,
                      agent_config=AgentConfig(), model=str(model), split="heldout")
    out: dict[str, Any] = {"success_rate": report.success_rate, "seeds": list(range(seeds)),
                           "per_tag": {k: v for k, v in report.per_tag().items() if k.startswith("difficulty:")},
                           "seconds_per_step": report.seconds_per_step, "episodes": len(report.episodes)}
    steps = step_accuracy(engine, scenarios, list(range(seeds)), model=str(model), split="heldout")
    totals = steps.totals()
    out["steps"] = {"step_accuracy": steps.accuracy, "steps": totals["steps"], "correct": totals["correct"],
                    "mean_prefix": totals["mean_prefix"]}
    with tempfile.TemporaryDirectory() as tmp:
        summary = export_sim_grounding(tmp, split="heldout")  # its defaults, as the CLI's
        items = load_annotations(Path(tmp) / "annotations").items
        items = items[::max(1, len(items) // GROUNDING_ITEMS)][:GROUNDING_ITEMS]
        grounding = evaluate_grounding(engine, items, Path(tmp) / "images", model=str(model))
        out["grounding"] = {"items": len(items), "click_inside_rate": grounding.accuracy, "screens": summary.screens}
        if grounding.head_items:  # the checkpoint has a pointing head: what its written points alone score
            out["grounding"]["head_points"] = grounding.head_items
            out["grounding"]["written_only_rate"] = grounding.written_only_correct / max(1, len(items))
        if records is not None and records.is_file():  # what the label's most clicked training place scores there
            from visagent.grounding.baselines import annotation_rows, baseline_hits

            rows = annotation_rows(Path(tmp) / "annotations")
            by_id = {row["id"]: row for row in rows}
            hits, _ = baseline_hits([by_id[it.id] for it in items if it.id in by_id], records, screen_rows=rows)
            out["grounding"]["label_prior_rate"] = hits["label prior"] / max(1, len(items))
    return out


def _base_origin(given: str, path: Path | None) -> str:
    """" (PATH), made by `COMMAND`" for the card's base line: what `--base tiny` meant at the time, and how that
    checkpoint was made (the command its own card gives)."""
    if path is None:
        return ""
    where = f" ({path})" if str(path) != given else ""
    card = path / "README.md"
    command = card_command(card.read_text(encoding="utf-8")) if card.is_file() else None
    return where + (f", made by `{command}`" if command else "")


def write_model_card(model: Path, cfg: RecipeConfig, argv: list[str], manifest: dict[str, Any],
                     points: list[dict[str, Any]], final: dict[str, Any] | None, times: dict[str, float],
                     base_path: Path | None = None) -> Path:
    """README.md inside the checkpoint: command, data seed, data, sizes, held-out results, curve, cost.
    `final` None: the run skipped the held-out evaluation (--final-eval-seeds 0); the card says how to run it.
    `base_path`: the checkpoint directory `cfg.base` resolved to (named with the command its card gives)."""
    command = "visagent " + " ".join(shlex.quote(a) for a in argv[1:]) if argv else "visagent train-tiny"
    rows = "\n".join(f"| {p['step']} | {p['loss']:.4f} | {p.get('pointer_loss', '')} | "
                     f"{'' if p.get('heldout_success') is None else format(p['heldout_success'], '.0%')} | "
                     f"{'' if p.get('heldout_step_accuracy') is None else format(p['heldout_step_accuracy'], '.1%')} | "
                     f"{p.get('seconds', '')} |" for p in points)
    results = _results_section(final)
    resumed = int(times.get("resumed_at_step") or 0)
    cost_scope = (f" of this invocation only (it resumed at step {resumed}; the data and base already existed "
                  f"and the first {resumed} steps' time is not counted)" if resumed else "")
    crops = f", plus {cfg.grounding_crops} cropped copies of each" if cfg.grounding_crops else ""
    data_cost = (f"data {times['data_s'] / 60:.1f} min" if times["data_s"] >= 1 or resumed
                 else "data not counted (OUT/data existed before this invocation)")
    asked = int(times.get("steps_asked") or cfg.steps)
    fitted = f" (of {asked} asked: fitted to --max-minutes {cfg.max_minutes:g})" if asked != cfg.steps else ""
    megabytes = sum(f.stat().st_size for f in model.iterdir() if f.is_file()) / 1e6  # checkpoint-N/ not counted
    base_line = (f"a fresh tiny checkpoint (`engine.tiny.build_tiny_checkpoint`, seed {cfg.data_seed}, sizes "
                 f"{json.dumps(cfg.sizes)})" if not cfg.base else
                 f"the trained checkpoint `{cfg.base}`{_base_origin(cfg.base, base_path)} (`--base`: this run "
                 f"continues it, its sizes and pointing head included; its own card, and its base's cards when it "
                 f"was itself continued, are copied to {BASE_CARD})")
    mix = ("uniformly over all records" if cfg.trajectory_share is None
           else f"{cfg.trajectory_share:.0%} trajectory records")
    text = f"""# visagent-tiny (trained)

A tiny `qwen3_5_moe` (transformers' `Qwen3_5MoeForConditionalGeneration`: vision tower, early fusion, Gated
DeltaNet + gated attention layers, sparse MoE) fine-tuned by `visagent train-tiny` on sim-world oracle
demonstrations and grounding records of the TRAIN split only.

## How it was made

    {command}

- data seed {cfg.data_seed}: {manifest.get('trajectory_records')} trajectory records from {manifest.get('episodes')}
  oracle runs ({len(manifest.get('scenarios', []))} train scenarios x {cfg.seeds} seeds >= {manifest.get('train_seed_base')}),
  {manifest.get('grounding_records')} grounding records ({cfg.grounding_seeds} further seeds{crops});
- base: {base_line};
  this checkpoint's files: {megabytes:.1f} MB;
- training: {cfg.steps} steps{fitted} x batch {cfg.batch} ({cfg.micro_batch} per forward), lr {cfg.lr} (warm-up,
  cosine), grounding-only for the first {cfg.grounding_steps} steps, then {mix},
  auxiliary pointer loss weight {cfg.pointer_weight}, readout loss weight {cfg.readout_weight}, prompt profile {cfg.prompt_profile},
  {cfg.history_images} screenshot(s) per trajectory prompt, device {cfg.device};
- cost{cost_scope}: {data_cost}, training {times['train_s'] / 60:.1f} min
  ({times['s_per_step']:.2f} s per step), total {times['total_s'] / 60:.1f} min.

{results}

## Curve (held-out success during training: max 96 new tokens per answer, {cfg.eval_seeds} seed(s); steps right: each step of the oracle's path asked on its own, `visagent eval --per-step`)

| step | mean train loss | pointer loss | held-out success | held-out steps right | seconds |
|---|---|---|---|---|---|
{rows}
"""
    path = model / "README.md"
    path.write_text(text, encoding="utf-8")
    (model / "results.json").write_text(json.dumps({"final": final, "curve": points, "times": times}, indent=2) + "\n",
                                        encoding="utf-8")
    return path


def _results_section(final: dict[str, Any] | None) -> str:
    if final is None:
        return ("## Held-out results\n\nNot measured by this run (`--final-eval-seeds 0`): run `visagent eval --split "
                "heldout --model <this dir>`\nand `visagent ground-eval` on `visagent scenarios export-grounding "
                "--split heldout`.")
    tags = "\n".join(f"| {k.split(':', 1)[1]} | {v['successes']}/{v['episodes']} | {v['success_rate']:.0%} |"
                     for k, v in sorted(final["per_tag"].items()))
    g = final.get("grounding") or {}
    prior = ("" if g.get("label_prior_rate") is None else
             f" (without looking: each label's most clicked place in the training records scores "
             f"{g['label_prior_rate']:.0%} on the same items)")
    head = ("" if g.get("head_points") is None else
            f" The points of {g['head_points']} items came from the checkpoint's pointing head (engine/pointer.py); "
            f"the coordinates the model wrote score {g['written_only_rate']:.0%} on their own.")
    st = final.get("steps")
    steps = ("" if not st else
             f"\n\nStep accuracy (`visagent eval --split heldout --per-step`: each step of the oracle's path asked on "
             f"its own, with the agent's prompt there): {st['correct']}/{st['steps']} ({st['step_accuracy']:.1%}), "
             f"mean right steps before the first wrong one {st['mean_prefix']:.2f}.")
    return f"""## Held-out results (`visagent eval --split heldout --model <this dir> --seeds {len(final['seeds'])}`)

Overall success: {final['success_rate']:.0%} over {final['episodes']} episodes (seeds {final['seeds']}).{steps}

| difficulty | successes | rate |
|---|---|---|
{tags}

Grounding (held-out sim set, `visagent ground-eval`): click inside the target {g.get('click_inside_rate', 0):.0%}
of {g.get('items', 0)} items{prior}.{head}"""
