"""Side effects of a sim run: what changed in the world that the task did not ask for.

The sim knows its state before and after a run (`SimWorld.state()`). What the task asks for is what its known
solution changes: the scenario's oracle is played on a fresh world of the same seed, and the paths it changes
(a new contact's list entry, the calculator's display on the way to its result) plus the paths the success
predicate reads (`settings.dark_mode`, `theme`) are the task's. Every other lasting change the run made is a
side effect (the tiny model setting Volume to 0 on its way): listed at the end of a run, kept in the trace's
verdict and shown by the report. Navigation (which app is in front, open dialogs, the selected row, the
settings section shown, the clock) is not a lasting change and is left out.
"""

from __future__ import annotations

import json
from typing import Any

#: State keys that say where the user is, not what the world holds.
NAVIGATION = frozenset({"time", "foreground", "open_apps", "dialog", "popup", "section", "selected", "dialog_open",
                        "dirty", "scroll", "sort"})
#: Changes listed at most (a run that wrecked everything does not make an unbounded line).
MAX_LISTED = 12


def goal_paths(predicate: Any, params: dict[str, Any]) -> set[str]:
    """The dotted state paths a success predicate reads, with {params} filled in."""
    from visagent.sim.scenario import fill

    found: set[str] = set()

    def walk(pred: Any) -> None:
        if isinstance(pred, list):
            for p in pred:
                walk(p)
        elif isinstance(pred, dict):
            for key in ("all", "any"):
                if key in pred:
                    walk(pred[key])
            if "not" in pred:
                walk(pred["not"])
            if "path" in pred:
                path = pred["path"]
                parts = path if isinstance(path, list) else str(path).split(".")
                found.add(".".join(str(fill(p, params)) for p in parts))

    walk(predicate)
    return found


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in NAVIGATION:
                continue
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _asked(path: str, goals: set[str]) -> bool:
    return any(path == g or path.startswith(g + ".") or g.startswith(path + ".") for g in goals)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _describe(path: str, before: Any, after: Any) -> str:
    if isinstance(before, list) and isinstance(after, list):
        gone = [b for b in before if b not in after]
        new = [a for a in after if a not in before]
        if len(gone) + len(new) <= 4 and all(not isinstance(v, (dict, list)) for v in gone + new):
            parts = [f"-{_show(v)}" for v in gone] + [f"+{_show(v)}" for v in new]
            return f"{path}: {' '.join(parts) if parts else 'reordered'}"
        return f"{path}: {len(before)} → {len(after)} items, changed"
    return f"{path}: {_show(before)} → {_show(after)}"


def changed_paths(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{dotted path: (before, after)} of every lasting leaf that differs (navigation left out)."""
    flat_before: dict[str, Any] = {}
    flat_after: dict[str, Any] = {}
    _flatten(before, "", flat_before)
    _flatten(after, "", flat_after)
    return {path: (flat_before.get(path), flat_after.get(path)) for path in sorted(set(flat_before) | set(flat_after))
            if flat_before.get(path) != flat_after.get(path)}


def solution_paths(scenario: Any, seed: int) -> set[str]:
    """The paths the scenario's oracle changes on a fresh world of `seed` (empty when it cannot be played)."""
    from visagent.sim.oracle import solve

    try:
        world = scenario.make_world(seed)
        start = world.state()
        for _ in solve(scenario, world):
            pass
        return set(changed_paths(start, world.state()))
    except Exception:  # noqa: BLE001 - a broken solver leaves only the predicate's paths as the task's
        return set()


def side_effects(before: dict[str, Any], after: dict[str, Any], predicate: Any,
                 params: dict[str, Any] | None = None, asked: set[str] | None = None) -> list[str]:
    """Lines `settings.volume: 30 → 0` for each lasting change from `before` to `after` (two `SimWorld.state()`
    dicts) outside the paths `predicate` reads and the `asked` paths (those the known solution changes); at most
    MAX_LISTED, then one `… and N more` line."""
    goals = goal_paths(predicate, params or {}) | set(asked or ())
    lines = [_describe(path, old, new) for path, (old, new) in changed_paths(before, after).items()
             if not _asked(path, goals)]
    if len(lines) > MAX_LISTED:
        lines = lines[:MAX_LISTED] + [f"… and {len(lines) - MAX_LISTED} more"]
    return lines


def run_side_effects(scenario: Any, world: Any, before: dict[str, Any]) -> list[str]:
    """The side effects of a run on `world` (its state now against `before`), the task being the scenario's."""
    return side_effects(before, world.state(), scenario.success, world.params,
                        solution_paths(scenario, int(world.seed)))
