"""Helpers for the sim tests: find elements by label and act on them through real low-level events."""

from __future__ import annotations

from visagent.sim import Element, SimWorld


def element(world: SimWorld, label: str, role: str | None = None) -> Element:
    for e in world.visible_elements():
        if e.label == label and (role is None or e.role == role):
            return e
    raise AssertionError(f"no visible element {label!r} ({role}); have: "
                         f"{[(e.label, e.role) for e in world.visible_elements()]}")


def click(world: SimWorld, label: str, role: str | None = None, button: str = "left") -> None:
    x, y = element(world, label, role).center
    world.click(x, y, button)


def settle(world: SimWorld) -> None:
    """Let animations and spinners finish."""
    world.clock.advance(world.busy_for() + 0.01)
    assert not world.busy()
