"""`visagent replay TRACE...`: re-execute traces' actions with no model and compare every screen."""

from __future__ import annotations

import json
from pathlib import Path

from visagent.traces.replay import DEFAULT_THRESHOLD, ReplayResult, replay_trace


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-execute a trace's actions (no model) and check each screen matches")
    p.add_argument("traces", nargs="+", metavar="TRACE",
                   help="trace directory (runs/<run_id>), or a folder of them (e.g. scenarios/traces)")
    p.add_argument("--executor", dest="replay_executor", choices=("sim", "desktop", "android"),
                   help="executor to replay on (default: the recorded one; sim rebuilds the recorded scenario + seed)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"largest screen difference (0..1, tile mean of gray levels) that still matches "
                        f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--out", help="directory for divergence images (default: <trace>/replay; "
                                 "with several traces, one sub-folder each)")
    p.add_argument("--json", action="store_true", help="print the full result(s) as JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from visagent.commands.export import expand_traces
    from visagent.core.errors import ConfigError

    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold} is outside 0..1; try {DEFAULT_THRESHOLD}")
    traces = expand_traces(args.traces)
    results: list[ReplayResult] = []
    for trace in traces:
        out = args.out
        if out is not None and len(traces) > 1:
            out = str(Path(out) / Path(trace).name)
        result = replay_trace(trace, threshold=args.threshold, executor_kind=args.replay_executor, out_dir=out)
        results.append(result)
        if not args.json:
            _print(result, several=len(traces) > 1)
    if args.json:
        data = [r.to_dict() for r in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    elif len(results) > 1:
        bad = sum(not r.ok for r in results)
        print(f"{len(results) - bad} of {len(results)} traces matched"
              + (f"; {bad} diverged" if bad else ""))
    return 0 if all(r.ok for r in results) else 1


def _print(result: ReplayResult, *, several: bool) -> None:
    if several:
        print(f"{'ok  ' if result.ok else 'DIFF'} {result.trace_path}: {result.message}")
    else:
        for c in result.comparisons:
            where = "start" if c.step == 0 else f"after step {c.step}"
            print(f"{'ok  ' if c.ok else 'DIFF'} {where:<14} vs {c.expected:<14} difference {c.difference:.4f}")
        print(result.message)
    if result.divergence is not None:
        d = result.divergence
        print(f"recorded: {d.recorded_path}\nreplayed: {d.replayed_path}\ndiff:     {d.diff_path}")
