"""A deterministic simulated GUI world (desktop and phone) rendered with Pillow, and the scenarios set in it.

Owns: the world and its apps (world, apps/, widgets ...), scenarios with their success predicates (scenarios),
their scripted oracles (oracle, solvers/) and the side-effect check (side_effects).

May import: visagent.core only. Never the engine, the screen, the loop or anything above.
"""

from __future__ import annotations

from visagent.sim.clock import VirtualClock
from visagent.sim.widgets import Element
from visagent.sim.world import SimWorld

__all__ = ["Element", "SimWorld", "VirtualClock"]
