"""Seconds per training step of the tiny recipe on this machine: where a step's time goes (building the examples
vs the forward and backward passes) and what `--micro-batch` and `--prep-threads` change.

Records come from `visagent.training.data.build_dataset` (a few train scenarios, compact-task-first prompt) on a
fresh random-weight base of the recipe's sizes (`visagent.training.recipe.RECIPE_SIZES`), built in a temporary
directory; one step's examples are `--batch` records drawn at random. It times (median of `--repeat` after one
warm-up):

- building the step's examples in the loop, and with `--prep-threads` threads;
- fwd + bwd of the step at each micro-batch size (1 = one forward per example, as without --micro-batch), on
  `--device`, through the trainer's own `Trainer.accumulate` (bf16 autocast on CUDA).

    .venv/bin/python bench/train_batch.py [--device cpu|cuda] [--batch 8] [--micro 1,8] [--prep-threads 2]
                                          [--base tiny|DIR] [--keep-denormals]

`--base`: time a trained checkpoint (tiny: the shipped one) instead of the fresh base. `--keep-denormals`: do
not flush denormal floats to zero (the engine does on CPU, engine/devices.flush_denormals): run once with and
once without to see what trained weights cost in denormal arithmetic.

Prints a table, then one JSON line: {"bench": "train_batch", "device", "batch", "build_s", "build_threads_s",
"rows": [{"micro_batch", "seconds", "examples_per_s"}]}.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCENARIOS = ["desktop-settings-wifi-off", "phone-settings-bluetooth-on", "desktop-files-delete", "phone-notes-write-save"]


def _timed(fn, repeat: int, sync=lambda: None) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro", default="1,8", help="micro-batch sizes to time, comma-separated")
    ap.add_argument("--prep-threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--base", default=None, help="a trained checkpoint directory or tiny (default: a fresh base)")
    ap.add_argument("--keep-denormals", action="store_true", help="leave denormal floats on (the engine flushes them)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.keep_denormals:  # as the trainer's run does (engine/devices.flush_denormals); this bench times
        torch.set_flush_denormal(True)  # Trainer.accumulate outside run(), so it sets the switch itself

    from engine.tiny import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus
    from visagent.training.data import build_dataset
    from visagent.training.examples import build_example
    from visagent.training.recipe import RECIPE_SIZES
    from visagent.training.trainer import TrainConfig, Trainer

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        profile = "compact-task-first"
        if args.base:
            from engine import tiny_checkpoint_path

            base = tiny_checkpoint_path() if args.base == "tiny" else Path(args.base)
        else:
            base = build_tiny_checkpoint(Path(tmp) / "base", agent_corpus(seed=0).texts, seed=0,
                                         prompt_profile=profile, **RECIPE_SIZES)
        data = Path(tmp) / "data"
        build_dataset(data, seeds_per_scenario=1, grounding_seeds=2, scenario_ids=SCENARIOS, profile=profile)
        trainer = Trainer(TrainConfig(base=str(base), data=str(data), out=str(Path(tmp) / "out"), batch=args.batch,
                                      device=args.device), progress=False)
        engine, root = trainer.engine, trainer.root
        picked = random.Random(0).choices(trainer.records, k=args.batch)

        def build():
            return [build_example(engine, r, root) for r in picked]

        build_s = _timed(build, args.repeat)
        with ThreadPoolExecutor(args.prep_threads) as pool:
            threads_s = _timed(lambda: list(pool.map(lambda r: build_example(engine, r, root), picked)), args.repeat)
        examples = build()

        for micro in (int(m) for m in args.micro.split(",")):
            trainer.config.micro_batch = micro

            def step():  # the trainer's own backward of a step (no optimiser step: the weights stay put)
                trainer.model.zero_grad(set_to_none=True)
                trainer.accumulate(examples)

            seconds = _timed(step, args.repeat, sync)
            rows.append({"micro_batch": micro, "seconds": round(seconds, 3),
                         "examples_per_s": round(len(examples) / seconds, 2)})
        engine.close()

    print(f"base {args.base or 'fresh'}, denormals {'kept' if args.keep_denormals else 'flushed'}")
    print(f"device {args.device}, batch {args.batch}: building the examples {build_s:.2f} s in the loop, "
          f"{threads_s:.2f} s on {args.prep_threads} threads")
    print(f"{'micro-batch':>11} {'fwd+bwd s':>9} {'examples/s':>10}")
    for r in rows:
        print(f"{r['micro_batch']:>11} {r['seconds']:>9.3f} {r['examples_per_s']:>10.2f}")
    print(json.dumps({"bench": "train_batch", "device": args.device, "batch": args.batch, "base": args.base or "fresh",
                      "denormals": "kept" if args.keep_denormals else "flushed",
                      "build_s": round(build_s, 3), "build_threads_s": round(threads_s, 3),
                      "prep_threads": args.prep_threads, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
