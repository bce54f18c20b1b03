"""A deterministic simulated GUI world (desktop and phone) rendered with Pillow; see world.SimWorld."""

from __future__ import annotations

from visagent.sim.clock import VirtualClock
from visagent.sim.widgets import Element
from visagent.sim.world import SimWorld

__all__ = ["Element", "SimWorld", "VirtualClock"]
