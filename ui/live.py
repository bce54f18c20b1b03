"""The buffer between one run and the page: agent events folded into a state the page polls.

`LiveRun` receives the Agent's events (from the loop's and the engine's threads) and keeps, under a lock,
what the Run view shows: the latest screenshot with its markers, the streamed thinking and answer, the
action log, a pending confirmation, per-step timings and the outcome. `snapshot()` returns a consistent
copy; version counters let the page re-send only what changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from ui.overlay import Markers, markers_for_action
from visagent.loop import events as E
from visagent.core.errors import ConfigError

if TYPE_CHECKING:
    from ui.run_request import RunRequest

_TEXT_LIMIT = 20_000  # characters of thinking / answer kept per step (the trace keeps all of it)
_LOG_LIMIT = 500


@dataclass(frozen=True)
class StepTiming:
    """One row of the per-step timings table (seconds; settle on the executor's clock)."""

    step: int
    action: str
    decision: str
    capture: float | None
    model: float | None
    execute: float | None
    settle: float | None
    total: float | None


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of a run's buffered state. `screen_version` grows when the screen or its markers
    change; `log_version` when the log, timings or confirmation change (the page re-sends only what moved)."""

    id: str
    task: str
    executor: str
    model: str
    state: str
    phase: str  # what the step in progress is doing: "", "model reading the screen", "model writing", "acting"
    status: str | None
    reason: str
    step: int
    screenshot: Image.Image | None
    markers: Markers
    screen_version: int
    thinking: str
    answer: str
    log: tuple[str, ...]
    log_version: int
    confirmation: str | None
    timings: tuple[StepTiming, ...]
    trace_dir: str | None
    final_answer: str | None
    started: float
    elapsed: float
    # After the end: "met" / "not_met" (the sim world's check of the scenario's goal), "none" (no check:
    # a typed task, a real screen), None while the run (or its check) is still going.
    verdict: str | None = None
    report: str | None = None  # <trace>/report.html, written when the run ends
    side_effects: tuple[str, ...] = ()  # lasting changes to the sim world the task did not ask for

    @property
    def active(self) -> bool:
        return self.status is None


class LiveRun:
    """One run: its request, its agent (once built), and the buffer its events fill. Thread-safe."""

    def __init__(self, run_id: str, request: RunRequest) -> None:
        self.id = run_id
        self.request = request
        self.agent: Any = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = "starting"
        self._phase = ""
        self._status: str | None = None
        self._reason = ""
        self._step = 0
        self._screenshot: Image.Image | None = None
        self._geometry: dict[str, Any] | None = None
        self._markers = Markers()
        self._screen_version = 0
        self._thinking = ""
        self._answer = ""
        self._log: list[str] = []
        self._log_version = 0
        self._confirmation: str | None = None
        self._timings: list[StepTiming] = []
        self._trace_dir: str | None = None
        self._final_answer: str | None = None
        self._verdict: str | None = None
        self._report: str | None = None
        self._side_effects: tuple[str, ...] = ()
        self._started = time.monotonic()
        self._ended: float | None = None
        self._stop_requested = False

    # -- what the page reads ------------------------------------------------------------------------
    def snapshot(self) -> RunSnapshot:
        with self._lock:
            state = self._state
            if self.agent is not None and self._status is None:
                state = self.agent.state
                if self._stop_requested:
                    state = "stopping (after the model call in progress)"
            end = self._ended if self._ended is not None else time.monotonic()
            return RunSnapshot(
                id=self.id, task=self.request.task, executor=self.request.executor_label,
                model=self.request.model.label, state=state, phase=self._phase if self._status is None else "",
                status=self._status, reason=self._reason,
                step=self._step, screenshot=self._screenshot, markers=self._markers,
                screen_version=self._screen_version, thinking=self._thinking, answer=self._answer,
                log=tuple(self._log), log_version=self._log_version, confirmation=self._confirmation,
                timings=tuple(self._timings), trace_dir=self._trace_dir, final_answer=self._final_answer,
                started=self._started, elapsed=end - self._started, verdict=self._verdict, report=self._report,
                side_effects=self._side_effects,
            )

    # -- controls (any thread) ----------------------------------------------------------------------
    def control(self, name: str, note: str = "") -> str:
        """Apply a control: pause, resume, step, stop, takeover, handback, approve, deny. Returns one line
        saying what happened (nothing is raised for a control that does not apply now)."""
        with self._lock:
            if self._status is not None:
                return f"the run has ended ({self._status}); start a new one"
            agent = self.agent
            if agent is None:
                if name == "stop":
                    self._stop_requested = True
                    return "stopping before the first step"
                return "the run is still starting; wait until the first screenshot"
        if name == "stop":
            with self._lock:
                self._stop_requested = True
        actions = {"pause": agent.pause, "resume": agent.resume, "step": agent.step_once, "stop": agent.stop,
                   "takeover": agent.take_over, "approve": agent.approve, "deny": agent.deny}
        if name == "handback":
            agent.hand_back(note)
        elif name in actions:
            actions[name]()
        else:
            raise ConfigError(f"unknown control {name!r}")
        return f"{name}: done"

    def human_click(self, x: float, y: float) -> str:
        """While taken over on a sim screen: click at (x, y) in pixels of the live screenshot, as the human.
        Returns one line saying what happened (a real screen is driven with its own mouse instead)."""
        with self._lock:
            agent, ended, geometry = self.agent, self._status is not None, self._geometry
            idle = len(self._timings) == self._step  # no step in progress: the loop waits for the hand-back
        if agent is None or ended:
            return "no run is going on this page"
        if agent.state != "taken_over":
            return "press Take over first; until then the screen belongs to the agent"
        if self.request.executor != "sim":
            return "on a real screen, use its own mouse and keyboard while you have it"
        if not idle or geometry is None:
            return "wait a moment: the agent is finishing its step"
        from visagent.core.actions import Action
        from visagent.core.errors import VisagentError

        scale = float(geometry.get("scale") or 1.0)
        point = (round(x / scale), round(y / scale))
        try:  # through the run's screen seam: its thread, time limit, closed check and settling
            result = agent.screen.act(Action("left_click", coordinate=point, space="screen"))
            image = result.observation.image if result.observation is not None else agent.screen.screenshot().image
        except VisagentError as exc:
            return f"the click did not reach the screen: {' '.join(str(exc).split())}"
        with self._lock:
            self._screenshot = image
            self._markers = Markers(click=(x, y))
            self._screen_version += 1
            self._add_log(f"  [you] left_click [{point[0]}, {point[1]}]: {result.message or 'ok'}")
        return f"clicked at [{point[0]}, {point[1]}]"

    # -- what the run thread calls ------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop_requested

    def attach(self, agent: Any) -> None:
        with self._lock:
            self.agent = agent

    def note(self, line: str) -> None:
        with self._lock:
            self._add_log(line)

    def conclude(self, goal_met: bool | None, line: str | None, report: str | None,
                 side_effects: list[str] | None = None) -> None:
        """After the run: the world check's verdict (None: no check) with its log line, the report's path and
        the side effects on the sim world."""
        from visagent.core.verdict import verdict_key

        with self._lock:
            if line:
                self._add_log(line)
            if side_effects:
                self._add_log(f"side effects (not asked for): {'; '.join(side_effects)}")
            self._side_effects = tuple(side_effects or ())
            self._verdict = verdict_key(goal_met)
            self._report = report

    def fail(self, reason: str, status: str = "error") -> None:
        """The run ended outside the agent loop (could not start, stopped before its first step, a bug)."""
        with self._lock:
            self._status, self._reason, self._state = status, reason, "finished"
            self._verdict = self._verdict or "none"
            self._ended = time.monotonic()
            self._confirmation = None
            self._add_log(f"{status}: {reason}")

    def _add_log(self, line: str) -> None:
        self._log.append(line)
        del self._log[:-_LOG_LIMIT]
        self._log_version += 1

    def on_event(self, event: E.StepEvent) -> None:
        """The Agent's on_event: fold one event into the buffer."""
        with self._lock:
            self._fold(event)

    def _fold(self, event: E.StepEvent) -> None:  # noqa: C901 - one branch per event type
        if isinstance(event, E.ModelDelta):
            self._phase = "model writing"
            if event.kind == "thinking":
                self._thinking = (self._thinking + event.text)[-_TEXT_LIMIT:]
            else:
                self._answer = (self._answer + event.text)[-_TEXT_LIMIT:]
        elif isinstance(event, E.RunStarted):
            self._trace_dir = event.trace_dir
            self._add_log(f"started: {event.task}")
        elif isinstance(event, E.StepStarted):
            self._step = event.step
            self._thinking = self._answer = ""
            self._add_log(f"── step {event.step}")
        elif isinstance(event, E.Screenshot):
            self._screenshot = event.image
            self._geometry = event.geometry.to_dict()
            self._markers = Markers()
            self._screen_version += 1
            self._phase = "model reading the screen"
        elif isinstance(event, E.ActionParsed):
            self._phase = "acting"
            for line in event.log_lines():
                self._add_log(line)
            if event.actions:
                self._markers = markers_for_action(event.actions[0].to_dict(), self._geometry, executed=False)
                self._screen_version += 1
        elif isinstance(event, E.NeedsConfirmation):
            self._confirmation = f"{event.action.summary()} — {event.reason}"
            self._add_log(f"  risky: {event.action.summary()} ({event.reason}); waiting for Approve / Deny")
        elif isinstance(event, E.Blocked):
            self._confirmation = None
            self._add_log(f"  not executed: {event.reason}")
        elif isinstance(event, E.Executed):
            self._confirmation = None
            r = event.result
            self._markers = markers_for_action(event.action.to_dict(), self._geometry, executed=True)
            self._screen_version += 1
            changed = {True: ", screen changed", False: ", screen did not change", None: ""}[r.changed]
            state = "ok" if r.ok else f"failed: {r.message}"
            self._add_log(f"  result: {state}{changed} ({r.execute_s:.2f} s + settle {r.settle_s:.2f} s)")
        elif isinstance(event, E.StepFinished):
            self._phase = ""
            self._timings.append(_timing_row(event.record))
            self._log_version += 1
        elif isinstance(event, E.ErrorEvent):
            self._add_log(f"  ! {event.message}")
        elif isinstance(event, E.ControlEvent):
            if event.control in ("approve", "deny"):
                self._confirmation = None
            self._add_log(f"  [{event.control}] {event.note}".rstrip())
        elif isinstance(event, E.RunFinished):
            self._status, self._reason, self._state = event.status, event.reason, "finished"
            self._final_answer = event.answer
            self._trace_dir = event.trace_dir or self._trace_dir
            self._confirmation = None
            self._ended = time.monotonic()
            line = f"finished: {event.status} — {event.reason} ({event.steps} steps)"
            if event.answer:
                line += f"\nanswer: {event.answer}"
            self._add_log(line)


def _timing_row(record: dict[str, Any]) -> StepTiming:
    t = record.get("timings") or {}
    actions = record.get("actions") or []
    action = "—"
    if actions and isinstance(actions[0], dict):
        action = " ".join(str(v) for k, v in actions[0].items() if k not in ("space", "mapping"))
    elif record.get("parse_error"):
        action = "parse error"
    decision = str((record.get("policy") or {}).get("decision") or "")

    def num(key: str) -> float | None:
        value = t.get(key)
        return round(float(value), 3) if isinstance(value, (int, float)) else None

    return StepTiming(int(record.get("step", 0)), action, decision, num("capture"), num("model"), num("execute"),
                      num("settle"), num("total"))
