"""`visagent replay TRACE`: re-execute a trace's actions with no model and compare every screen."""

from __future__ import annotations

import json

from visagent.replay import DEFAULT_THRESHOLD, replay_trace


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-execute a trace's actions (no model) and check each screen matches")
    p.add_argument("trace", help="trace directory, e.g. runs/<run_id>")
    p.add_argument("--executor", dest="replay_executor", choices=("sim", "desktop", "android"),
                   help="executor to replay on (default: the recorded one; sim rebuilds the recorded scenario + seed)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"largest screen difference (0..1, tile mean of gray levels) that still matches "
                        f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--out", help="directory for divergence images (default: <trace>/replay)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.errors import ConfigError

    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold} is outside 0..1; try {DEFAULT_THRESHOLD}")
    result = replay_trace(args.trace, threshold=args.threshold, executor_kind=args.replay_executor,
                          out_dir=args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for c in result.comparisons:
            where = "start" if c.step == 0 else f"after step {c.step}"
            print(f"{'ok  ' if c.ok else 'DIFF'} {where:<14} vs {c.expected:<14} difference {c.difference:.4f}")
        print(result.message)
        if result.divergence is not None:
            d = result.divergence
            print(f"recorded: {d.recorded_path}\nreplayed: {d.replayed_path}\ndiff:     {d.diff_path}")
    return 0 if result.ok else 1
