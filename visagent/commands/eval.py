"""`visagent eval`: run scenarios × seeds in parallel with a model (or the oracle) and report success rates."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from visagent.core.errors import ConfigError


def register(sub) -> None:
    from visagent.commands.ground import add_point_from_arg
    from visagent.commands.run import add_sampling_args

    p = sub.add_parser("eval", help="evaluate a model (or the oracle policy) on sim scenarios; "
                                    "success = the world's check")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario ids (default: all in the split)")
    p.add_argument("--model", help="model spec: tiny, a checkpoint directory or an http(s)://host/v1 URL")
    p.add_argument("--policy", choices=("oracle",),
                   help="use a scripted policy instead of a model (oracle: the sim's solver)")
    p.add_argument("--world", choices=("sim", "real-desktop"), default="sim",
                   help="sim (default) or real-desktop: real programs under Xvfb, one display per worker")
    p.add_argument("--split", choices=("train", "heldout"), help="only scenarios of this split")
    p.add_argument("--tags", nargs="+",
                   help="only scenarios carrying at least one of these tags, as `scenarios list` prints them (key:value, "
                        "e.g. app:settings, or a value alone, e.g. easy)")
    p.add_argument("--seeds", type=int, help="seeds per scenario (default 3; 1 for --world real-desktop, whose "
                   "scenarios have no seeds)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--workers", type=int, default=2, help="parallel episodes (threads; default 2)")
    p.add_argument("--min-success", type=_fraction, metavar="R",
                   help="exit 1 when the success rate (goal met; step accuracy with --per-step) is below R, a fraction 0..1 or a percentage "
                        "(0.8 or 80%%); for CI")
    p.add_argument("--json", dest="json_path", help="write the results JSON here")
    p.add_argument("--trace-dir",
                   help="root for traces; each evaluation writes <trace-dir>/eval-<stamp>/ (default runs)")
    p.add_argument("--no-traces", action="store_true", help="keep no traces (faster, nothing to inspect)")
    p.add_argument("--max-steps", type=int, help="step limit per episode (default: each scenario's max_steps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--per-step", action="store_true",
                   help="score each step of the oracle's path on its own instead of running episodes: the model "
                        "answers the exact prompt of that step (the oracle's history before it) and must match the "
                        "oracle's action (step accuracy; visagent/traces/step_eval.py)")
    p.add_argument("--ray", dest="ray_address", nargs="?", const="", metavar="ADDRESS",
                   help="run each episode as a task on a Ray cluster (pip install 'visagent[ray]'): auto (the "
                        "cluster `ray start` made here; the default, or the `ray` setting), local, ray://HOST:10001 "
                        "or HOST:6379; needs --policy oracle or an http(s) --model; --workers is then the cluster's")
    p.add_argument("--no-ray", action="store_true", help="run here even when the `ray` setting names a cluster")
    p.add_argument("--ray-traces", choices=("ship", "shared"),
                   help="with --ray: ship each trace back to this machine (default) or let workers write into "
                        "--trace-dir, which must then be one path on a filesystem every node mounts")
    add_point_from_arg(p)
    add_sampling_args(p)
    p.set_defaults(handler=run)


def ray_address(args) -> str | None:
    """The Ray address this eval runs on (None: here): --ray ADDRESS, else --ray alone or the `ray` setting."""
    if args.no_ray:
        if args.ray_address is not None:
            raise ConfigError("give either --ray or --no-ray, not both")
        return None
    if args.ray_address:
        from visagent.traces.ray_eval import check_address

        return check_address(args.ray_address)
    if args.ray_address == "":
        return args.settings.ray or "auto"
    return args.settings.ray


def _fraction(text: str) -> float:
    """--min-success: 0.8 or 80% → 0.8; anything outside 0..1 is refused by argparse with one line."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate; give a fraction (0.8) or a percentage (80%)") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0..1 (0%..100%)")
    return value


def select_scenarios(ids: list[str], split: str | None, tags: list[str] | None) -> list:
    """Scenarios by id (in the order given) or all, filtered by split and tags. Raises ScenarioError/ConfigError."""
    from visagent.sim.scenarios import get_scenario, load_scenarios

    chosen = [get_scenario(i) for i in ids] if ids else list(load_scenarios())
    if split:
        chosen = [s for s in chosen if s.split == split]
    if tags:
        from visagent.sim.scenarios import filter_by_tags

        chosen = filter_by_tags(chosen, tags)
    if not chosen:
        raise ConfigError(f"no scenario matches (ids {ids or 'all'}, split {split or 'any'}, tags {tags or 'any'}); "
                          "see `visagent scenarios list` for the ids, splits and tags")
    return chosen


def run(args) -> int:
    from visagent.loop.agent import AgentConfig
    from visagent.traces.evaluate import eval_trace_dir, evaluate, oracle_factory

    settings = args.settings
    real = args.world == "real-desktop"
    if args.seeds is None:
        args.seeds = 1 if real else 3
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds} must be at least 1")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be at least 1")
    if args.policy and args.model:
        raise ConfigError("give either --model or --policy, not both")
    if args.json_path:  # before the evaluation: a bad path found afterwards would lose every result
        from visagent.core.outfile import check_output_file

        check_output_file(args.json_path, "--json", "results.json")
    if real:
        from visagent.realworld.episode import select

        scenarios = select(args.scenarios, args.split, args.tags)
    else:
        scenarios = select_scenarios(args.scenarios, args.split, args.tags)
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    if args.per_step and real:
        raise ConfigError("--per-step scores steps on the sim oracle's path; it does not apply to --world real-desktop")
    address = ray_address(args)
    if args.per_step:
        if address is not None:
            raise ConfigError("--per-step runs here; drop --ray (or pass --no-ray)")
        return run_per_step(args, scenarios, seeds)
    config = AgentConfig.from_settings(settings, auto_approve=True)
    trace_root = None if args.no_traces else eval_trace_dir(settings.trace_dir)
    engine = None
    if address is not None:
        from visagent.traces.ray_eval import EngineSpec, import_ray

        import_ray()  # no Ray: the one line saying how to install it, before anything else happens
        spec = EngineSpec.for_eval(settings, "oracle" if settings.model == "oracle" else args.policy)
        factory, label = None, spec.label
    elif args.policy == "oracle" or settings.model == "oracle":
        factory, label = oracle_factory, "policy:oracle"
    else:
        from visagent.loop.engines import open_engine

        engine = open_engine(settings)
        factory, label = (lambda scenario, executor: engine), settings.model
    progress = None
    lock = threading.Lock()
    total = len(scenarios) * len(seeds)
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=total, file=sys.stderr, unit="episode", desc="eval", dynamic_ncols=True)
    wins = [0, 0]

    def on_episode(outcome) -> None:
        with lock:
            wins[0] += outcome.success
            wins[1] += 1
            if progress is not None:
                progress.set_postfix_str(f"success {wins[0]}/{wins[1]}")
                progress.update(1)

    interrupted = None
    try:
        if address is not None:
            from visagent.traces.ray_eval import EvalInterrupted, ray_evaluate

            try:
                report = ray_evaluate(scenarios, spec, address=address, seeds=seeds, agent_config=config,
                                      max_steps=args.max_steps, trace_dir=trace_root, traces=settings.ray_traces,
                                      split=args.split, on_episode=on_episode)
            except EvalInterrupted as exc:  # Ctrl-C: the finished episodes are still a result
                report, interrupted = exc.report, exc
        else:
            report = evaluate(scenarios, factory, seeds=seeds, workers=args.workers, agent_config=config,
                              max_steps=args.max_steps,
                              trace_dir=trace_root, model=label, split=args.split, on_episode=on_episode)
    finally:
        if progress is not None:
            progress.close()
        if engine is not None:
            engine.close()
    print(report.summary_table())
    if trace_root is not None:
        print(f"traces: {trace_root}")
    if args.json_path:
        data = report.to_dict() if interrupted is None else {**report.to_dict(), "interrupted": str(interrupted)}
        _write_results(args.json_path, data, seeds, scenarios, trace_root)
    if interrupted is not None:
        print(f"visagent: {interrupted}; the outstanding Ray tasks were cancelled", file=sys.stderr)
        return 130
    return _below_minimum(report.success_rate, args.min_success, "success rate (goal met)")


def _below_minimum(rate: float, minimum: float | None, what: str) -> int:
    """Exit status for --min-success: 1 (with one line on stderr) when `rate` is below `minimum`, else 0."""
    if minimum is not None and rate < minimum:
        print(f"visagent: {what} {rate:.0%} is below --min-success {minimum:.0%}", file=sys.stderr)
        return 1
    return 0


def _write_results(json_path: str, data: dict, seeds: list[int], scenarios: list, trace_root: Path | None) -> None:
    """--json: the report's dict plus the seeds and scenario ids it ran on and where its traces are."""
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**data, "seeds": seeds, "scenarios": [s.id for s in scenarios],
            "trace_dir": None if trace_root is None else str(trace_root)}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")


def run_per_step(args, scenarios: list, seeds: list[int]) -> int:
    """`visagent eval --per-step`: step accuracy on the oracle's path (visagent.traces.step_eval)."""
    from visagent.loop.engines import open_engine
    from visagent.traces.step_eval import step_accuracy

    settings = args.settings
    if args.policy:
        raise ConfigError("--per-step scores a model against the oracle's steps; give --model, not --policy")
    if args.max_steps is not None:
        raise ConfigError("--max-steps limits episodes; --per-step scores every step of the oracle's path")
    engine = open_engine(settings)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(file=sys.stderr, unit="step", desc="eval --per-step", dynamic_ncols=True)
    right = [0, 0]

    def on_step(outcome) -> None:
        right[0] += outcome.correct
        right[1] += 1
        if progress is not None:
            progress.set_postfix_str(f"right {right[0]}/{right[1]}")
            progress.update(1)

    from visagent.traces.evaluate import eval_trace_dir

    trace_root = None if args.no_traces else eval_trace_dir(settings.trace_dir)
    try:
        report = step_accuracy(engine, scenarios, seeds, model=settings.model, split=args.split,
                               point_from=settings.point_from, on_step=on_step, workers=args.workers,
                               trace_dir=trace_root)
    finally:
        if progress is not None:
            progress.close()
        engine.close()
    print(report.summary_table())
    if trace_root is not None:
        print(f"the oracle's traces (each step's prompt is rebuilt from them): {trace_root}")
    if args.json_path:
        _write_results(args.json_path, report.to_dict(), seeds, scenarios, trace_root)
    return _below_minimum(report.accuracy, args.min_success, "step accuracy")
