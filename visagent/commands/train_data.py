"""`visagent train-data --out DIR`: oracle demonstrations + grounding records from train-split sim scenarios."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("train-data", help="training records from oracle runs and grounding screens on "
                                          "train-split scenarios (held-out scenarios and seeds never enter)")
    p.add_argument("--out", required=True, help="data directory to write")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the training seeds and choices (default 0)")
    p.add_argument("--seeds", type=int, default=8, help="oracle runs per train scenario (default 8)")
    p.add_argument("--grounding-seeds", type=int, default=8, help="seeds per scenario for grounding screens "
                                                                  "(default 8)")
    p.add_argument("--screens", type=int, default=2, help="grounding screens per episode (default 2)")
    p.add_argument("--per-screen", type=int, default=6, help="grounding records per screen (default 6)")
    p.add_argument("--crops", type=int, default=0,
                   help="also this many records per grounding record whose screenshot is a random crop holding the "
                        "element, so its usual place on the screen does not give it away (default 0)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes running oracle episodes and rendering grounding screens (default 2; the records "
                        "are the same for any number)")
    from visagent.core.schemas import PROMPT_PROFILES

    p.add_argument("--prompt-profile", choices=PROMPT_PROFILES, default="full",
                   help="system prompt and tool schema of the records: full (Qwen's agent prompt, default) or "
                        "compact (the shipped tiny model's; must match the base's visagent.json)")
    p.add_argument("--history-images", type=int, default=4, metavar="N",
                   help="screenshots a trajectory record's prompt shows as images, older steps as one line each "
                        "(default 4, the agent's default); the model trained on them keeps to it")
    p.add_argument("scenarios", nargs="*", help="train scenario ids (default: all of the train split)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.training.data import build_dataset

    summary = build_dataset(args.out, data_seed=args.data_seed, seeds_per_scenario=args.seeds,
                            grounding_seeds=args.grounding_seeds, screens=args.screens, per_screen=args.per_screen,
                            scenario_ids=args.scenarios or None, workers=args.workers,
                            profile=args.prompt_profile, crops=args.crops, history_images=args.history_images)
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "seeds"}, indent=2))
    return 0
