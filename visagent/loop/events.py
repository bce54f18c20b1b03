"""Typed events the agent loop emits; the CLI, the dashboard, eval and tests all render the same ones.

Each event is a frozen dataclass with `to_dict()` (JSON-ready, images left out). Events are delivered to the
`on_event` callback of `visagent.loop.agent.Agent`, from the loop's thread, except `ModelDelta`, which comes
from the engine's generating thread. Secrets are already redacted in every event (see visagent.loop.policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from PIL import Image

from visagent.core.actions import Action
from visagent.screen.base import ExecResult, ScreenGeometry


@dataclass(frozen=True)
class RunStarted:
    """A run began; `trace_dir` is None when the run keeps no trace."""

    run_id: str
    task: str
    trace_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "run_started", "run_id": self.run_id, "task": self.task, "trace_dir": self.trace_dir}


@dataclass(frozen=True)
class StepStarted:
    step: int  # 1-based

    def to_dict(self) -> dict[str, Any]:
        return {"type": "step_started", "step": self.step}


@dataclass(frozen=True)
class Screenshot:
    """The screen the model is about to see at `step` (physical pixels, RGB)."""

    step: int
    image: Image.Image = field(repr=False)
    geometry: ScreenGeometry

    def to_dict(self) -> dict[str, Any]:
        return {"type": "screenshot", "step": self.step, "size": list(self.image.size),
                "geometry": self.geometry.to_dict()}


@dataclass(frozen=True)
class ModelDelta:
    """A streamed piece of model output."""

    step: int
    kind: Literal["thinking", "answer"]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "model_delta", "step": self.step, "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class ActionParsed:
    """The actions of one model answer, converted to "screen" space (each carries its `mapping`). `written`: the
    point the model wrote when the click went where its pointing head points instead (visagent/loop/pointing.py)."""

    step: int
    actions: list[Action]
    written: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"type": "action_parsed", "step": self.step, "actions": [a.to_dict() for a in self.actions]}
        if self.written is not None:
            out["written"] = list(self.written)
        return out

    def log_lines(self) -> list[str]:
        """One `  action: <summary>  (model <space> [x, y])` line per action, as the CLI and the dashboard log
        them (the model's own coordinates shown only when the action was mapped from them; with `written`, the
        point is said to be the pointing head's and the written one follows)."""
        lines = []
        for action in self.actions:
            where = ""
            if action.mapping is not None and action.mapping.model is not None:
                mx, my = action.mapping.model
                source = ""
                if self.written is not None:
                    source = ", the pointing head's; written [" + ", ".join(f"{v:g}" for v in self.written) + "]"
                where = f"  (model {action.mapping.space} [{mx:g}, {my:g}]{source})"
            lines.append(f"  action: {action.summary()}{where}")
        return lines


@dataclass(frozen=True)
class NeedsConfirmation:
    """A risky action waits for `Agent.approve()` / `Agent.deny()`."""

    step: int
    action: Action
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "needs_confirmation", "step": self.step, "action": self.action.to_dict(),
                "reason": self.reason}


@dataclass(frozen=True)
class Blocked:
    """An action that was not executed (denied by the human, or refused by the policy); the model is told."""

    step: int
    action: Action
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "blocked", "step": self.step, "action": self.action.to_dict(), "reason": self.reason}


@dataclass(frozen=True)
class Executed:
    step: int
    action: Action
    result: ExecResult

    def to_dict(self) -> dict[str, Any]:
        return {"type": "executed", "step": self.step, "action": self.action.to_dict(),
                "result": self.result.to_dict()}


@dataclass(frozen=True)
class StepFinished:
    """A step ended; `record` is exactly the line written to trace.jsonl (docs/trace-format.md)."""

    step: int
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "step_finished", "step": self.step, "record": self.record}


@dataclass(frozen=True)
class RunFinished:
    """The run ended. `status` as in docs/trace-format.md; `reason` is one line."""

    status: str
    reason: str
    steps: int
    answer: str | None
    trace_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "run_finished", "status": self.status, "reason": self.reason, "steps": self.steps,
                "answer": self.answer, "trace_dir": self.trace_dir}


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong at `step` (0 = before the first step); the run may continue (a parse error fed
    back to the model) or end (see the following RunFinished)."""

    step: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "error", "step": self.step, "message": self.message}


@dataclass(frozen=True)
class ControlEvent:
    """A control took effect: pause, resume, step, takeover, handback, approve, deny, stop."""

    control: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "control", "control": self.control, "note": self.note}


StepEvent = Union[
    RunStarted, StepStarted, Screenshot, ModelDelta, ActionParsed, NeedsConfirmation, Blocked, Executed,
    StepFinished, RunFinished, ErrorEvent, ControlEvent,
]
