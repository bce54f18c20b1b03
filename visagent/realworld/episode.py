"""Real-desktop scenario selection and replays for the eval and replay commands: each starts the scenario's
own display and programs and closes them in `finally`.

- `select(...)`        the scenarios `visagent eval --world real-desktop` runs
- `replay(...)`        `visagent replay TRACE` of a trace recorded in a real-desktop world
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from visagent.core.errors import ConfigError
from visagent.loop.runs import world_check
from visagent.realworld.world import WORLD

#: Replay tolerance for real rendering (screen_difference, 0..1): a blinking text caret or a re-laid-out
#: anti-aliased glyph stays under it, a page change does not (measured in tests/test_realworld_replay.py).
REPLAY_THRESHOLD = 0.12
#: How long a real replay waits for a screen that does not match yet (a GTK file dialog can take a second
#: longer to open on a busy machine than it took while recording) before calling it a divergence.
REPLAY_PATIENCE_S = 5.0


# -- eval ---------------------------------------------------------------------------------------------------
def select(ids: list[str], split: str | None, tags: list[str] | None) -> list:
    """`visagent eval --world real-desktop`: scenarios by id or all, filtered like the sim's."""
    from visagent.realworld.registry import get_real_scenario, real_scenarios
    from visagent.sim.scenarios import filter_by_tags

    chosen = [get_real_scenario(i) for i in ids] if ids else real_scenarios()
    if split:
        chosen = [s for s in chosen if s.split == split]
    chosen = filter_by_tags(chosen, tags)
    if not chosen:
        raise ConfigError(f"no real-desktop scenario matches (ids {ids or 'all'}, split {split or 'any'}, tags "
                          f"{tags or 'any'}); see `visagent scenarios list --world real-desktop`")
    return chosen


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
    from visagent.core.errors import TraceError
    from visagent.realworld.registry import get_real_scenario
    from visagent.realworld.world import open_world_executor
    from visagent.traces.replay import replay_trace

    meta = json.loads((Path(trace) / "meta.json").read_text(encoding="utf-8"))
    sid = (meta.get("executor") or {}).get("scenario")
    if not sid:
        raise TraceError(f"{trace}: meta.json names no scenario, so its real-desktop world cannot be set up")
    scenario = get_real_scenario(str(sid))
    executor = open_world_executor(scenario)
    try:
        result = replay_trace(trace, executor, REPLAY_THRESHOLD if threshold is None else threshold, out_dir=out_dir,
                              patience_s=REPLAY_PATIENCE_S)
        checked = world_check(scenario, executor.world, str(meta.get("task")))
        goal = None if checked is None else checked[0]
        return result, goal
    finally:
        executor.close()
