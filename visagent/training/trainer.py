"""Fine-tune a local Qwen3.5 checkpoint on training records (`visagent train`).

Full fine-tune (small models) or LoRA through peft (`lora=True`, merged into the weights when saved), on
CPU or CUDA. Each optimiser step averages the loss of `batch` examples (one forward each: prompts differ
in length and image count). Batches are drawn by a per-step RNG (`seed`, step), so a resumed run sees the
same batches; with `grounding_steps` > 0 the first steps draw only grounding records (curriculum).

Output directory `out`:
- a normal checkpoint (config, weights, tokenizer, chat template, preprocessor) written at the end, which
  `load_engine(out)` and `visagent model-info out` accept;
- `checkpoint-<step>/` every `save_every` steps: a checkpoint too (fp32 weights) plus `trainer_state.pt`
  (optimizer, scheduler, step, RNG states, LoRA adapter) from which `resume=True` continues;
- `curve.json`: {"points": [{"step", "loss", "heldout_success", "per_tag", "heldout_step_accuracy", "seconds"}],
  "config"} where held-out success comes from the real evaluation (`visagent.traces.evaluate.evaluate` over held-out
  scenarios) and step accuracy from `visagent.traces.step_eval` (each step of the oracle's path on its own).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine import fused_training_problem
from engine import FlagHead, save_pointer_head
from visagent.core.errors import ConfigError
from visagent.training.data import load_records
from visagent.training.examples import batch_losses, build_example, example_terms, prefix_cache
from visagent.training.pointer import PointerHead

#: Files of a checkpoint directory that are not weights (copied from the base).
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
              "processor_config.json", "generation_config.json", "special_tokens_map.json", "vocab.json",
              "merges.txt", "visagent.json")
STATE_FILE = "trainer_state.pt"
#: A `max_minutes` run times its steps from WARM_STEPS (the first ones pay for start-up: CUDA context, kernel
#: selection) to FIT_AFTER, then fits its step count to the budget.
WARM_STEPS = 5
FIT_AFTER = 20
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "in_proj_qkvz", "in_proj_ba", "out_proj")


@dataclass
class TrainConfig:
    """Settings of one training run. lr: peak learning rate (linear warm-up `warmup` steps, cosine decay to
    10%); `vision_lr_mult`: multiplier for the vision tower's lr; eval_every/save_every in steps (0: never,
    except at the end); eval_seeds: held-out seeds 0..n-1 per held-out scenario; eval_max_new_tokens caps
    one answer during evaluation; `share_prefix`: run each distinct system turn of a batch once, without
    gradient, and every example from a copy of its cache (visagent.training.examples: 1.4x faster per compact
    example on CPU, bench/train_step.py; same loss, gradient without the path through the system turn's
    activations); `pointer_weight` > 0 adds the auxiliary pointer loss on grounding records
    (visagent.training.pointer) with this weight; its head trains alongside and every checkpoint gets its flag
    part (`pointer_head.safetensors`, engine/pointer.py: the loaded engine then says where it points);
    `readout_weight` > 0 adds the readout loss (same module: the last full-attention layer attends from the
    coordinate digits to the target, its input carries each visual token's position), run with eager attention;
    `micro_batch` > 1 runs that many examples of a step in one padded forward (`examples.batch_losses`: the same
    losses; a GPU's speed-up, plain target loss only); `trajectory_share` (0..1): after the grounding-only steps,
    each example is a trajectory record with this probability (None: uniform over all records, so a data set with
    30x more grounding than trajectory records hardly shows the model a trajectory); `max_minutes` > 0: a time
    budget for the steps — after FIT_AFTER steps the run shortens `steps` (and `grounding_steps` in proportion) to
    what fits at the speed so far, refits at 2x, 4x, 8x ... FIT_AFTER steps (the first steps can run faster than
    the steady speed; never above the steps asked), and ends early with its final checkpoint if time still runs
    out;
    `prep_threads` > 0: that many threads build the next step's examples (image decoding and preprocessing,
    ~60 ms an example on one core) while the current step trains — the GPU otherwise waits for them."""

    base: str
    data: str
    out: str
    steps: int = 1000
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.0
    vision_lr_mult: float = 1.0
    device: str = "cpu"
    resume: bool = False
    eval_every: int = 0
    save_every: int = 200
    eval_seeds: int = 1
    eval_max_new_tokens: int = 96
    eval_scenarios: tuple[str, ...] = ()
    lora: bool = False
    lora_rank: int = 16
    grounding_steps: int = 0
    seed: int = 0
    max_pixels: int | None = None
    threads: int | None = None
    save_dtype: str = "bf16"
    share_prefix: bool = False
    pointer_weight: float = 0.0
    readout_weight: float = 0.0
    micro_batch: int = 1
    trajectory_share: float | None = None
    max_minutes: float = 0.0
    prep_threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_base(base: str, device: str, max_pixels: int | None = None, dtype: str = "fp32") -> Any:
    """The base checkpoint as a LocalEngine on `device` ("tiny" = the shipped checkpoint); fp32 for a full
    fine-tune, "auto" (bf16 on CUDA) under LoRA, where only the adapters train."""
    from engine import tiny_checkpoint_path
    from engine import LocalEngine

    path = tiny_checkpoint_path() if base == "tiny" else Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"--base {base}: not a checkpoint directory (no config.json); pass 'tiny' or a directory")
    return LocalEngine(path, spec=str(path), device=device, dtype=dtype, max_pixels=max_pixels)


def check_aux_weights(pointer_weight: float, readout_weight: float) -> None:
    """One line (ConfigError) for a negative auxiliary loss weight; `train-tiny` calls it before building data."""
    for flag, weight in (("--pointer-weight", pointer_weight), ("--readout-weight", readout_weight)):
        if weight < 0:
            raise ConfigError(f"{flag} must be >= 0 (got {weight})")


def lr_lambda(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine from 1 to 0.1 at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(step: int, batch: int, pools: dict[str, list[int]], grounding_steps: int, seed: int,
                  trajectory_share: float | None = None) -> list[int]:
    """Record indices of one step (a pure function of step and seed, so resume sees the same batches)."""
    rng = random.Random(f"{seed}:{step}")
    if step < grounding_steps and pools["grounding"]:
        return [rng.choice(pools["grounding"]) for _ in range(batch)]
    if trajectory_share is None or not pools.get("trajectory") or not pools["grounding"]:
        return [rng.choice(pools["all"]) for _ in range(batch)]
    return [rng.choice(pools["trajectory"] if rng.random() < trajectory_share else pools["grounding"])
            for _ in range(batch)]


class Trainer:
    """One training run; `run()` trains to `config.steps` and returns the output directory."""

    def __init__(self, config: TrainConfig, *, on_point: Callable[[dict[str, Any]], None] | None = None,
                 progress: bool = True) -> None:
        if config.steps < 1 or config.batch < 1 or config.lr <= 0:
            raise ConfigError(f"--steps, --batch must be >= 1 and --lr > 0 (got {config.steps}, {config.batch}, {config.lr})")
        if config.micro_batch < 1 or config.max_minutes < 0 or config.prep_threads < 0:
            raise ConfigError(f"--micro-batch must be >= 1, --max-minutes and --prep-threads >= 0 (got "
                              f"{config.micro_batch}, {config.max_minutes}, {config.prep_threads})")
        if config.trajectory_share is not None and not 0 <= config.trajectory_share <= 1:
            raise ConfigError(f"--trajectory-share must be between 0 and 1 (got {config.trajectory_share})")
        if config.micro_batch > 1 and (config.pointer_weight > 0 or config.readout_weight > 0 or config.share_prefix):
            raise ConfigError("--micro-batch > 1 trains the plain target loss only; drop --pointer-weight, "
                              "--readout-weight and --share-prefix, or use --micro-batch 1")
        self.config = config
        self.out = Path(config.out).expanduser()
        self.on_point = on_point
        self.progress = progress
        self.records, self.root = load_records(config.data)
        kinds = [(r.get("meta") or {}).get("kind") for r in self.records]
        self.pools = {"all": list(range(len(self.records))),
                      "grounding": [i for i, k in enumerate(kinds) if k == "grounding"],
                      "trajectory": [i for i, k in enumerate(kinds) if k != "grounding"]}
        self.engine = load_base(config.base, config.device, config.max_pixels, "auto" if config.lora else "fp32")
        self.base_path = Path(self.engine.checkpoint.path)
        profile = self.engine.info.prompt_profile
        # records that say which prompt they were rendered in (export, train-data) must match the base's
        other = {(r.get("meta") or {}).get("prompt_profile") for r in self.records} - {profile, None}
        if other:
            raise ConfigError(f"--data has records in prompt profile {sorted(other)[0]!r} but --base {config.base} "
                              f"is prompted with {profile!r} (its visagent.json); rebuild the data with "
                              f"--prompt-profile {profile}")
        # the screenshot window the trajectory records were rendered with (export/train-data write it into meta):
        # the engine prompts with it while evaluating, and every checkpoint declares it in its visagent.json
        windows = {(self.records[i].get("meta") or {}).get("history_images") for i in self.pools["trajectory"]}
        windows.discard(None)
        self.history_images: int | None = windows.pop() if len(windows) == 1 else None
        if self.history_images is not None:
            self.engine.info = dataclasses.replace(self.engine.info, history_images=self.history_images)
        self.model = self.engine.model
        problem = fused_training_problem(str(self.engine.device))
        if problem:
            raise ConfigError(problem)
        if config.lora:
            self.model = self._with_lora(self.model)
        self.model.train()
        self.pointer_head: PointerHead | None = None
        check_aux_weights(config.pointer_weight, config.readout_weight)
        if config.readout_weight > 0:  # attention weights are returned by the eager implementation only
            self.model.set_attn_implementation({"text_config": "eager"})
        if config.pointer_weight > 0 or config.readout_weight > 0:
            hidden = int(self.engine.model.config.get_text_config().hidden_size)
            with torch.random.fork_rng(devices=[]):  # the same head for the same seed, whatever ran before
                torch.manual_seed(config.seed)
                self.pointer_head = PointerHead(hidden, readout=config.readout_weight > 0).to(self.engine.device)
            if self.engine.pointer_head is not None:  # a base that points already: its flag goes on training
                self.pointer_head.load_state_dict(self.engine.pointer_head.state_dict(), strict=False)
        self.pointer_losses: list[float] = []
        self.readout_losses: list[float] = []
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_lambda(s, config.warmup, config.steps))
        self._pool: Any = None  # prep_threads' executor (created on first use)
        self._ahead: tuple[int, list[int], list[Any]] | None = None  # (step, indices, futures) built ahead
        self._warm: tuple[int, float] | None = None  # max_minutes: (step, seconds) when the timing started
        self._asked: tuple[int, int, int, int] | None = None  # max_minutes: steps, grounding, save, eval as asked
        self._marks: dict[str, int] = {}  # max_minutes: evaluation / save marks passed, in the asked run's steps
        self.step = 0
        self.started_at = 0  # the step run() started from (set there; > 0 after a resume)
        self.points: list[dict[str, Any]] = []

    # -- set-up --------------------------------------------------------------------------------------
    def _with_lora(self, model: Any) -> Any:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ConfigError("--lora needs peft: pip install 'visagent[train]' (or pip install peft)") from None

        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        targets = [t for t in LORA_TARGETS if t in names]
        if not targets:
            raise ConfigError("--lora: the model has none of the usual projection layers; use a full fine-tune")
        lora = LoraConfig(r=self.config.lora_rank, lora_alpha=2 * self.config.lora_rank, target_modules=targets,
                          lora_dropout=0.0)
        return get_peft_model(model, lora)

    def _optimizer(self) -> torch.optim.Optimizer:
        vision, rest = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (vision if ".visual." in f".{name}" else rest).append(p)
        if self.pointer_head is not None:
            rest += list(self.pointer_head.parameters())
        groups = [{"params": rest, "lr": self.config.lr}]
        if vision:
            groups.append({"params": vision, "lr": self.config.lr * self.config.vision_lr_mult})
        return torch.optim.AdamW(groups, lr=self.config.lr, weight_decay=self.config.weight_decay)

    # -- the loop ------------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One optimiser step over `batch` examples; returns the mean target loss."""
        cfg = self.config
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        examples = self._examples(self.step)
        total = self.accumulate(examples)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.pointer_head is not None:
            params += list(self.pointer_head.parameters())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return total / cfg.batch

    def _indices(self, step: int) -> list[int]:
        cfg = self.config
        return batch_indices(step, cfg.batch, self.pools, cfg.grounding_steps, cfg.seed, cfg.trajectory_share)

    def _examples(self, step: int) -> list[Any]:
        """The examples of `step`; with `prep_threads`, built by threads and the next step's started now."""
        cfg = self.config
        if not cfg.prep_threads:
            return [build_example(self.engine, self.records[i], self.root) for i in self._indices(step)]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=cfg.prep_threads, thread_name_prefix="prep")
        indices = self._indices(step)
        ahead, self._ahead = self._ahead, None
        # built ahead for this step with these indices (not stale after a --max-minutes re-fit), else now
        futures = ahead[2] if ahead and ahead[:2] == (step, indices) else self._submit(indices)
        if step + 1 < cfg.steps:
            nxt = self._indices(step + 1)
            self._ahead = (step + 1, nxt, self._submit(nxt))
        return [f.result() for f in futures]

    def _stop_prep(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._ahead = None, None

    def _submit(self, indices: list[int]) -> list[Any]:
        return [self._pool.submit(build_example, self.engine, self.records[i], self.root) for i in indices]

    def accumulate(self, examples: list[Any]) -> float:
        """Backward of one step's examples (gradients add up; no optimiser step): `micro_batch` per padded
        forward, or one forward each with the auxiliary terms. Returns the sum of their target losses."""
        return self._accumulate_batched(examples) if self.config.micro_batch > 1 else self._accumulate(examples)

    def _accumulate_batched(self, examples: list[Any]) -> float:
        """Backward of the examples' target losses, `micro_batch` of them per padded forward; returns their sum."""
        cfg = self.config
        total = 0.0
        for k in range(0, len(examples), cfg.micro_batch):
            with autocast_for(cfg.device):
                losses = batch_losses(self.model, examples[k:k + cfg.micro_batch], self.engine.device)
            (losses.sum() / cfg.batch).backward()
            total += float(losses.detach().sum())
        return total

    def _accumulate(self, examples: list[Any]) -> float:
        """Backward of each example's loss terms (one forward each); returns the sum of their target losses."""
        cfg = self.config
        total = 0.0
        autocast = autocast_for(cfg.device)
        prefixes: dict[Any, Any] = {}
        for example in examples:
            prefix = None
            key = example.prefix_key() if cfg.share_prefix else None
            if key is not None:
                if key not in prefixes:  # once per distinct system turn in the batch, at the current weights
                    with autocast:
                        prefixes[key] = prefix_cache(self.model, example, self.engine.device)
                prefix = prefixes[key]
            with autocast:
                terms = example_terms(self.model, example, self.engine.device, prefix=prefix,
                                      pointer_head=self.pointer_head, pointer=cfg.pointer_weight > 0,
                                      readout=cfg.readout_weight > 0)
            loss = terms["lm"]
            full = loss
            if "pointer" in terms:
                full = full + cfg.pointer_weight * terms["pointer"]
                self.pointer_losses.append(float(terms["pointer"].detach()))
            if "readout" in terms:
                full = full + cfg.readout_weight * terms["readout"]
                self.readout_losses.append(float(terms["readout"].detach()))
            (full / cfg.batch).backward()
            total += float(loss.detach())
        return total

    def run(self, until: int | None = None) -> Path:
        """Train (resuming when asked), evaluating and saving at intervals; returns the output directory.
        `until`: stop after this step as an interruption would (no final checkpoint; tests of resume).
        On CPU denormal floats read as zero meanwhile (engine/devices.py: trained weights made steps ~1.7x slower)."""
        from engine import flush_denormals

        with flush_denormals(self.engine.device):
            return self._run(until)

    def _run(self, until: int | None) -> Path:
        from tqdm import tqdm

        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.resume()
        self.started_at = self.step  # > 0 when this run continued a checkpoint (cost reports count from here)
        threads = cfg.threads
        if threads:
            torch.set_num_threads(threads)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, desc="train", unit="step")
        losses: list[float] = []
        started = time.perf_counter()
        while self.step < cfg.steps:
            if until is not None and self.step >= until:
                bar.close()
                self._stop_prep()
                return self.out
            losses.append(self.train_step())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if cfg.max_minutes:
                self._fit_budget(time.perf_counter() - started, bar)
            at_end = self.step == cfg.steps
            if self._due("eval") or at_end:
                self.record_point(sum(losses) / len(losses), time.perf_counter() - started,
                                  evaluate=bool(cfg.eval_every))
                losses = []
            if self._due("save") or at_end:
                self.save_checkpoint(self.out / f"checkpoint-{self.step}", state=True)
        bar.close()
        self._stop_prep()
        self.save_checkpoint(self.out, state=False, dtype=cfg.save_dtype)
        return self.out

    def _fit_budget(self, elapsed: float, bar: Any) -> None:
        """`max_minutes`: after FIT_AFTER steps of this run, and again after 2x, 4x, 8x ... as many, set `steps`
        to what fits at the speed of the steps since WARM_STEPS (never more than asked), and the grounding-only,
        save and evaluation intervals in proportion to the asked ones (the cosine schedule reads `steps` as it
        goes); end at the current step once the budget is spent. The refits matter: the first steps can run
        faster than the steady speed (run 20 on the 2-core CPU: 2.6 s a step over steps 5-20, ~3.1 s later), and
        a run fitted only once then reaches its budget before its schedule ends."""
        cfg = self.config
        if self._asked is None:
            self._asked = (cfg.steps, cfg.grounding_steps, cfg.save_every, cfg.eval_every)
        asked, grounding, save_every, eval_every = self._asked
        budget = cfg.max_minutes * 60
        done = self.step - self.started_at
        fitted: int | None = None
        if done == WARM_STEPS:
            self._warm = (self.step, elapsed)
        k = done // FIT_AFTER
        if done % FIT_AFTER == 0 and k >= 1 and k & (k - 1) == 0:  # at FIT_AFTER x 1, 2, 4, 8 ...
            step0, time0 = self._warm or (self.started_at, 0.0)
            per_step = (elapsed - time0) / max(1, self.step - step0)
            fitted = min(asked, self.step + int(0.9 * (budget - elapsed) / max(per_step, 1e-9)))
        if elapsed >= budget:
            fitted = self.step
        if fitted is not None and fitted != cfg.steps:
            fitted = max(fitted, self.step)
            scale = fitted / asked
            cfg.grounding_steps = round(grounding * scale)
            cfg.save_every = max(1, round(save_every * scale)) if save_every else 0
            cfg.eval_every = max(1, round(eval_every * scale)) if eval_every else 0
            cfg.steps = fitted
            bar.total = cfg.steps
            bar.refresh()

    def _due(self, kind: str) -> bool:
        """Whether a held-out evaluation (`kind` "eval") or a checkpoint ("save") is due after this step: every
        `eval_every` / `save_every` steps; once `max_minutes` has fitted the run's length, at the same fractions
        of the run as asked (a mark in the asked run's steps, each passed once), so a refit that moves the end
        neither doubles an evaluation nor skips one."""
        cfg = self.config
        every = cfg.eval_every if kind == "eval" else cfg.save_every
        if not every:
            return False
        if self._asked is None:
            return self.step % every == 0
        asked_steps, _, asked_save, asked_eval = self._asked
        asked_every = asked_eval if kind == "eval" else asked_save
        mark = (self.step * asked_steps // cfg.steps) // asked_every
        if mark <= self._marks.get(kind, self.started_at // asked_every):  # none passed yet: where the run began
            return False
        self._marks[kind] = mark
        return True

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate_heldout(self) -> dict[str, Any]:
        """Held-out success with the model as it is now, through the real agent loop and evaluation."""
        from engine.api import GenerationConfig
        from visagent.loop.agent import AgentConfig
        from visagent.traces.evaluate import evaluate
        from visagent.sim.scenarios import load_scenarios
        from visagent.traces.step_eval import step_accuracy

        cfg = self.config
        scenarios = [s for s in load_scenarios() if s.split == "heldout"
                     and (not cfg.eval_scenarios or s.id in cfg.eval_scenarios)]
        if not scenarios:
            return {}
        self.model.eval()
        engine = self.engine
        if cfg.lora:
            engine.model = self.model  # the peft wrapper forwards to the base with adapters
        config = AgentConfig(generation=GenerationConfig(max_new_tokens=cfg.eval_max_new_tokens, temperature=0.0))
        # clicks go where the flag points now, as they will from the checkpoint this step saves
        base_head, base_info = engine.pointer_head, engine.info
        if self.pointer_head is not None and cfg.pointer_weight > 0:
            engine.pointer_head = self._flag_head()
            engine.info = dataclasses.replace(base_info, points=True)
        try:
            report = evaluate(scenarios, lambda sc, ex: engine, seeds=list(range(cfg.eval_seeds)), workers=1,
                              agent_config=config, model=f"train step {self.step}", split="heldout")
            # each step of the oracle's path asked on its own: moves long before episode success does
            steps = step_accuracy(engine, scenarios, list(range(cfg.eval_seeds)), model=f"train step {self.step}",
                                  split="heldout", config=config.generation)
        finally:
            engine.pointer_head, engine.info = base_head, base_info
        self.model.train()
        per_tag = {k: v["success_rate"] for k, v in report.per_tag().items() if k.startswith("difficulty:")}
        return {"heldout_success": report.success_rate, "per_tag": per_tag, "episodes": len(report.episodes),
                "heldout_step_accuracy": round(steps.accuracy, 4), "heldout_steps": len(steps.outcomes)}

    def _flag_head(self) -> FlagHead:
        """A detached copy of the training head's flag part: what `save_pointer_head` writes, as an engine loads it."""
        assert self.pointer_head is not None
        return FlagHead.from_state(self.pointer_head.state_dict()).to(self.engine.device)

    def record_point(self, loss: float, seconds: float, *, evaluate: bool) -> dict[str, Any]:
        point: dict[str, Any] = {"step": self.step, "loss": round(loss, 5), "seconds": round(seconds, 1)}
        if self.pointer_losses:
            point["pointer_loss"] = round(sum(self.pointer_losses) / len(self.pointer_losses), 5)
            self.pointer_losses = []
        if self.readout_losses:
            point["readout_loss"] = round(sum(self.readout_losses) / len(self.readout_losses), 5)
            self.readout_losses = []
        if evaluate:
            point.update(self.evaluate_heldout())
        self.points.append(point)
        (self.out / "curve.json").write_text(json.dumps({"points": self.points, "config": self.config.to_dict()},
                                                        indent=2) + "\n", encoding="utf-8")
        if self.on_point is not None:
            self.on_point(point)
        return point

    # -- saving and resuming -------------------------------------------------------------------------
    def save_checkpoint(self, path: Path, *, state: bool, dtype: str = "fp32") -> Path:
        """A normal checkpoint directory at `path` (weights in `dtype`); with `state`, also the trainer state."""
        path.mkdir(parents=True, exist_ok=True)
        model = self.model
        if self.config.lora:
            import copy

            model = copy.deepcopy(self.model).merge_and_unload()
        if dtype == "bf16":
            import copy

            model = copy.deepcopy(model).to(torch.bfloat16)
        model.save_pretrained(str(path))
        for name in SIDE_FILES:
            src = self.base_path / name
            if src.is_file() and src.resolve() != (path / name).resolve():
                shutil.copyfile(src, path / name)
        if self.history_images is not None:  # trained on prompts with this many screenshots: the agent keeps to it
            notes = path / "visagent.json"
            data = json.loads(notes.read_text(encoding="utf-8")) if notes.is_file() else {}
            data["history_images"] = self.history_images
            notes.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        if self.pointer_head is not None and self.config.pointer_weight > 0:  # the flag trains only with the pointer term
            save_pointer_head(self.pointer_head.state_dict(), path, trained_steps=self.step)
        if self.config.max_pixels:  # trained at this budget: the agent should send images at it too
            pre = path / "preprocessor_config.json"
            data = json.loads(pre.read_text(encoding="utf-8")) if pre.is_file() else {}
            data.setdefault("size", {})["longest_edge"] = int(self.config.max_pixels)
            data.pop("max_pixels", None)
            pre.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        if state:
            torch.save({
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"python": random.getstate(), "torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                # exact fp32 parameters (the saved safetensors may be bf16 or renamed by transformers on save)
                "trainable": {n: p.detach().cpu().clone() for n, p in self.model.named_parameters()
                              if p.requires_grad},
                "points": self.points,
                "config": self.config.to_dict(),
                "pointer_head": self.pointer_head.state_dict() if self.pointer_head is not None else None,
            }, path / STATE_FILE)
        return path

    def resume(self) -> bool:
        """Continue from the newest `checkpoint-<step>/` under the output directory; False when there is none."""
        found = sorted((p for p in self.out.glob("checkpoint-*") if (p / STATE_FILE).is_file()),
                       key=lambda p: int(p.name.split("-")[-1]))
        if not found:
            return False
        latest = found[-1]
        state = torch.load(latest / STATE_FILE, weights_only=False)
        params = dict(self.model.named_parameters())
        saved = state["trainable"]
        if set(saved) != {n for n, p in params.items() if p.requires_grad}:
            raise ConfigError(f"{latest}: its parameters do not match this model; resume with the same --base "
                              "and --lora setting")
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)
        if self.pointer_head is not None:
            if state.get("pointer_head") is None:
                raise ConfigError(f"{latest}: was trained without --pointer-weight or --readout-weight; resume "
                                  "with the same settings")
            saved_head, head = set(state["pointer_head"]), set(self.pointer_head.state_dict())
            if saved_head != head:
                # e.g. --readout-weight on one side only, or a checkpoint from before the readout's carry probe
                differ = ", ".join(sorted(saved_head ^ head))
                raise ConfigError(f"{latest}: its auxiliary heads differ from this run's ({differ}); resume with "
                                  "the same --pointer-weight / --readout-weight and visagent version, or start a new "
                                  "run with --base on that checkpoint")
            try:
                self.pointer_head.load_state_dict(state["pointer_head"])
            except RuntimeError:  # same names, other shapes
                raise ConfigError(f"{latest}: its auxiliary heads' shapes differ from this run's; resume with the "
                                  "same --base and visagent version") from None
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError:
            raise ConfigError(f"{latest}: its optimizer state does not match these settings; resume with the same "
                              "--base, --lora, --pointer-weight and --readout-weight") from None
        self.scheduler.load_state_dict(state["scheduler"])
        random.setstate(state["rng"]["python"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])
        self.points = list(state.get("points") or [])
        return True


def autocast_for(device: str) -> Any:
    """bf16 autocast on CUDA (as the trainer runs), a no-op context elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else _null()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
