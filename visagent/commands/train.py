"""`visagent train --base SPEC --data DATA --out DIR`: fine-tune a local Qwen3.5 checkpoint on training records."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a local checkpoint on training records (full or --lora), "
                                     "with checkpoints, resume and held-out evaluation")
    p.add_argument("--base", required=True, help="'tiny' or a local checkpoint directory")
    p.add_argument("--data", required=True, help="data directory (visagent train-data) or a records .jsonl "
                                                 "(visagent export)")
    p.add_argument("--out", required=True, help="output checkpoint directory")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps (default 1000)")
    p.add_argument("--batch", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3; ~1e-4 for --lora)")
    p.add_argument("--warmup", type=int, default=50, help="linear warm-up steps (default 50)")
    p.add_argument("--vision-lr-mult", type=float, default=1.0, help="vision tower lr multiplier (default 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint-<step>/ in --out")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate on held-out scenarios every N steps "
                                                             "(default 0: only at the end)")
    p.add_argument("--eval-seeds", type=int, default=1, help="held-out seeds per scenario (default 1)")
    p.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (default 200)")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft), merged into the saved weights")
    p.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--grounding-steps", type=int, default=0,
                   help="curriculum: the first N steps train on grounding records only (default 0)")
    p.add_argument("--max-pixels", type=int, help="image pixel budget while training; written to the output's "
                                                  "preprocessor config (default: the base's)")
    p.add_argument("--seed", type=int, default=0, help="batch order seed (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--share-prefix", action="store_true",
                   help="run each batch's shared system turn once without gradient (~1.4x faster per example "
                        "on CPU, bench/train_step.py; the gradient skips the system turn's own activations)")
    add_aux_loss_args(p)
    add_batching_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def add_aux_loss_args(p, pointer_weight: float = 0.0) -> None:
    """--pointer-weight, --readout-weight (shared with `visagent train-tiny`, whose recipe defaults to the pointer)."""
    p.add_argument("--pointer-weight", type=float, default=pointer_weight,
                   help="weight of the auxiliary pointer loss on records with a box (grounding records, sim click "
                        "steps): a head learns which screenshot tokens hold the clicked element and is saved as the "
                        "checkpoint's pointing head (visagent.training.pointer, engine/pointer.py; default "
                        f"{pointer_weight:g}{': off' if not pointer_weight else ''})")
    p.add_argument("--readout-weight", type=float, default=0.0,
                   help="weight of the readout loss on grounding records: the last full-attention layer attends "
                        "from the coordinate digits to the clicked element and its input carries each screenshot "
                        "token's position (visagent.training.pointer; eager attention while training; default 0)")


def add_batching_args(p) -> None:
    """--micro-batch, --trajectory-share, --max-minutes, --prep-threads (shared with `visagent train-tiny`)."""
    p.add_argument("--micro-batch", type=int, default=1,
                   help="examples per forward pass: > 1 right-pads them into one batch (the same losses; what makes "
                        "a GPU fast on a small model; plain target loss only; default 1)")
    p.add_argument("--trajectory-share", type=float, default=None, metavar="P",
                   help="after the grounding-only steps, draw trajectory records with probability P and grounding "
                        "records otherwise (default: uniformly over all records)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="time budget of the training steps: after 20 steps --steps (and --grounding-steps) shrink "
                        "to what fits at that speed, refitted after 40, 80, 160 ... steps; ends early with a final "
                        "checkpoint if time runs out (default 0: none)")
    p.add_argument("--prep-threads", type=int, default=0,
                   help="threads building the next step's examples (screenshot decoding and preprocessing, ~60 ms "
                        "each on one core) while a step trains: keeps a GPU busy (default 0: in the loop)")


def run(args) -> int:
    from visagent.training.trainer import TrainConfig, Trainer

    config = TrainConfig(base=args.base, data=args.data, out=args.out, steps=args.steps, batch=args.batch,
                         lr=args.lr, warmup=args.warmup, vision_lr_mult=args.vision_lr_mult, device=args.device,
                         resume=args.resume, eval_every=args.eval_every, save_every=args.save_every,
                         eval_seeds=args.eval_seeds, lora=args.lora, lora_rank=args.lora_rank,
                         grounding_steps=args.grounding_steps, seed=args.seed, max_pixels=args.max_pixels,
                         threads=args.threads, share_prefix=args.share_prefix,
                         pointer_weight=args.pointer_weight, readout_weight=args.readout_weight,
                         micro_batch=args.micro_batch, trajectory_share=args.trajectory_share,
                         max_minutes=args.max_minutes, prep_threads=args.prep_threads)
    trainer = Trainer(config, on_point=lambda p: print(json.dumps(p), flush=True), progress=not args.no_progress)
    out = trainer.run()
    print(f"wrote {out} (curve: {out / 'curve.json'})")
    return 0
