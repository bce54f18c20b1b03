"""The real-desktop world behind `visagent scenarios list --world real-desktop` and `visagent run --scenario ID`
(when ID is a real-desktop scenario): the one dispatch point of each command calls in here.

The run starts the scenario's own display and programs and closes them in `finally` (Ctrl-C and SIGTERM arrive
as KeyboardInterrupt; a SIGKILL is cleaned up by the next start, visagent.realworld.procs).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from visagent.core.errors import ConfigError
from visagent.realworld.world import WORLD, world_check


def wants_oracle(args: Any) -> bool:
    """`--model oracle` or `--policy oracle`."""
    return getattr(args, "policy", None) == "oracle" or getattr(args.settings, "model", None) == "oracle"


def list_scenarios(args: Any) -> int:
    from visagent.realworld.registry import real_scenarios
    from visagent.sim.scenarios import filter_by_tags, tag_strings

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


def show_or_solve(args: Any) -> int:
    """`visagent scenarios show|solve ID` for a real-desktop scenario: start its world, save the first screen
    (show) or play its oracle through the desktop executor and check the real state (solve)."""
    from pathlib import Path

    from visagent.core import actions as A
    from visagent.core.errors import ScenarioError
    from visagent.realworld.registry import get_real_scenario
    from visagent.realworld.world import OracleStream, open_world_executor

    scenario = get_real_scenario(args.id)
    if getattr(args, "seed", None) is not None:
        raise ConfigError(f"--seed does not apply to real-desktop scenario {scenario.id}: it has no seeds")
    out = Path(args.out) if getattr(args, "out", None) else None
    if out is not None and out.suffix.lower() != ".png":
        raise ScenarioError(f"--out {out}: the screenshot is written as PNG; use a .png file name")
    if getattr(args, "elements", False):
        raise ConfigError("--elements lists sim elements; a real-desktop screen has none to list")
    scenario.require_programs()
    executor = open_world_executor(scenario)
    try:
        print(f"{scenario.id}: {scenario.instruction}")
        ok = True
        if args.verb == "solve":
            stream = OracleStream(scenario, executor.world)
            for i in range(1, scenario.max_steps + 1):
                action = stream.next()
                if action.action == A.TERMINATE:
                    break
                result = executor.execute(action)
                print(f"{i:3d}  {action.summary()}" + ("" if result.ok else f"  (failed: {result.message})"))
            ok, line = world_check(scenario, executor.world)
            print("success" if ok else "FAILED", f"({line})")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            executor.screenshot().image.save(out)
            print(f"wrote {out} ({scenario.size[0]}x{scenario.size[1]})")
        return 0 if ok else 1
    finally:
        executor.close()


def _refuse_sim_flags(args: Any) -> None:
    for flag, value, default in (("--executor", getattr(args, "executor", None), None),
                                 ("--seed", getattr(args, "seed", None), None),
                                 ("--serial", getattr(args, "serial", None), None),
                                 ("--monitor", getattr(args, "monitor", 1), 1)):
        if value != default:
            raise ConfigError(f"{flag} does not apply to real-desktop scenario {args.settings.scenario}: it starts "
                              "its own display and programs")


def run(args: Any, printer_class: Any, check_trace_root: Any, grace_s: float) -> int:
    """`visagent run --scenario ID` for a real-desktop scenario (same output, exit codes and trace as the sim).
    `printer_class`, `check_trace_root` and `grace_s` are visagent.commands.run's own (passed in: run imports
    this module, so this one does not import run)."""
    from visagent.loop.agent import Agent, AgentConfig
    from visagent.traces.evaluate import record_verdict
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
            from visagent.loop.engines import open_engine

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

        printer = printer_class(sys.stdout, interactive=sys.stdin.isatty() and not args.yes, quiet=args.quiet,
                                  world_check=check_world)
        meta = {"scenario": scenario.id, "world": WORLD, "display": executor.display}
        agent = Agent(engine, executor, config, trace_root=settings.trace_dir, on_event=printer, run_meta=meta)
        printer.agent = agent
        result, interrupted = _run_agent(agent, task, printer, grace_s)
        if result is None:
            print(f"visagent: the run did not end within {grace_s:g} s of stop; its trace is left as 'running'",
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


