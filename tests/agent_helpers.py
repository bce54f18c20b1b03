"""Helpers shared by the agent-loop tests: real sim worlds, model outputs in Qwen3.5 XML, event capture."""

from __future__ import annotations

import threading
from typing import Any

from visagent.core.actions import Action
from visagent.screen.simulated import SimExecutor
from visagent.loop.parsing import render_action
from visagent.sim.scenarios import get_scenario

SCENARIO = "desktop-settings-wifi-off"


def xml(action: str, **args: Any) -> str:
    """Model output for one action in Qwen3.5 XML (coordinates on the 0..1000 grid)."""
    return render_action(Action(action, space="norm1000", **args), "qwen35")


DONE = xml("terminate", status="success")
WAIT = xml("wait", time=0.1)


class RecordingSimExecutor(SimExecutor):
    """The real SimExecutor, remembering every action it was asked to execute (to check secrets arrive)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.executed: list[Action] = []

    def execute(self, action: Action):  # type: ignore[override]
        self.executed.append(action)
        return super().execute(action)


def sim(scenario_id: str = SCENARIO, seed: int = 0, scale: float = 1.0) -> tuple[Any, RecordingSimExecutor]:
    scenario = get_scenario(scenario_id)
    return scenario, RecordingSimExecutor(scenario.make_world(seed), scale=scale)


class EventLog:
    """Collects events; `wait_for(pred)` blocks until an event matching pred has arrived."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()
        self.hooks: list[Any] = []

    def __call__(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        for hook in list(self.hooks):
            hook(event)

    def of(self, cls: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, cls)]

    def wait_for(self, pred, timeout: float = 60.0) -> Any:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(pred(e) for e in self.events), timeout)
            assert ok, f"event not seen within {timeout} s; got {[type(e).__name__ for e in self.events]}"
            return next(e for e in self.events if pred(e))


def texts_of(messages: list[dict]) -> str:
    """All text in a list of chat messages, joined (images left out)."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p.get("text", "") for p in content if p.get("type") == "text"]
    return "\n".join(out)
