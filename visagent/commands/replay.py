"""`visagent replay TRACE...`: re-execute traces' actions with no model and compare every screen."""

from __future__ import annotations

import json
from pathlib import Path

from visagent.core.actions import EXECUTOR_KINDS
from visagent.traces.replay import DEFAULT_THRESHOLD, ReplayResult, replay_trace


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-execute a trace's actions (no model) and check each screen matches")
    p.add_argument("traces", nargs="+", metavar="TRACE",
                   help="trace directory (runs/<run_id>), or a folder of them (e.g. scenarios/traces)")
    p.add_argument("--executor", dest="replay_executor", choices=EXECUTOR_KINDS,
                   help="executor to replay on (default: the recorded one; sim rebuilds the recorded scenario + seed)")
    p.add_argument("--threshold", type=float,
                   help=f"largest screen difference (0..1, tile mean of gray levels) that still matches "
                        f"(default {DEFAULT_THRESHOLD}; real-desktop traces: the real-rendering tolerance, "
                        "docs/real-desktop.md)")
    p.add_argument("--out", help="directory for divergence images (default: <trace>/replay; "
                                 "with several traces, one sub-folder each)")
    p.add_argument("--json", action="store_true", help="print the full result(s) as JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.commands.export import expand_traces
    from visagent.core.errors import ConfigError

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold} is outside 0..1; try {DEFAULT_THRESHOLD}")
    traces = expand_traces(args.traces)
    results: list[ReplayResult] = []
    goals_missed = 0  # real-desktop replays whose scenario check fails afterwards
    for trace in traces:
        out = args.out
        if out is not None and len(traces) > 1:
            out = str(Path(out) / Path(trace).name)
        from visagent.realworld import episode as real_desktop

        goal = None
        if args.replay_executor is None and real_desktop.recorded_world(trace):  # sets up its scenario's world
            result, goal = real_desktop.replay(trace, threshold=args.threshold, out_dir=out)
        else:
            threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
            result = replay_trace(trace, threshold=threshold, executor_kind=args.replay_executor, out_dir=out)
        results.append(result)
        goals_missed += goal is False
        if not args.json:
            _print(result, several=len(traces) > 1)
            if goal is not None:
                print(f"world check after the replay: the scenario's goal is {'met' if goal else 'NOT met'}")
    if args.json:
        data = [r.to_dict() for r in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    elif len(results) > 1:
        bad = sum(not r.ok for r in results)
        print(f"{len(results) - bad} of {len(results)} traces matched"
              + (f"; {bad} diverged" if bad else ""))
    return 0 if all(r.ok for r in results) and not goals_missed else 1


def _print(result: ReplayResult, *, several: bool) -> None:
    if several:
        print(f"{'ok  ' if result.ok else 'DIFF'} {result.trace_path}: {result.message}")
    else:
        for c in result.comparisons:
            where = "start" if c.step == 0 else f"after step {c.step}"
            waited = f" (waited {c.waited_s:.1f} s)" if c.waited_s >= 0.05 else ""
            print(f"{'ok  ' if c.ok else 'DIFF'} {where:<14} vs {c.expected:<14} difference {c.difference:.4f}{waited}")
        print(result.message)
    if result.divergence is not None:
        d = result.divergence
        print(f"recorded: {d.recorded_path}\nreplayed: {d.replayed_path}\ndiff:     {d.diff_path}")
