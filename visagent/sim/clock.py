"""The virtual clock every animation, spinner and gesture timer in the sim world reads.

Nothing in `visagent.sim` reads wall-clock time, so a run is deterministic and a test can jump over a
300 ms animation by `advance(0.3)` instead of sleeping.
"""

from __future__ import annotations


class VirtualClock:
    """Seconds since the world started; only moves when someone calls `advance`."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (>= 0). Raises ValueError on a negative step."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance({seconds}))")
        self._t += float(seconds)

    def __repr__(self) -> str:
        return f"VirtualClock(t={self._t:.3f})"
