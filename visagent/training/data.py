"""Training data from the sim world: oracle demonstrations and single-step grounding records.

Two kinds of supervised record, both in `visagent.traces.export`'s record schema (`messages` as the agent sends
them with images referenced by path, `tools`, `target` = the assistant turn in Qwen3.5 XML, `meta`):

- "trajectory": oracle runs on TRAIN-split scenarios through the real `Agent` + `OracleEngine` +
  `SimExecutor` (`visagent.traces.evaluate.run_episode`), traced, then exported by `visagent.traces.export.export_records`;
  every step of a successful run becomes one record (the exact prompt of that step → the oracle's call).
- "grounding" (curriculum): one screen of a train-split world, the task "click the Save button" (the sim
  grounding set's instruction wording), the agent's own first-step prompt, and the target a left click (tap
  on a phone) at the element's centre on the 0..1000 grid. Only elements whose label is unique on screen.

Held-out data never enters: scenarios must have split "train" and seeds must be >= TRAIN_SEED_BASE, while
`visagent eval` draws seeds from 0 (its --seed-start default) — `check_train_episode` raises otherwise and
is called for every episode generated here and for every record the trainer loads.

Layout of a data directory: `records.jsonl` (one record a line, image paths relative to the directory),
`traces/` (the oracle runs), `grounding/` (PNG screens), `data.json` (the manifest: data seed, scenarios,
seeds, counts).
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.core.errors import ConfigError

#: Training seeds start here; evaluation uses seeds below it (visagent eval: 0, 1, 2 ... by default).
TRAIN_SEED_BASE = 1000
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "data.json"


def check_train_episode(scenario: Any, seed: int | None) -> None:
    """Raise ConfigError unless (scenario, seed) may be used for training: split "train", seed >= TRAIN_SEED_BASE.

    `scenario`: a Scenario or a scenario id (looked up); None (a run outside the scenarios) is allowed.
    """
    if scenario is None:
        return
    if isinstance(scenario, str):
        found = _scenarios_by_id().get(scenario)
        if found is None:
            return  # a scenario unknown to this checkout cannot be a held-out one of it
        scenario = found
    if scenario.split != "train":
        raise ConfigError(f"scenario {scenario.id!r} is in the {scenario.split!r} split; only 'train' scenarios may "
                          "be used for training (held-out ones are for evaluation)")
    if seed is not None and int(seed) < TRAIN_SEED_BASE:
        raise ConfigError(f"seed {seed} of scenario {scenario.id!r} is an evaluation seed; training seeds start at "
                          f"{TRAIN_SEED_BASE}")


@functools.cache
def _scenarios_by_id() -> dict[str, Any]:
    from visagent.sim.scenarios import load_scenarios

    return {s.id: s for s in load_scenarios()}


def train_scenarios(ids: Sequence[str] | None = None) -> list[Any]:
    """Train-split scenarios (all, or those named). Raises ConfigError for a named held-out or unknown one."""
    from visagent.sim.scenarios import load_scenarios

    everything = {s.id: s for s in load_scenarios()}
    if ids:
        missing = [i for i in ids if i not in everything]
        if missing:
            raise ConfigError(f"unknown scenario(s) {', '.join(missing)}; see `visagent scenarios list`")
        chosen = [everything[i] for i in ids]
        for sc in chosen:
            check_train_episode(sc, None)
        return chosen
    return sorted((s for s in everything.values() if s.split == "train"), key=lambda s: s.id)


def train_seeds(data_seed: int, count: int) -> list[int]:
    """`count` distinct training seeds (>= TRAIN_SEED_BASE) drawn from `data_seed`."""
    rng = random.Random(f"visagent-train:{data_seed}")
    return sorted(rng.sample(range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + 1_000_000), count))


@dataclass
class DataSummary:
    """What `build_dataset` wrote. Counts of records by kind; episodes that the oracle failed are listed."""

    out: Path
    data_seed: int
    trajectory_records: int = 0
    grounding_records: int = 0
    episodes: int = 0
    failed_episodes: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    prompt_profile: str = "full"
    seeds: list[int] = field(default_factory=list)
    grounding_crops: int = 0
    history_images: int = 4

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "data_seed": self.data_seed, "trajectory_records": self.trajectory_records,
                "grounding_records": self.grounding_records, "episodes": self.episodes,
                "failed_episodes": self.failed_episodes, "scenarios": self.scenarios, "seeds": self.seeds,
                "train_seed_base": TRAIN_SEED_BASE, "prompt_profile": self.prompt_profile,
                "grounding_crops": self.grounding_crops, "history_images": self.history_images}


def oracle_traces(out: str | Path, scenarios: Iterable[Any], seeds: Sequence[int], *, workers: int = 2,
                  on_episode: Callable[[Any], None] | None = None) -> tuple[list[Path], list[str]]:
    """Run the oracle through the real agent loop on every scenario x seed; traces under `out`.

    `workers` > 1 runs the scenarios in that many processes (the sim world is pure Python: threads would share
    one core); `on_episode` is then called in this process as each scenario's episodes finish.
    Returns (trace directories of successful runs, "scenario seed: reason" of the others), in scenario order.
    Raises ConfigError for a held-out scenario or an evaluation seed.
    """
    chosen = list(scenarios)
    for sc in chosen:
        for seed in seeds:
            check_train_episode(sc, seed)
    if workers <= 1 or len(chosen) < 2:
        good, bad, _ = _oracle_runs(str(out), chosen, list(seeds), on_episode)
        return good, bad
    from concurrent.futures import ProcessPoolExecutor

    good: list[Path] = []
    bad: list[str] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        futures = [pool.submit(_oracle_runs, str(out), [sc.id], list(seeds)) for sc in chosen]
        for future in futures:
            g, b, episodes = future.result()
            good += g
            bad += b
            for episode in episodes if on_episode is not None else ():
                on_episode(episode)
    return good, bad


def _oracle_runs(out: str, scenarios: list[Any], seeds: list[int],
                 on_episode: Callable[[Any], None] | None = None) -> tuple[list[Path], list[str], list[Any]]:
    """oracle_traces' work in one process (scenarios, or their ids in a worker): (good traces, failures, the
    episodes' results)."""
    from visagent.loop.agent import AgentConfig
    from visagent.traces.evaluate import evaluate, oracle_factory

    chosen = [_scenarios_by_id()[s] if isinstance(s, str) else s for s in scenarios]
    report = evaluate(chosen, oracle_factory, seeds=seeds, workers=1, agent_config=AgentConfig(),
                      trace_dir=out, model="oracle", split="train", on_episode=on_episode)
    good = [Path(e.trace) for e in report.episodes if e.success and e.trace]
    bad = [f"{e.scenario} {e.seed}: {e.status} {e.reason}" for e in report.episodes if not e.success]
    return good, bad, list(report.episodes)


def _pool_context() -> Any:
    """Start method of the data workers: fork where there is one (no re-import of the caller's main module;
    the workers only run the sim world and touch no torch state), spawn elsewhere."""
    import multiprocessing

    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def crop_around(size: tuple[int, int], box: Sequence[float], rng: random.Random,
                min_scale: float = 0.4) -> tuple[int, int, int, int]:
    """A random crop (x1, y1, x2, y2) of an image of `size` that holds all of `box`: each side a random 40-100%
    of the image's (at least the box's), placed at random around the box, so the box lands anywhere in it."""
    width, height = size
    bx1, by1, bx2, by2 = (max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3]))
    cw = max(int(bx2 - bx1) + 1, int(width * rng.uniform(min_scale, 1.0)))
    ch = max(int(by2 - by1) + 1, int(height * rng.uniform(min_scale, 1.0)))
    cw, ch = min(cw, width), min(ch, height)
    x1 = rng.randint(max(0, int(bx2) - cw), min(int(bx1), width - cw))
    y1 = rng.randint(max(0, int(by2) - ch), min(int(by1), height - ch))
    return x1, y1, x1 + cw, y1 + ch


def _screens_of(scenario: Any, seed: int, screens: int, root: str) -> list[tuple[str, tuple[int, int], list]]:
    """Render the grounding screens of one train scenario (a Scenario, or its id in a worker process) x seed into
    PNGs under `root`: [(path, size, elements)]. Module-level so `grounding_records` can run it in workers."""
    from visagent.grounding.sim_export import _episode_screens, SimExportSummary

    sc = _scenarios_by_id()[scenario] if isinstance(scenario, str) else scenario
    check_train_episode(sc, seed)
    out = []
    for k, (image, elements) in enumerate(_episode_screens(sc, seed, screens, SimExportSummary(out=Path(root)))):
        path = (Path(root) / f"{sc.id}_s{seed}_{k}.png").resolve()
        image.save(path)
        out.append((str(path), image.size, list(elements)))
    return out


def grounding_records(out: str | Path, scenarios: Iterable[Any], seeds: Sequence[int], *, screens: int = 2,
                      per_screen: int = 6, data_seed: int = 0, relative_to: str | Path | None = None,
                      profile: str = "full", crops: int = 0, workers: int = 1) -> list[dict[str, Any]]:
    """Single-step grounding records ("click the X button" → its centre on the 0..1000 grid).

    Screens: up to `screens` distinct screens along the oracle's path per scenario x seed (PNG under `out`);
    up to `per_screen` elements whose instruction is unique on the screen (`unambiguous`), chosen with `data_seed`.
    The prompt is the agent's first-step prompt (`build_messages` with no history) in prompt `profile`. `crops` > 0 adds that many records
    per element whose screenshot is a random crop of the screen holding the element (`crop_around`; PNG beside the
    screen): the element then sits anywhere in the picture, so where it usually is on the screen no longer answers
    the instruction. The preprocessor fits each picture to the pixel budget, so a crop also reaches the model less
    downscaled than the whole screen (a zoom). Meta "crop": [x1, y1, x2, y2] in the screen's pixels; "bbox" and
    "image_size" are the crop's. Crops draw from their own random stream: the other records stay as without them.
    `workers` > 1 renders the screens in that many processes; the records are the same as with one.
    Raises ConfigError for held-out data.
    """
    from PIL import Image

    from visagent.core.actions import Action
    from visagent.screen.base import ScreenGeometry
    from visagent.loop.coords import from_screen
    from visagent.grounding.sim_export import instruction_for, unambiguous
    from visagent.loop.parsing import render_action
    from visagent.loop.prompting import build_messages, task_sentence
    from visagent.core.schemas import tool_for

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    base = Path(relative_to).resolve() if relative_to is not None else None
    chosen = list(scenarios)
    jobs = [(sc, seed) for sc in chosen for seed in seeds]
    for sc, seed in jobs:
        check_train_episode(sc, seed)
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        args = [(sc.id, seed, screens, str(root)) for sc, seed in jobs]  # ids: workers look the scenarios up
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
            rendered = list(pool.map(_screens_of, *zip(*args), chunksize=max(1, len(args) // (workers * 4))))
    else:
        rendered = [_screens_of(sc, seed, screens, str(root)) for sc, seed in jobs]
    rng = random.Random(f"visagent-grounding:{data_seed}")
    crop_rng = random.Random(f"visagent-grounding-crops:{data_seed}")  # its own, so crops change no other record
    records: list[dict[str, Any]] = []
    for (sc, seed), shots in zip(jobs, rendered):
        for k, (where, screen_size, elements) in enumerate(shots):
            path = Path(where)
            ref = str(path) if base is None else str(path.relative_to(base))
            unique, _ = unambiguous(elements)
            rng.shuffle(unique)
            image = None
            for n, e in enumerate(unique[:per_screen]):
                task = task_sentence(instruction_for(e.label.strip(), e.role))
                views: list[tuple[str, list[int] | None]] = [(ref, None)]  # (screenshot, crop box or None)
                for c in range(crops):
                    if image is None:
                        with Image.open(path) as img:
                            image = img.convert("RGB")
                    box = crop_around(screen_size, e.bbox, crop_rng)
                    crop_path = path.with_name(f"{path.stem}_e{n}c{c}.png")
                    image.crop(box).save(crop_path)
                    views.append((str(crop_path) if base is None else str(crop_path.relative_to(base)), list(box)))
                x, y = e.center
                for v, (shot, crop) in enumerate(views):
                    ox, oy = crop[:2] if crop else (0, 0)
                    size = (crop[2] - crop[0], crop[3] - crop[1]) if crop else tuple(screen_size)
                    click = Action("click" if sc.platform == "phone" else "left_click",
                                   coordinate=(x - ox, y - oy), space="screen")
                    model = from_screen(click, ScreenGeometry.simple(size[0], size[1]),
                                        space="norm1000").with_(mapping=None)
                    bbox = [e.bbox[0] - ox, e.bbox[1] - oy, e.bbox[2] - ox, e.bbox[3] - oy]
                    records.append({
                        "id": f"ground:{sc.id}:{seed}:{k}:{n}" + (f":c{v - 1}" if crop else ""),
                        "instruction": task,
                        "screenshot": shot,
                        "history": [],
                        "messages": build_messages(task, [], shot, platform=sc.platform,  # type: ignore[arg-type]
                                                   space="norm1000", profile=profile),
                        "tools": [tool_for(sc.platform, "norm1000", size[0], size[1], profile)],
                        "target": render_action(model, "qwen35", platform=sc.platform),
                        "meta": {"kind": "grounding", "scenario": sc.id, "seed": seed, "split": sc.split,
                                 "prompt_profile": profile, "platform": sc.platform, "bbox": bbox,
                                 "image_size": list(size), "label": e.label, "role": e.role,
                                 **({"crop": crop} if crop else {})},
                    })
    return records


def build_dataset(out: str | Path, *, data_seed: int = 0, seeds_per_scenario: int = 8, grounding_seeds: int = 8,
                  screens: int = 2, per_screen: int = 6, scenario_ids: Sequence[str] | None = None,
                  workers: int = 2, on_episode: Callable[[Any], None] | None = None,
                  profile: str = "full", crops: int = 0, history_images: int = 4) -> DataSummary:
    """Write a training data directory (see the module docstring) and return its summary.

    Trajectory records come from `seeds_per_scenario` oracle runs per train scenario, grounding records from
    `grounding_seeds` further seeds (disjoint from those). `profile`: the prompt profile of every record
    ("full" or "compact", see visagent.core.schemas; the model's `visagent.json` says which). `crops`: cropped copies of
    each grounding record (see `grounding_records`). `history_images`: the screenshot window of the trajectory
    records' prompts (older steps as one-line summaries; a grounding record has one screenshot anyway); the
    model trained on them declares it (its visagent.json) and the agent keeps to it. Raises ConfigError for bad counts or held-out data.
    """
    if seeds_per_scenario < 0 or grounding_seeds < 0 or screens < 1 or per_screen < 1 or crops < 0:
        raise ConfigError("seeds, grounding seeds and crops must be >= 0, screens and per-screen >= 1")
    if history_images < 1:
        raise ConfigError(f"history images must be at least 1, got {history_images}")
    root = Path(out).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    scenarios = train_scenarios(scenario_ids)
    seeds = train_seeds(data_seed, seeds_per_scenario + grounding_seeds)
    traj_seeds, ground_seeds = seeds[:seeds_per_scenario], seeds[seeds_per_scenario:]
    summary = DataSummary(out=root, data_seed=data_seed, scenarios=[s.id for s in scenarios], seeds=seeds,
                          prompt_profile=profile, grounding_crops=crops, history_images=history_images)
    records: list[dict[str, Any]] = []
    if traj_seeds:
        from visagent.traces.export import export_records

        traces, failed = oracle_traces(root / "traces", scenarios, traj_seeds, workers=workers, on_episode=on_episode)
        summary.episodes = len(traces) + len(failed)
        summary.failed_episodes = failed
        for rec in export_records(traces, splits=("train",), relative_to=root, profile=profile,
                                  history_images=history_images):
            rec["meta"]["kind"] = "trajectory"
            records.append(rec)
        summary.trajectory_records = len(records)
    if ground_seeds:
        ground = grounding_records(root / "grounding", scenarios, ground_seeds, screens=screens,
                                   per_screen=per_screen, data_seed=data_seed, relative_to=root, profile=profile,
                                   crops=crops, workers=workers)
        summary.grounding_records = len(ground)
        records += ground
    for rec in records:
        check_train_episode(rec["meta"].get("scenario"), rec["meta"].get("seed"))
    with open(root / RECORDS_FILE, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (root / MANIFEST_FILE).write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def load_records(data: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """Records of a data directory (its records.jsonl) or of one .jsonl file; returns (records, the folder
    image paths are relative to). Every record is checked with `check_train_episode`.
    Raises ConfigError for a missing file, a bad line or a record without messages/target."""
    p = Path(data).expanduser()
    file = p / RECORDS_FILE if p.is_dir() else p
    if not file.is_file():
        raise ConfigError(f"--data {data}: no {RECORDS_FILE} there; build one with `visagent train-data --out DIR` "
                          "or `visagent export --out FILE.jsonl`")
    records: list[dict[str, Any]] = []
    with open(file, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{file}:{n}: not JSON ({exc.msg}); fix or remove the line") from None
            if not isinstance(rec, dict) or not rec.get("messages") or not isinstance(rec.get("target"), str):
                raise ConfigError(f"{file}:{n}: a training record needs 'messages' and a 'target' string")
            meta = rec.get("meta") or {}
            check_train_episode(meta.get("scenario"), meta.get("seed"))
            records.append(rec)
    if not records:
        raise ConfigError(f"{file}: holds no records")
    return records, file.parent
