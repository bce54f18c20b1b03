"""`visagent scenarios list --world real-desktop` and `visagent scenarios show|solve ID` for real-desktop scenarios.

(`visagent run --scenario ID` of a real-desktop scenario is assembled like every run, by visagent.loop.runs.open_run,
which calls the scenario's `open_executor`; closing the run ends its programs and display.)
"""

from __future__ import annotations

import json
from typing import Any

from visagent.core.errors import ConfigError
from visagent.loop.runs import world_check


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
            ok, line = world_check(scenario, executor.world, scenario.instruction)
            print("success" if ok else "FAILED", f"({line})")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            executor.screenshot().image.save(out)
            print(f"wrote {out} ({scenario.size[0]}x{scenario.size[1]})")
        return 0 if ok else 1
    finally:
        executor.close()
