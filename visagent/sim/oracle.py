"""The state-based oracle: the next action (screen space) that makes progress on a scenario.

`next_action(scenario, world)` returns terminate(success) once the predicate holds, `wait` while an
animation or spinner runs, else what the scenario's solver (visagent.sim.solvers) says. It inspects the
current world only, so it solves any seed and recovers from any intermediate state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visagent.core.actions import Action
from visagent.sim.solvers import SOLVERS, Ctx, OracleError

if TYPE_CHECKING:
    from visagent.sim.scenario import Scenario
    from visagent.sim.world import SimWorld

__all__ = ["SOLVERS", "OracleError", "next_action", "solve"]


def next_action(scenario: Scenario, world: SimWorld) -> Action:
    """The oracle's next action. Raises OracleError when its solver finds no way forward."""
    if scenario.is_success(world):
        return Action("terminate", status="success", space="screen")
    if world.busy():
        return Action("wait", time=round(max(0.1, min(2.0, world.busy_for())), 2), space="screen")
    fn = SOLVERS.get(scenario.oracle)
    if fn is None:
        raise OracleError(f"scenario {scenario.id}: no solver named {scenario.oracle!r}")
    action = fn(Ctx(scenario, world))
    if action is None:
        raise OracleError(f"scenario {scenario.id}: solver {scenario.oracle!r} is done but the success predicate "
                          "does not hold")
    return action


def solve(scenario: Scenario, world: SimWorld, max_steps: int | None = None) -> list[Action]:
    """Run the oracle until it terminates; returns the actions taken (terminate last).
    Raises OracleError when it needs more than `max_steps` (default: 4x the scenario's, plus waits)."""
    limit = max_steps if max_steps is not None else scenario.max_steps * 4 + 20
    taken: list[Action] = []
    for _ in range(limit):
        a = next_action(scenario, world)
        taken.append(a)
        if a.action == "terminate":
            return taken
        world.apply(a)
    raise OracleError(f"scenario {scenario.id}: oracle did not finish within {limit} actions: "
                      + "; ".join(x.summary() for x in taken[-5:]))
