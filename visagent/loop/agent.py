"""The agent loop: capture → settle → prompt → generate (streamed) → parse → to screen → policy → execute → record.

One `Agent` runs one task on one executor with one engine, until the model terminates or answers, the step
or time limit is reached, the user stops it, or an engine/executor failure ends it (status `error`, a
one-line reason). Every external call has a timeout. It emits `visagent.loop.events` to `on_event` and writes a
trace (docs/trace-format.md). Controls (stop, pause, resume, step_once, take_over, hand_back, approve,
deny) are thread-safe and may be called from any thread while `run()` is going.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import Engine, GenerationConfig
from engine.errors import EngineError
from visagent.loop.agent_step import RunEnd as _RunEnd, StepLogic, one_line as _one_line
from visagent.loop.controls import AgentControls, RunStopped, State
from visagent.core.errors import ConfigError, ExecutorError, VisagentError
from visagent.loop.events import ControlEvent, RunFinished, RunStarted, StepEvent
from visagent.screen.base import Executor, Observation
from visagent.loop.pointing import POINT_SOURCES, uses_head
from visagent.loop.policy import SafetyPolicy, SecretVault, resolve_secrets
from visagent.loop.prompting import StepMemory, history_window
from visagent.loop.sampling import SamplingChoice, describe as describe_sampling
from visagent.core.settings import SafetySettings, Settings
from visagent.core.timeouts import CallTimeout, SerialWorker
from visagent.core.trace import FINAL_IMAGE, TraceWriter, new_run_id

log = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    """How a run behaves. Times in seconds.

    `history_images`: screenshots sent as images (older steps become one-line summaries; no more than the model
    was trained with when its checkpoint declares that, see visagent.loop.prompting.history_window); `append_only`:
    keep every turn unchanged (for engines reusing their cache across steps, `session_id` = run id);
    `parse_retries`: extra model calls after an unparseable answer; `loop_limit`: the same action on an
    unchanged screen this many times ends the run (the model is warned one time before);
    `auto_approve`: approve risky actions without asking (the CLI's --yes); `human_in_loop`: someone
    answers NeedsConfirmation / call_user through approve/deny/hand_back (dashboard, interactive CLI) —
    without one, risky actions are denied and call_user is answered "no user is available";
    `human_timeout_s`: how long to wait for that human before denying / carrying on;
    `secrets`: values for `{{secret:NAME}}` (else taken from the environment);
    `model_timeout_s` / `execute_timeout_s`: limits of one model call / one executor call (incl. settle);
    `point_from`: where a click's point comes from (visagent/loop/pointing.py: auto, text, head);
    `sampling`: per-mode sampling (visagent/loop/sampling.py: the model's recommended values, overrides, or greedy);
    None decodes with `generation` exactly as given in both modes (hand-built configs, tests);
    `thinking_budget` / `answer_tokens`: tokens for the thought and for the answer; each call asks for
    answer_tokens (+ thinking_budget with thinking on); None for both: `generation.max_new_tokens`.
    A thought cut off at the cap is asked again once with thinking off (`thinking_recovery`).
    """

    max_steps: int = 15
    max_seconds: float = 600.0
    history_images: int = 4
    append_only: bool = False
    thinking: bool = False
    settle: bool = True
    parse_retries: int = 2
    loop_limit: int = 3
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    safety: SafetySettings = field(default_factory=SafetySettings)
    auto_approve: bool = False
    human_in_loop: bool = False
    human_timeout_s: float | None = 600.0
    secrets: dict[str, str] | None = None
    model_timeout_s: float = 300.0
    execute_timeout_s: float = 60.0
    point_from: str = "auto"
    sampling: SamplingChoice | None = None
    thinking_budget: int | None = None
    answer_tokens: int | None = None
    thinking_recovery: bool = True

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be positive, got {self.max_seconds}")
        if self.history_images < 1:
            raise ConfigError(f"history_images must be at least 1, got {self.history_images}")
        if self.parse_retries < 0:
            raise ConfigError(f"parse_retries must be 0 or more, got {self.parse_retries}")
        if self.loop_limit < 2:
            raise ConfigError(f"loop_limit must be at least 2, got {self.loop_limit}")
        if self.model_timeout_s <= 0 or self.execute_timeout_s <= 0:
            raise ConfigError("model_timeout_s and execute_timeout_s must be positive")
        if self.point_from not in POINT_SOURCES:
            raise ConfigError(f"point_from must be one of {', '.join(POINT_SOURCES)}, got {self.point_from!r}")
        for name in ("thinking_budget", "answer_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 token, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> AgentConfig:
        """Config from resolved settings; keyword overrides win."""
        base: dict[str, Any] = dict(
            max_steps=settings.max_steps, max_seconds=settings.max_seconds,
            history_images=settings.history_images, thinking=settings.thinking, settle=settings.settle,
            safety=settings.safety, point_from=settings.point_from,
            sampling=SamplingChoice.from_settings(settings), thinking_budget=settings.thinking_budget,
            answer_tokens=settings.answer_tokens,
        )
        base.update(overrides)
        return cls(**base)

    def describe(self) -> dict[str, Any]:
        """JSON-ready view for meta.json (secrets left out, only their names)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "secrets"}
        data["generation"] = dataclasses.asdict(self.generation)
        data["sampling"] = dataclasses.asdict(self.sampling) if self.sampling is not None else None
        data["safety"] = dataclasses.asdict(self.safety)
        data["secret_names"] = sorted(self.secrets or {})
        return data


@dataclass
class RunResult:
    status: str
    reason: str
    steps: int
    answer: str | None
    trace_dir: Path | None
    run_id: str


class Agent(StepLogic):
    """Runs one task. See the module docstring; `run()` blocks in the caller's thread.

    `trace_root`: where `<run_id>/` is written (None: no trace). `on_event`: receives every event (from the
    loop's thread; ModelDelta from the engine's thread; ControlEvent from the thread calling the control).
    `run_meta`: extra fields for meta.json's `executor` section (scenario id, seed).
    """

    def __init__(self, engine: Engine, executor: Executor, config: AgentConfig | None = None, *,
                 trace_root: str | Path | None = "runs", on_event: Callable[[StepEvent], None] | None = None,
                 run_meta: dict[str, Any] | None = None, run_id: str | None = None) -> None:
        self.engine = engine
        self.executor = executor
        self.config = config or AgentConfig()
        self.trace_root = None if trace_root is None else Path(trace_root)
        self.on_event = on_event
        self.run_meta = dict(run_meta or {})
        self.policy = SafetyPolicy(self.config.safety)
        self.head_points = uses_head(engine.info, self.config.point_from)  # ConfigError: "head" without a head
        self.controls = AgentControls(self._on_control)
        self.run_id = run_id or new_run_id()  # a caller that names the run first (the dashboard) passes its id
        self.trace: TraceWriter | None = None
        self.vault = SecretVault()
        self._started = False
        self._memory: list[StepMemory] = []
        self._feedback: list[str] = []  # told to the model with the next screenshot
        self._next_obs: Observation | None = None
        self._last_obs: Observation | None = None
        self._repeat: tuple[str, Any, int] = ("", None, 0)  # loop detector: action, screen, count
        self._waited_s = 0.0
        self._settle_capture_s = 0.0
        self._worker = SerialWorker(f"visagent-executor-{self.run_id}")  # one thread for all executor calls

    # -- controls (thread-safe) -------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.controls.state

    def stop(self) -> None:
        self.controls.stop()

    def pause(self) -> None:
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def step_once(self) -> None:
        self.controls.step_once()

    def take_over(self) -> None:
        self.controls.take_over()

    def hand_back(self, note: str = "") -> None:
        self.controls.hand_back(note)

    def approve(self) -> None:
        self.controls.approve()

    def deny(self) -> None:
        self.controls.deny()

    def _on_control(self, name: str, note: str) -> None:
        note = self.vault.redact(note)
        if self.trace is not None and name in ("pause", "resume", "step", "takeover", "handback", "stop"):
            try:
                self.trace.append({"type": "control", "control": name, "note": note})
            except VisagentError as exc:  # the trace may be finished already; the control still applies
                log.warning("control %s not recorded: %s", name, self.vault.redact(str(exc)))
        self._emit(ControlEvent(name, note))

    def _emit(self, event: StepEvent) -> None:
        if self.on_event is None:
            return
        event = self.vault.redact_any(event)  # the one redaction pass over everything the loop shows
        try:
            self.on_event(event)
        except Exception:  # a broken listener must not kill the run; it is logged, not hidden
            log.exception("on_event handler failed on %s", type(event).__name__)

    # -- the run ----------------------------------------------------------------------------------
    def run(self, task: str) -> RunResult:
        """Run `task` to the end. Raises ConfigError for bad input (empty task, missing secret) before
        anything starts, and VisagentError when the run is started twice; everything after the start
        ends as a RunResult (engine/executor failures: status "error")."""
        if self._started:
            raise VisagentError("this Agent already ran; create a new Agent for another task")
        if not task or not task.strip():
            raise ConfigError("the task is empty; say what the agent should do")
        self._started = True
        self.vault = SecretVault(resolve_secrets(task, self.config.secrets))
        self.policy.secrets = self.vault  # the policy checks typed secrets by their real value
        task = self.vault.redact(task)  # the model and the trace see placeholders only
        step = 0
        status, reason, answer = "error", "", None
        self.controls.set_state("running")
        try:
            geometry = self._call(self.executor.geometry, "reading the screen geometry")
            if self.trace_root is not None:
                self.trace = TraceWriter(self.trace_root, self._meta(task, geometry), run_id=self.run_id,
                                         redact=self.vault.redact, background=True)
                self.trace.append({"type": "run_started"})
            self._emit(RunStarted(self.run_id, task, str(self.trace.path) if self.trace else None))
            started = time.monotonic()
            while True:
                try:
                    self._waited_s += self.controls.wait_to_step()
                except RunStopped:
                    raise _RunEnd("stopped", "stopped by the user") from None
                if step >= self.config.max_steps:
                    raise _RunEnd("max_steps", f"reached the step limit ({self.config.max_steps})")
                if step and time.monotonic() - started - self._waited_s > self.config.max_seconds:
                    raise _RunEnd("timeout", f"reached the time limit ({self.config.max_seconds:g} s)")
                step += 1
                self._step(task, step)
        except _RunEnd as end:
            status, reason, answer = end.status, end.reason, end.answer
        except RunStopped:
            status, reason = "stopped", "stopped by the user"
        except (EngineError, VisagentError, CallTimeout) as exc:
            status, reason = "error", _one_line(exc)
        except Exception as exc:  # a bug: the run still ends cleanly, the traceback goes to the log
            log.error("agent loop failed: %s", self.vault.redact("".join(traceback.format_exception(exc))))
            status, reason = "error", f"internal error: {type(exc).__name__}: {_one_line(exc)}"
        finally:
            self.controls.set_state("finished")
        reason = self.vault.redact(reason)
        self._finish_trace(status, reason, step, answer)
        self._worker.close()
        trace_dir = self.trace.path if self.trace else None
        self._emit(RunFinished(status, reason, step, answer, str(trace_dir) if trace_dir else None))
        return RunResult(status, reason, step, answer, trace_dir, self.run_id)

    def _meta(self, task: str, geometry) -> dict[str, Any]:
        info = self.engine.info
        settings = self.config.describe()
        # the window the prompts showed (capped at the model's), which an export rebuilds
        settings["history_images"] = history_window(self.config.history_images, info.history_images)
        executor = {"name": getattr(self.executor, "name", type(self.executor).__name__),
                    "platform": self.executor.platform, "geometry": geometry.to_dict()}
        executor.update(self.run_meta)
        settings["sampling_used"] = {mode: describe_sampling(*self._generation_config(thinking))
                                     for mode, thinking in (("thinking", True), ("non_thinking", False))}
        return {"task": task,
                "model": {"spec": info.spec, "model_type": info.model_type, "coord_space": info.coord_space,
                          "prompt_profile": info.prompt_profile, "provider": info.provider},
                "executor": executor, "settings": settings}

    def _finish_trace(self, status: str, reason: str, steps: int, answer: str | None) -> None:
        """Save final.png and close the trace. A trace that cannot be written any more (disk full) is
        logged, never raised: the run's outcome stands."""
        if self.trace is None:
            return
        try:
            try:
                obs = self._call(self.executor.screenshot, "taking the final screenshot", timeout_s=10.0)
                self.trace.save_image(FINAL_IMAGE, obs.image)
            except (VisagentError, EngineError) as exc:  # e.g. the executor died: keep the last screen seen
                log.warning("final screenshot not captured (%s); saving the last one seen",
                            self.vault.redact(_one_line(exc)))
                if self._last_obs is not None:
                    self.trace.save_image(FINAL_IMAGE, self._last_obs.image)
            self.trace.finish(status, reason, steps, answer)
        except VisagentError as exc:
            log.error("trace %s could not be finished: %s", self.trace.path, self.vault.redact(_one_line(exc)))

    def _call(self, fn: Callable[[], Any], what: str, timeout_s: float | None = None) -> Any:
        """An executor call with the executor timeout; failures become ExecutorError with one line."""
        try:
            return self._worker.call(fn, timeout_s or self.config.execute_timeout_s, what)
        except CallTimeout as exc:
            raise ExecutorError(f"{self._executor_name}: {exc}; is the screen / device responsive?") from None
        except (ExecutorError, VisagentError, EngineError):
            raise
        except Exception as exc:
            raise ExecutorError(f"{self._executor_name}: {what} failed: {type(exc).__name__}: {_one_line(exc)}") from exc

    @property
    def _executor_name(self) -> str:
        return str(getattr(self.executor, "name", type(self.executor).__name__))

