"""The executor protocol: one surface for the sim world, a real X11 desktop and an Android phone.

An executor (a backend) captures the screen (`screenshot()`), reports its geometry, and executes actions whose
coordinates are already in "screen" space (global logical pixels; see visagent.loop.coords.to_screen); it does not
settle. Backends raise `ExecutorError` with a message a user can act on (closed display, dead device ...).
Callers drive a backend through `visagent.screen.seam.Screen`, which adds the closed check, timeouts, the
serial thread, error wrapping and settling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

from visagent.core.actions import Action

Platform = Literal["desktop", "phone"]


@dataclass(frozen=True)
class ScreenGeometry:
    """Where a screen lives and how its screenshot relates to input coordinates.

    `width`/`height`: logical pixels (what input events use). `physical_width`/`physical_height`: pixels of
    the screenshot. `scale` = physical / logical (2.0 on a HiDPI Retina-style screen). `offset_x`/`offset_y`:
    the monitor's origin in global logical coordinates (a second monitor right of a 1920 one → 1920, 0).
    """

    width: int
    height: int
    physical_width: int
    physical_height: int
    offset_x: int = 0
    offset_y: int = 0
    monitor: int = 1

    @property
    def scale(self) -> float:
        return self.physical_width / self.width

    @classmethod
    def simple(cls, width: int, height: int) -> ScreenGeometry:
        return cls(width, height, width, height)

    def contains(self, x: float, y: float) -> bool:
        """Whether a global logical point lies on this screen."""
        return self.offset_x <= x < self.offset_x + self.width and self.offset_y <= y < self.offset_y + self.height

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width, "height": self.height, "physical_width": self.physical_width,
            "physical_height": self.physical_height, "offset_x": self.offset_x, "offset_y": self.offset_y,
            "monitor": self.monitor, "scale": self.scale,
        }


@dataclass
class Observation:
    """One screenshot (physical pixels, RGB) with the geometry it was taken on. `settle_capture_s`: wall time
    the settle detector spent capturing and comparing to produce it (0 for a plain capture)."""

    image: Image.Image
    geometry: ScreenGeometry
    timestamp: float = field(default_factory=time.time)
    settle_capture_s: float = 0.0


@dataclass
class ExecResult:
    """What executing one action did. `settle_s`: time waited for the screen to stop changing after it;
    `changed`: whether the screen changed at all (None when not measured); `target`: the element a one-point
    action landed on, when the executor knows its elements (the sim: {"label", "bbox" in screen pixels,
    "ui_type"}; training records use its box to supervise the pointing head on agent steps)."""

    ok: bool = True
    message: str = ""
    execute_s: float = 0.0
    settle_s: float = 0.0
    changed: bool | None = None
    observation: Observation | None = None  # the settled screen, when the executor captured it
    target: dict[str, Any] | None = None
    settle_capture_s: float = 0.0  # wall time the settle after it spent capturing and comparing (not recorded in
    # `result`; the agent adds it to the step's timings.settle_capture)

    def to_dict(self) -> dict[str, Any]:
        data = {"ok": self.ok, "message": self.message, "execute_s": round(self.execute_s, 4),
                "settle_s": round(self.settle_s, 4), "changed": self.changed}
        if self.target is not None:
            data["target"] = self.target
        return data


@runtime_checkable
class Executor(Protocol):
    """A screen the agent can see and drive."""

    platform: Platform
    name: str  # "sim", "desktop", "android"

    def geometry(self) -> ScreenGeometry: ...

    def screenshot(self) -> Observation: ...

    def execute(self, action: Action) -> ExecResult:
        """Execute an action in "screen" space (no settling: the Screen does that). Final actions
        (terminate/answer) are no-ops here."""
        ...

    def close(self) -> None: ...

    def now(self) -> float:
        """Seconds on this executor's clock (virtual in the sim world, monotonic on real screens)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait on this executor's clock (advances virtual time in the sim world)."""
        ...
