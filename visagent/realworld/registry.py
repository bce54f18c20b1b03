"""Every real-desktop scenario, by id. Each scenario module holds a `SCENARIOS` list of RealScenario; to add a
module, add its name to SCENARIO_MODULES (one line)."""

from __future__ import annotations

import importlib

from visagent.core.errors import ScenarioError
from visagent.sim.scenarios import scenario_by_id

SCENARIO_MODULES = (
    "visagent.realworld.web_scenarios",
    "visagent.realworld.mousepad_scenarios",
    "visagent.realworld.xterm_scenarios",
    "visagent.realworld.galculator_scenarios",
)


def real_scenarios() -> list:
    """All real-desktop scenarios, in module order. Raises ScenarioError on a duplicate id."""
    out: list = []
    seen: set[str] = set()
    for name in SCENARIO_MODULES:
        for sc in importlib.import_module(name).SCENARIOS:
            if sc.id in seen:
                raise ScenarioError(f"duplicate real-desktop scenario id {sc.id!r} (in {name})")
            seen.add(sc.id)
            out.append(sc)
    return out


def is_real_scenario(sid: str | None) -> bool:
    return bool(sid) and any(sc.id == sid for sc in real_scenarios())


def get_real_scenario(sid: str):
    """The real-desktop scenario with this id; ScenarioError listing close ids when unknown."""
    return scenario_by_id(real_scenarios(), sid, "real-desktop scenario",
                          "`visagent scenarios list --world real-desktop`")
