"""The real-desktop world behind the ordinary commands: each command's one dispatch point calls in here.

- `list_scenarios(args)`   `visagent scenarios list --world real-desktop`
- `run(args)`              `visagent run --scenario ID` when ID is a real-desktop scenario
- `select(ids, split, tags)` + evaluate's `run_episode` dispatch: `visagent eval --world real-desktop`
- `replay(trace, ...)`     `visagent replay TRACE` of a trace recorded in a real-desktop world

Every path starts the scenario's own display and programs and closes them in `finally` (Ctrl-C and SIGTERM
arrive as KeyboardInterrupt; a SIGKILL is cleaned up by the next start, visagent.realworld.procs).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from visagent.errors import ConfigError
from visagent.realworld.world import WORLD

#: Replay tolerance for real rendering (screen_difference, 0..1): a blinking text caret or a re-laid-out
#: anti-aliased glyph stays under it, a page change does not (measured in tests/test_realworld_replay.py).
REPLAY_THRESHOLD = 0.12
#: How long a real replay waits for a screen that does not match yet (a GTK file dialog can take a second
#: longer to open on a busy machine than it took while recording) before calling it a divergence.
REPLAY_PATIENCE_S = 5.0


def wants_oracle(args: Any) -> bool:
    """`--model oracle` or `--policy oracle`."""
    return getattr(args, "policy", None) == "oracle" or getattr(args.settings, "model", None) == "oracle"


def list_scenarios(args: Any) -> int:
    from visagent.realworld.registry import real_scenarios
    from visagent.scenarios import filter_by_tags, tag_strings

    rows = [s for s in real_scenarios() if (not args.split or s.split == args.split)
            and (not args.platform or s.platform == args.platform)]
    rows = filter_by_tags(rows, args.tags)
    if args.json:
        for s in rows:
            print(json.dumps(s.summary(), ensure_ascii=False))
        return 0
    width = max([len(s.id) for s in rows] + [2])
    print(f"{'id':<{width}}  {'apps':<10}  {'steps':>5}  tags")
    for s in rows:
        tags = " ".join(t for t in tag_strings(s) if not t.startswith("world:"))
        print(f"{s.id:<{width}}  {','.join(s.apps):<10}  {s.max_steps:>5}  {tags}")
    print(f"# {len(rows)} real-desktop scenarios (each starts its own Xvfb; see docs/real-desktop.md)")
    return 0


def _refuse_sim_flags(args: Any) -> None:
    for flag, value, default in (("--executor", getattr(args, "executor", None), None),
                                 ("--seed", getattr(args, "seed", None), None),
                                 ("--serial", getattr(args, "serial", None), None),
                                 ("--monitor", getattr(args, "monitor", 1), 1)):
        if value != default:
            raise ConfigError(f"{flag} does not apply to real-desktop scenario {args.settings.scenario}: it starts "
                              "its own display and programs")


def run(args: Any) -> int:
    """`visagent run --scenario ID` for a real-desktop scenario (same output, exit codes and trace as the sim)."""
    from visagent.agent import Agent, AgentConfig
    from visagent.commands.run import _STOP_GRACE_S, ProgressPrinter, check_trace_root
    from visagent.evaluate import record_verdict
    from visagent.realworld.registry import get_real_scenario
    from visagent.realworld.world import RealOracleEngine, open_world_executor

    settings = args.settings
    scenario = get_real_scenario(settings.scenario)
    _refuse_sim_flags(args)
    check_trace_root(settings.trace_dir)
    task = args.task or scenario.instruction
    oracle = wants_oracle(args)
    if oracle and task != scenario.instruction:
        raise ConfigError(f"the oracle plays scenario {scenario.id}'s own task ({scenario.instruction!r}), not "
                          f"{task!r}; drop TASK")
    engine = None
    executor = None
    try:
        if not oracle:  # a model may load for minutes: before the display and programs start
            from visagent.engines import open_engine

            engine = open_engine(settings)
        scenario.require_programs()
        if not args.quiet:
            print(f"starting {scenario.id}: Xvfb {scenario.size[0]}x{scenario.size[1]}, {', '.join(scenario.apps)}",
                  file=sys.stderr)
        executor = open_world_executor(scenario)
        if oracle:
            engine = RealOracleEngine(scenario, executor)
        config = AgentConfig.from_settings(settings, auto_approve=args.yes, human_in_loop=False)
        verdict: dict[str, Any] = {}
        world = executor.world

        def check_world(status: str) -> str | None:  # on the real state, while the world still runs
            if task != scenario.instruction:
                return None
            ok, line = world_check(scenario, world, status)
            verdict["success"] = ok
            return line

        printer = ProgressPrinter(sys.stdout, interactive=sys.stdin.isatty() and not args.yes, quiet=args.quiet,
                                  world_check=check_world)
        meta = {"scenario": scenario.id, "world": WORLD, "display": executor.display}
        agent = Agent(engine, executor, config, trace_root=settings.trace_dir, on_event=printer, run_meta=meta)
        printer.agent = agent
        result, interrupted = _run_agent(agent, task, printer, _STOP_GRACE_S)
        if result is None:
            print(f"visagent: the run did not end within {_STOP_GRACE_S:g} s of stop; its trace is left as 'running'",
                  file=sys.stderr)
            return 1
        if "success" in verdict and result.trace_dir is not None:
            record_verdict(result.trace_dir, verdict["success"], [])
        if interrupted and result.status == "stopped":
            return 130
        if "success" in verdict:
            return 0 if verdict["success"] else 1
        return 0 if result.status in ("success", "answered") else 1
    finally:
        if engine is not None:
            engine.close()
        if executor is not None:
            executor.close()  # ends the programs and the display


def _run_agent(agent: Any, task: str, printer: Any, grace_s: float) -> tuple[Any, bool]:
    """Run the agent in a thread, Ctrl-C stopping it as `visagent run` does; (result or None, interrupted)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = agent.run(task)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="visagent-run", daemon=True).start()
    interrupted = False
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        interrupted = True
        printer.cancelled.set()
        print("\nstopping (Ctrl-C again to abort)...", file=sys.stderr)
        agent.stop()
        done.wait(grace_s)
    if "error" in box:
        raise box["error"]
    return box.get("result"), interrupted


def world_check(scenario: Any, world: Any, status: str | None = None) -> tuple[bool, str]:
    """(goal met, the line saying so) from the scenario's check on the real state. A check that cannot read
    the state (its program died) counts as not met and says why."""
    from visagent.export import SUCCESS_STATUSES

    try:
        ok = bool(scenario.is_success(world))
    except Exception as exc:  # noqa: BLE001 - the state is unreadable: the goal is not shown to be met
        return False, f"world check: could not read the real state ({type(exc).__name__}: {exc}); goal NOT met"
    if ok:
        return True, "world check: the scenario's goal is met (real state)"
    claimed = " (the status above is the model's own claim)" if status in SUCCESS_STATUSES else ""
    return False, "world check: the scenario's goal is NOT met (real state)" + claimed


# -- eval ---------------------------------------------------------------------------------------------------
def select(ids: list[str], split: str | None, tags: list[str] | None) -> list:
    """`visagent eval --world real-desktop`: scenarios by id or all, filtered like the sim's."""
    from visagent.realworld.registry import get_real_scenario, real_scenarios
    from visagent.scenarios import filter_by_tags

    chosen = [get_real_scenario(i) for i in ids] if ids else real_scenarios()
    if split:
        chosen = [s for s in chosen if s.split == split]
    chosen = filter_by_tags(chosen, tags)
    if not chosen:
        raise ConfigError(f"no real-desktop scenario matches (ids {ids or 'all'}, split {split or 'any'}, tags "
                          f"{tags or 'any'}); see `visagent scenarios list --world real-desktop`")
    return chosen


def run_episode(scenario: Any, seed: int, engine_factory: Any, config: Any, *, trace_dir: Any = None,
                live: Any = None) -> Any:
    """One real-desktop episode for visagent.evaluate: its own world (own display), the agent, the check on
    the real state; the world is closed whatever happens. An error (a program that died) is an `error`
    outcome with its trace kept."""
    from visagent.agent import Agent
    from visagent.evaluate import EpisodeOutcome, _sum, record_verdict, scenario_tags
    from visagent.events import StepFinished
    from visagent.realworld.world import open_world_executor

    tags = scenario_tags(scenario)
    steps: list[dict[str, Any]] = []
    started = time.perf_counter()

    def outcome(**kw: Any) -> Any:
        return EpisodeOutcome(scenario=scenario.id, seed=seed, split=scenario.split, tags=tags,
                              seconds=time.perf_counter() - started, step_seconds=_sum(steps, "timings", "total"),
                              prompt_tokens=int(_sum(steps, "prompt", "tokens")),
                              generated_tokens=int(_sum(steps, "model", "generated_tokens")), **kw)

    try:
        executor = open_world_executor(scenario)
    except Exception as exc:  # noqa: BLE001 - e.g. a missing program: recorded, the evaluation goes on
        return outcome(success=False, status="error", reason=str(exc), steps=0, trace=None, error=str(exc))
    try:
        engine = engine_factory(scenario, executor)
        agent = Agent(engine, executor, config, trace_root=trace_dir,
                      on_event=lambda e: steps.append(e.record) if isinstance(e, StepFinished) else None,
                      run_meta={"scenario": scenario.id, "seed": seed, "split": scenario.split, "world": WORLD,
                                "display": executor.display})
        if live is not None:
            live.add(agent)
        try:
            result = agent.run(scenario.instruction)
        finally:
            if live is not None:
                live.discard(agent)
        success, _ = world_check(scenario, executor.world)
        if result.trace_dir is not None:
            record_verdict(result.trace_dir, success, [])
        return outcome(success=success, status=result.status, reason=result.reason, steps=result.steps,
                       trace=None if result.trace_dir is None else str(result.trace_dir))
    except Exception as exc:  # noqa: BLE001
        return outcome(success=False, status="error", reason=f"{type(exc).__name__}: {exc}", steps=len(steps),
                       trace=None, error=f"{type(exc).__name__}: {exc}")
    finally:
        executor.close()


def oracle_engine(scenario: Any, executor: Any) -> Any:
    from visagent.realworld.world import RealOracleEngine

    return RealOracleEngine(scenario, executor)


# -- replay -------------------------------------------------------------------------------------------------
def recorded_world(trace: str | Path) -> str | None:
    """The world a trace was recorded in ("real-desktop"), from meta.json; None for any other trace."""
    try:
        meta = json.loads((Path(trace) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    executor = meta.get("executor") if isinstance(meta, dict) else None
    if isinstance(executor, dict) and (executor.get("world") == WORLD or executor.get("name") == WORLD):
        return WORLD
    return None


def replay(trace: str | Path, *, threshold: float | None, out_dir: Any = None) -> tuple[Any, bool | None]:
    """Replay a real-desktop trace in a fresh world of its scenario: (ReplayResult, goal met after the replay).
    `threshold` None: REPLAY_THRESHOLD."""
    from visagent.errors import TraceError
    from visagent.realworld.registry import get_real_scenario
    from visagent.realworld.world import open_world_executor
    from visagent.replay import replay_trace

    meta = json.loads((Path(trace) / "meta.json").read_text(encoding="utf-8"))
    sid = (meta.get("executor") or {}).get("scenario")
    if not sid:
        raise TraceError(f"{trace}: meta.json names no scenario, so its real-desktop world cannot be set up")
    scenario = get_real_scenario(str(sid))
    executor = open_world_executor(scenario)
    try:
        result = replay_trace(trace, executor, REPLAY_THRESHOLD if threshold is None else threshold, out_dir=out_dir,
                              patience_s=REPLAY_PATIENCE_S)
        goal = world_check(scenario, executor.world)[0] if meta.get("task") == scenario.instruction else None
        return result, goal
    finally:
        executor.close()
