"""Training cost per example on this machine: the full prompt profile vs the compact one, and the compact one
with the shared system-turn prefix (`visagent train --share-prefix`).

Records come from `visagent.training.data.build_dataset` (oracle runs + grounding screens of a few train
scenarios, rendered in each profile) on a fresh random-weight base of the recipe's sizes
(`visagent.training.recipe.RECIPE_SIZES`, 640x400 screenshots), built in a temporary directory. For each
record kind it times fwd + bwd of one example (median of `--repeat` runs after one warm-up), and for the shared
prefix also the prefix forward (no gradient; paid once per distinct system turn per batch, so divided by
`--batch` here as if every example of a batch shared it). It also reports the cosine between the full and the
shared-prefix gradient (the shared path drops the gradient through the system turn's own activations).

    .venv/bin/python bench/train_step.py [--repeat 3] [--batch 8] [--threads 2]

Prints a table, then one JSON line: {"bench": "train_step", "rows": [{"profile", "kind", "tokens",
"prefix_tokens", "seconds", "shared_seconds", "grad_cosine"}]}.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCENARIOS = ["desktop-settings-wifi-off", "phone-settings-bluetooth-on", "desktop-files-delete"]


def _timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def _cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    dot = sum(float((a[n] * b[n]).sum()) for n in a if n in b)
    na = math.sqrt(sum(float((t * t).sum()) for t in a.values()))
    nb = math.sqrt(sum(float((t * t).sum()) for t in b.values()))
    return dot / (na * nb) if na and nb else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="examples sharing one prefix forward")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from engine.tiny import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus
    from visagent.training.data import build_dataset, load_records
    from visagent.training.examples import build_example, example_loss, prefix_cache
    from visagent.training.recipe import RECIPE_SIZES
    from visagent.training.trainer import load_base

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("full", "compact"):
            base = build_tiny_checkpoint(Path(tmp) / f"base-{profile}", agent_corpus(seed=0).texts, seed=0,
                                         prompt_profile=profile, **RECIPE_SIZES)
            data = Path(tmp) / f"data-{profile}"
            build_dataset(data, seeds_per_scenario=1, grounding_seeds=1, scenario_ids=SCENARIOS, profile=profile)
            records, root = load_records(data)
            engine = load_base(str(base), "cpu")
            model = engine.model
            model.train()
            for kind in ("grounding", "trajectory"):
                record = next(r for r in records if r["meta"]["kind"] == kind and r["meta"]["platform"] == "desktop")
                ex = build_example(engine, record, root)
                seconds = _timed(lambda: example_loss(model, ex, "cpu").backward(), args.repeat)
                model.zero_grad(set_to_none=True)
                row = {"profile": profile, "kind": kind, "tokens": int(ex.input_ids.shape[1]),
                       "prefix_tokens": ex.prefix_length, "seconds": round(seconds, 3)}
                if profile == "compact" and ex.prefix_length:
                    cache = prefix_cache(model, ex, "cpu")
                    suffix = _timed(lambda: example_loss(model, ex, "cpu", prefix=cache).backward(), args.repeat)
                    prefix = _timed(lambda: prefix_cache(model, ex, "cpu"), args.repeat)
                    model.zero_grad(set_to_none=True)
                    example_loss(model, ex, "cpu").backward()
                    full_grad = _grads(model)
                    example_loss(model, ex, "cpu", prefix=prefix_cache(model, ex, "cpu")).backward()
                    row["shared_seconds"] = round(suffix + prefix / args.batch, 3)
                    row["grad_cosine"] = round(_cosine(full_grad, _grads(model)), 3)
                rows.append(row)
            engine.close()

    print(f"{'profile':8} {'kind':11} {'tokens':>6} {'prefix':>6} {'fwd+bwd s':>9} {'shared s':>9} {'grad cos':>8}")
    for r in rows:
        print(f"{r['profile']:8} {r['kind']:11} {r['tokens']:>6} {r['prefix_tokens']:>6} {r['seconds']:>9.3f} "
              f"{r.get('shared_seconds', float('nan')):>9.3f} {r.get('grad_cosine', float('nan')):>8.3f}")
    print(json.dumps({"bench": "train_step", "threads": args.threads, "batch": args.batch, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
