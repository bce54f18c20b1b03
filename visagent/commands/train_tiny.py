"""`visagent train-tiny --out DIR`: the tiny checkpoint's full recipe (data, training, held-out eval, model card)."""

from __future__ import annotations


def register(sub) -> None:
    from visagent.commands.train import add_aux_loss_args, add_batching_args
    from visagent.core.schemas import COMPACT_PROFILES

    p = sub.add_parser("train-tiny", help="the full recipe of the embedded tiny checkpoint: train-split data, "
                                          "training, held-out evaluation, model card (OUT/model)")
    p.add_argument("--out", required=True, help="work directory (data/, base/, model/)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--data-seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument("--seeds", type=int, default=6, help="oracle runs per train scenario (default 6)")
    p.add_argument("--grounding-seeds", type=int, default=20, help="grounding seeds per scenario (default 20)")
    p.add_argument("--grounding-crops", type=int, default=0,
                   help="cropped copies of each grounding record (see `visagent train-data --crops`; default 0)")
    p.add_argument("--steps", type=int, default=2000,
                   help="training steps (default 2000: ~2.5 s each on a 2-core CPU, about 1.5 h; ~4 s with --readout-weight)")
    p.add_argument("--batch", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--grounding-steps", type=int, default=1200, help="grounding-only steps first (default 1200)")
    p.add_argument("--eval-every", type=int, default=500, help="held-out evaluation every N steps (default 500)")
    p.add_argument("--final-eval-seeds", type=int, default=1,
                   help="held-out seeds in the final evaluation (default 1; 0 skips it: the card then says how to "
                        "run it)")
    p.add_argument("--max-pixels", type=int, default=256_000, help="screenshot pixel budget (default 256000)")
    p.add_argument("--number-tokens", type=int, default=0, metavar="N",
                   help="spell every number 0..N as one token in the fresh base's tokenizer (1000: a click is two "
                        "tokens, x then y, instead of 3-4 digits each; default 0: one digit per token, as Qwen)")
    p.add_argument("--size", action="append", default=[], metavar="KEY=VALUE",
                   help="a size option of the fresh base (repeatable; keys of engine.tiny.DEFAULT_SIZES, e.g. "
                        "--size vision_depth=4 --size vision_hidden_size=192; default: the recipe's sizes)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--base", default=None, metavar="DIR",
                   help="continue this trained checkpoint ('tiny': the shipped one) instead of a fresh base: the "
                        "same data, training and card, which names the base and keeps its card as "
                        "BASE-README.md; its sizes and prompt profile are used (--size/--number-tokens ignored)")
    add_aux_loss_args(p, pointer_weight=1.0)
    p.add_argument("--prompt-profile", choices=COMPACT_PROFILES, default="compact-task-first",
                   help="prompt the model is trained and run with (default compact-task-first: the task before each "
                        "screenshot, so its tokens can know what is named; compact: the screenshot first)")
    p.add_argument("--history-images", type=int, default=None, metavar="N",
                   help="screenshots a trajectory prompt shows as images, older steps as one line each (default: "
                        "the --base's declared window, else 4); written into the model's visagent.json, so the agent "
                        "sends it no more than that")
    p.add_argument("--workers", type=int, default=2,
                   help="processes generating the data (oracle runs, grounding screens; default 2)")
    add_batching_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.core.errors import ConfigError
    from visagent.training.recipe import RECIPE_SIZES, RecipeConfig, run_recipe

    if args.final_eval_seeds < 0 or args.workers < 1:
        raise ConfigError(f"--final-eval-seeds must be >= 0 and --workers >= 1 (got {args.final_eval_seeds}, "
                          f"{args.workers})")
    if args.number_tokens < 0:
        raise ConfigError(f"--number-tokens {args.number_tokens}: give 0 (one digit per token) or the largest number "
                          "to spell as one token, e.g. 1000")
    cfg = RecipeConfig(out=args.out, device=args.device, data_seed=args.data_seed, seeds=args.seeds,
                       grounding_seeds=args.grounding_seeds, grounding_crops=args.grounding_crops,
                       steps=args.steps, batch=args.batch, lr=args.lr,
                       grounding_steps=args.grounding_steps, eval_every=args.eval_every,
                       final_eval_seeds=args.final_eval_seeds, resume=args.resume,
                       pointer_weight=args.pointer_weight, readout_weight=args.readout_weight,
                       prompt_profile=args.prompt_profile, workers=args.workers, micro_batch=args.micro_batch,
                       trajectory_share=args.trajectory_share, max_minutes=args.max_minutes,
                       prep_threads=args.prep_threads, history_images=args.history_images,
                       base=args.base,
                       sizes={**RECIPE_SIZES, "max_pixels": args.max_pixels,
                              **({"number_tokens": args.number_tokens} if args.number_tokens else {}),
                              **parse_sizes(args.size)})
    from engine import check_sizes

    try:
        check_sizes(cfg.sizes)  # before minutes of data generation, not after
    except ValueError as exc:
        raise ConfigError(f"the base's sizes (--size, --max-pixels, --number-tokens): {exc}") from None
    model = run_recipe(cfg, argv=["visagent", *args.argv], progress=not args.no_progress)
    print(f"wrote {model} (model card {model / 'README.md'})")
    return 0


def parse_sizes(items: list[str]) -> dict[str, int | float]:
    """`--size KEY=VALUE` options -> {key: int or float}; ConfigError (one line) for a bad item or unknown key."""
    from engine import DEFAULT_SIZES
    from visagent.core.errors import ConfigError

    sizes: dict[str, int | float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--size {item!r}: write KEY=VALUE, e.g. --size vision_depth=4")
        if key not in DEFAULT_SIZES:
            raise ConfigError(f"--size {item!r}: unknown size key {key!r}; known: {', '.join(sorted(DEFAULT_SIZES))}")
        try:
            value: int | float = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"--size {item!r}: {raw!r} is not a number") from None
        sizes[key] = value
    return sizes
