"""Thread-safe run controls shared by the agent loop and whoever drives it (CLI, dashboard, tests).

The loop blocks in `wait_to_step`, `wait_confirmation` and `wait_handback`; other threads call `stop`,
`pause`, `resume`, `step_once`, `take_over`, `hand_back`, `approve` and `deny`. Every control that takes
effect is reported through the `on_control(name, note)` callback (the agent turns it into a ControlEvent and
a trace record). A generation in flight is cancelled through `cancel` by `stop` and `take_over`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["idle", "running", "paused", "waiting_confirmation", "taken_over", "finished"]


class RunStopped(Exception):
    """Raised inside the loop when `stop()` was called."""


class AgentControls:
    """The control state of one run. All methods are thread-safe."""

    def __init__(self, on_control: Callable[[str, str], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._on_control = on_control or (lambda name, note: None)
        self._state: State = "idle"
        self._stopped = False
        self._paused = False
        self._step_budget = 0
        self._taken_over = False
        self._handback_note: str | None = None
        self._confirming = False
        self._decision: str | None = None
        self._takeovers = 0
        self.cancel = threading.Event()

    # -- what other threads call ------------------------------------------------------------------
    @property
    def state(self) -> State:
        with self._cond:
            return self._state

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    @property
    def takeovers(self) -> int:
        """How many times the screen was taken over so far (the loop compares it across a model call)."""
        with self._cond:
            return self._takeovers

    def stop(self) -> None:
        """End the run at the next safe point; cancels a generation in flight and any pending question."""
        with self._cond:
            if self._stopped or self._state == "finished":
                return
            self._stopped = True
            self.cancel.set()
            self._cond.notify_all()
        self._on_control("stop", "")

    def pause(self) -> None:
        """Pause before the next step (the step in progress finishes)."""
        with self._cond:
            if self._paused or self._state == "finished":
                return
            self._paused = True
            self._step_budget = 0
            if self._state == "running":
                self._state = "paused"
            self._cond.notify_all()
        self._on_control("pause", "")

    def resume(self) -> None:
        with self._cond:
            if not self._paused:
                return
            self._paused = False
            if self._state == "paused":
                self._state = "running"
            self._cond.notify_all()
        self._on_control("resume", "")

    def step_once(self) -> None:
        """When paused: run exactly one step, then pause again. When running: pause after this step."""
        with self._cond:
            if self._state == "finished":
                return
            if not self._paused:
                self._paused = True
                self._step_budget = 0
                self._cond.notify_all()
                note = "pausing after the current step"
            else:
                self._step_budget += 1
                self._cond.notify_all()
                note = "one step"
        self._on_control("step", note)

    def take_over(self, note: str = "", *, by_model: bool = False) -> None:
        """Hand the screen to the human: the loop stops acting until `hand_back`; a generation in flight
        is cancelled. `by_model`: the model asked for it (call_user)."""
        with self._cond:
            if self._taken_over or self._state == "finished":
                return
            self._taken_over = True
            self._takeovers += 1
            self._handback_note = None
            if not by_model:
                self.cancel.set()
            self._state = "taken_over"
            self._cond.notify_all()
        self._on_control("takeover", note or ("the model asked for the user" if by_model else "the user took over"))

    def hand_back(self, note: str = "") -> None:
        """Give the screen back to the agent; `note` is told to the model."""
        with self._cond:
            if not self._taken_over:
                return
            self._taken_over = False
            self._handback_note = note
            self._state = "paused" if self._paused else "running"
            self._cond.notify_all()
        self._on_control("handback", note)

    def approve(self) -> None:
        self._decide("approve")

    def deny(self) -> None:
        self._decide("deny")

    def _decide(self, decision: str) -> None:
        with self._cond:
            if not self._confirming or self._decision is not None:
                return
            self._decision = decision
            self._cond.notify_all()
        self._on_control(decision, "")

    # -- what the loop calls ----------------------------------------------------------------------
    def set_state(self, state: State) -> None:
        with self._cond:
            self._state = state
            self._cond.notify_all()

    def new_cancel(self) -> threading.Event:
        """A fresh cancel event for the next generation (already set when the run is stopping)."""
        with self._cond:
            self.cancel = threading.Event()
            if self._stopped or self._taken_over:
                self.cancel.set()
            return self.cancel

    def wait_to_step(self) -> float:
        """Block while paused (without step budget) or taken over. Returns seconds spent waiting.
        Raises RunStopped when stopped."""
        start = time.monotonic()
        with self._cond:
            while not self._stopped and (self._taken_over or (self._paused and self._step_budget == 0)):
                self._state = "taken_over" if self._taken_over else "paused"
                self._cond.wait()
            if self._stopped:
                raise RunStopped
            if self._paused:
                self._step_budget -= 1
            self._state = "running"
        return time.monotonic() - start

    def pop_handback_note(self) -> str | None:
        with self._cond:
            note, self._handback_note = self._handback_note, None
            return note

    def begin_confirmation(self) -> None:
        """Open a question; call before announcing it, so an answer given synchronously is not lost."""
        with self._cond:
            self._confirming = True
            self._decision = None
            self._state = "waiting_confirmation"

    def wait_confirmation(self, timeout_s: float | None) -> str | None:
        """Wait for approve/deny: returns "approve", "deny", or None when `timeout_s` passed.
        Raises RunStopped when stopped meanwhile."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            try:
                while self._decision is None and not self._stopped:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._cond.wait(left)
                if self._stopped:
                    raise RunStopped
                return self._decision
            finally:
                self._confirming = False
                if self._state == "waiting_confirmation":
                    self._state = "running"

    def wait_handback(self, timeout_s: float | None) -> bool:
        """Wait while taken over; True once handed back, False when `timeout_s` passed (still taken over).
        Raises RunStopped when stopped meanwhile."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._taken_over and not self._stopped:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            if self._stopped:
                raise RunStopped
            return True
