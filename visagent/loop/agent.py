"""The agent loop: capture → settle → prompt → generate (streamed) → parse → to screen → policy → execute → record.

One `Agent` runs one task on one executor with one engine, until the model terminates or answers, the step
or time limit is reached, the user stops it, or an engine/executor failure ends it (status `error`, a
one-line reason). Every external call has a timeout. It emits `visagent.loop.events` to `on_event` and writes a
trace (docs/trace-format.md). Controls (stop, pause, resume, step_once, take_over, hand_back, approve,
deny) are thread-safe and may be called from any thread while `run()` is going.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import Engine, GenerationConfig, GenerationResult, keep_encoding, smart_resize
from engine.errors import EngineError
from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.core.errors import ActionError, ConfigError, ParseError, VisagentError
from visagent.core.settings import SafetySettings, Settings
from visagent.core.timeouts import CallTimeout, call_with_timeout
from visagent.core.trace import FINAL_IMAGE, TraceWriter, new_run_id, step_image_name
from visagent.loop.controls import AgentControls, RunStopped, State
from visagent.loop.events import (
    ActionParsed, Blocked, ControlEvent, ErrorEvent, Executed, ModelDelta, NeedsConfirmation, RunFinished, RunStarted,
    Screenshot, StepEvent, StepFinished, StepStarted,
)
from visagent.loop.pointing import POINT_SOURCES, uses_head, with_head_point
from visagent.loop.policy import SafetyPolicy, SecretVault, resolve_secrets
from visagent.loop.prompting import ModelTurn, StepMemory, build_messages, count_images, history_window
from visagent.loop.sampling import SamplingChoice, describe as describe_sampling, resolve as resolve_sampling
from visagent.screen.base import ExecResult, Executor, Observation
from visagent.screen.seam import Screen
from visagent.screen.settle import images_differ

log = logging.getLogger(__name__)

_PLATFORM_ACTIONS = {"desktop": A.COMPUTER_ACTIONS, "phone": A.MOBILE_ACTIONS}
NO_USER_NOTE = "No user is available to help; continue on your own or terminate with status failure."
# Sampling for a retry after an unusable greedy answer (Qwen3.5's suggested non-thinking values).
RETRY_TEMPERATURE = 0.7
RETRY_TOP_P = 0.8
_ENDS_WITH_ERROR = ("error", "parse_error", "loop", "stopped", "timeout")


class RunEnd(Exception):
    """Ends the run with `status`; `reason` is one line."""

    def __init__(self, status: str, reason: str, answer: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.answer = status, one_line(reason), answer


def one_line(value: Any) -> str:
    text = " ".join(str(value).split())
    return text or type(value).__name__



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


class Agent:
    """Runs one task. See the module docstring; `run()` blocks in the caller's thread.

    `trace_root`: where `<run_id>/` is written (None: no trace). `on_event`: receives every event (from the
    loop's thread; ModelDelta from the engine's thread; ControlEvent from the thread calling the control).
    `run_meta`: extra fields for meta.json's `executor` section (scenario id, seed).
    `executor`: a backend or a Screen; every call to it goes through `self.screen` (visagent.screen.seam:
    closed check, `execute_timeout_s`, one worker thread, settling as `config.settle` says), which a caller
    driving the same screen meanwhile (a take-over click) uses too.
    """

    def __init__(self, engine: Engine, executor: Executor | Screen, config: AgentConfig | None = None, *,
                 trace_root: str | Path | None = "runs", on_event: Callable[[StepEvent], None] | None = None,
                 run_meta: dict[str, Any] | None = None, run_id: str | None = None) -> None:
        self.engine = engine
        self.config = config or AgentConfig()
        self.screen = Screen.over(executor, timeout_s=self.config.execute_timeout_s, settle=self.config.settle)
        self.executor = self.screen.backend
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
            geometry = self.screen.geometry()
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
                    raise RunEnd("stopped", "stopped by the user") from None
                if step >= self.config.max_steps:
                    raise RunEnd("max_steps", f"reached the step limit ({self.config.max_steps})")
                if step and time.monotonic() - started - self._waited_s > self.config.max_seconds:
                    raise RunEnd("timeout", f"reached the time limit ({self.config.max_seconds:g} s)")
                step += 1
                self._step(task, step)
        except RunEnd as end:
            status, reason, answer = end.status, end.reason, end.answer
        except RunStopped:
            status, reason = "stopped", "stopped by the user"
        except (EngineError, VisagentError, CallTimeout) as exc:
            status, reason = "error", one_line(exc)
        except Exception as exc:  # a bug: the run still ends cleanly, the traceback goes to the log
            log.error("agent loop failed: %s", self.vault.redact("".join(traceback.format_exception(exc))))
            status, reason = "error", f"internal error: {type(exc).__name__}: {one_line(exc)}"
        finally:
            self.controls.set_state("finished")
        reason = self.vault.redact(reason)
        self._finish_trace(status, reason, step, answer)
        self.screen.release()
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
                obs = self.screen.screenshot(timeout_s=10.0)
                self.trace.save_image(FINAL_IMAGE, obs.image)
            except (VisagentError, EngineError) as exc:  # e.g. the executor died: keep the last screen seen
                log.warning("final screenshot not captured (%s); saving the last one seen",
                            self.vault.redact(one_line(exc)))
                if self._last_obs is not None:
                    self.trace.save_image(FINAL_IMAGE, self._last_obs.image)
            self.trace.finish(status, reason, steps, answer)
        except VisagentError as exc:
            log.error("trace %s could not be finished: %s", self.trace.path, self.vault.redact(one_line(exc)))

    # -- one step: capture → settle → prompt → generate → parse → to screen → policy → execute → record --

    def _step(self, task: str, step: int) -> None:
        t_start = time.monotonic()
        self._emit(StepStarted(step))
        timings: dict[str, float] = {}
        record: dict[str, Any] = {
            "type": "step", "step": step, "screenshot": None, "geometry": None, "prompt": {}, "model": {},
            "attempts": 0, "parse_error": None, "actions": [], "policy": {"decision": None, "reason": ""},
            "result": None, "timings": timings, "error": None,
        }
        # Taken before the capture: a takeover at any point after it makes this step's screenshot stale.
        takeovers = self.controls.takeovers
        self._settle_capture_s = 0.0  # the settle detector's own captures and comparisons this step
        try:
            t = time.monotonic()
            obs = self._capture()
            timings["capture"] = round(time.monotonic() - t, 4)
            record["geometry"] = obs.geometry.to_dict()
            if self.trace is not None:
                record["screenshot"] = self.trace.save_image(step_image_name(step), obs.image)
            self._emit(Screenshot(step, obs.image, obs.geometry))
            self._step_body(task, step, obs, record, takeovers)
        except RunEnd as end:
            if end.status in _ENDS_WITH_ERROR:
                record["error"] = end.reason
            raise
        except RunStopped:
            record["error"] = "stopped by the user"
            raise
        except Exception as exc:
            record["error"] = one_line(exc)
            raise
        finally:
            if self._settle_capture_s:
                timings["settle_capture"] = round(self._settle_capture_s, 4)
            timings["total"] = round(time.monotonic() - t_start, 4)
            if self._memory and self._memory[-1].step == step:
                # What later prompts replay of this step, so exports rebuild the exact messages sent.
                record.update(self._memory[-1].to_record())
            self._record(step, record)

    def _record(self, step: int, record: dict[str, Any]) -> None:
        clean = self.vault.redact_obj(record)
        if self.trace is not None:
            # The writer thread has been saving the screenshot since the capture; StepFinished still means the
            # step's line and its files are on disk (docs/agent.md). meta.json's step count follows behind.
            self.trace.append(clean)
            self.trace.flush()
            self.trace.update_meta(steps=step)
        self._emit(StepFinished(step, clean))

    def _capture(self) -> Observation:
        """The screen for this step: the settled screen the last action left, else a fresh (settled) capture."""
        obs, self._next_obs = self._next_obs, None
        if obs is None:
            obs = self.screen.observe()  # settled unless config.settle is off
            self._settle_capture_s += obs.settle_capture_s
        keep_encoding(obs.image)  # never drawn on: the trace and every request share one PNG of it
        self._last_obs = obs
        return obs

    def _step_body(self, task: str, step: int, obs: Observation, record: dict[str, Any],
                   takeovers: int) -> None:
        info = self.engine.info
        platform = self.executor.platform
        resized = smart_resize(obs.image.width, obs.image.height, info.vision)
        from visagent.core.schemas import tool_for

        tools = [tool_for(platform, info.coord_space, resized[0], resized[1], info.prompt_profile)]
        note = self.controls.pop_handback_note()
        if note is not None:
            self._feedback.append("The user took control of the screen and handed it back"
                                  + (f" with this note: {note}" if note else ".") + " Look at the new screenshot.")
        base_feedback, self._feedback = list(self._feedback), []
        errors: list[str] = []
        thinking = self.config.thinking
        while True:
            fb_parts = list(base_feedback)
            if errors:
                fb_parts.append(f"Your previous answer could not be used: {errors[-1]} "
                                "Reply with exactly one tool call.")
            feedback = "\n".join(fb_parts)
            messages = build_messages(task, self._memory, obs.image, platform=platform, space=info.coord_space,
                                      history_images=history_window(self.config.history_images, info.history_images),
                                      append_only=self.config.append_only, feedback=feedback or None,
                                      profile=info.prompt_profile, thinking=self.config.thinking)
            if record["screenshot"]:  # docs/trace-format.md: a step's screenshot is on disk before its model call
                t = time.monotonic()
                self.trace.wait_image(record["screenshot"])
                timings = record["timings"]
                timings["trace_wait"] = round(timings.get("trace_wait", 0.0) + time.monotonic() - t, 4)
            t = time.monotonic()
            result = self._generate(step, messages, tools, retry=len(errors), thinking=thinking)
            record["timings"]["model"] = round(record["timings"].get("model", 0.0) + time.monotonic() - t, 4)
            record["attempts"] = len(errors) + 1 + ("thinking_cut" in record)
            record["prompt"] = {"tokens": result.prompt_tokens, "visual_tokens": result.visual_tokens,
                                "images": count_images(messages), "cached_tokens": result.cached_tokens}
            turn = ModelTurn.from_result(result)
            # the turn as produced (content, thinking, structured tool_calls): later prompts and exports replay it
            record["model"] = {"raw": result.text, "answer": result.answer, **turn.to_record(),
                               "finish_reason": result.finish_reason, "generated_tokens": result.generated_tokens}
            if self.controls.stopped:
                raise RunStopped
            if self.controls.takeovers != takeovers:  # taken over since the capture (maybe handed back already)
                record["policy"] = {"decision": "blocked", "reason": "the user took over"}
                self._feedback.append("The user took control while you were deciding; your last answer was not used.")
                return
            try:
                model_action, screen_action, ignored, thought = self._parse(result, obs, resized, record)
                break
            except (ParseError, ActionError) as exc:
                if thinking and result.finish_reason == "length" and self.config.thinking_recovery:
                    # The thought hit the token cap before its call: ask once more with thinking off rather
                    # than spend a parse retry on an answer that was never written.
                    thinking = False
                    cut = {"generated_tokens": result.generated_tokens, "thinking": result.thinking,
                           "max_new_tokens": self._generation_config(True)[0].max_new_tokens}
                    record["thinking_cut"] = cut
                    self._emit(ErrorEvent(step, f"the thought was cut off at the token cap "
                                                f"({cut['max_new_tokens']}); asking again with thinking off"))
                    continue
                errors.append(one_line(exc))
                record["parse_error"] = errors[-1]
                self._emit(ErrorEvent(step, f"could not use the model's answer: {errors[-1]}"))
                if len(errors) > self.config.parse_retries:
                    raise RunEnd("parse_error", f"the model's answer could not be parsed after {len(errors)} "
                                 f"attempts: {errors[-1]}") from None
        record["parse_error"] = None
        if errors:
            record["parse_errors"] = errors
        mem = StepMemory(step, obs.image, turn=turn, actions=[model_action], note=feedback)
        self._memory.append(mem)
        self._forget_old_images()
        self._act(step, obs, model_action, screen_action, ignored, thought, record, mem)

    def _forget_old_images(self) -> None:
        """Drop the screenshots no later prompt can show (older than the image window; every one is kept with
        append_only), so memory follows the window, not the run's length. The trace keeps them on disk."""
        if self.config.append_only:
            return
        # build_messages shows images from step n-K+1 on, n = len(history)+1; the asked window is the widest K
        first_full = len(self._memory) + 2 - self.config.history_images
        for mem in self._memory:
            if mem.step >= first_full:
                break
            mem.image = None

    def _generation_config(self, thinking: bool) -> tuple[GenerationConfig, str]:
        """(the generation config of one call in this mode, where its sampling comes from): the model's
        recommended values for the mode unless the settings override them or ask for greedy
        (visagent/loop/sampling.py); `generation` as given when the config has no `sampling`."""
        gen = self.config.generation
        if self.config.answer_tokens is not None or self.config.thinking_budget is not None:
            answer = self.config.answer_tokens or gen.max_new_tokens
            budget = self.config.thinking_budget if thinking else None
            gen = dataclasses.replace(gen, max_new_tokens=answer + (budget or 0), thinking_budget=budget)
        if self.config.sampling is None:
            return dataclasses.replace(gen, enable_thinking=thinking), "the agent's generation config"
        return resolve_sampling(gen, self.engine.info, self.config.sampling, thinking)

    def _generate(self, step: int, messages: list, tools: list, retry: int = 0,
                  thinking: bool | None = None) -> GenerationResult:
        """One model call, thinking on or off (default: the run's setting). `retry` > 0 re-asks after unusable
        answers: greedy decoding then samples (temperature RETRY_TEMPERATURE, top-p RETRY_TOP_P), else every
        retry of an unchanged prompt would repeat the same unusable answer."""
        thinking = self.config.thinking if thinking is None else thinking
        gen, _ = self._generation_config(thinking)
        timeout = gen.timeout_s or self.config.model_timeout_s
        cfg = dataclasses.replace(gen, timeout_s=timeout)
        if retry and gen.temperature == 0:
            cfg = dataclasses.replace(cfg, temperature=RETRY_TEMPERATURE, top_p=min(cfg.top_p, RETRY_TOP_P),
                                      seed=None if gen.seed is None else gen.seed + retry)
        cancel = self.controls.new_cancel()

        def on_delta(delta: Any) -> None:
            self._emit(ModelDelta(step, delta.kind, self.vault.redact(delta.text)))

        def call() -> GenerationResult:
            return self.engine.generate(messages, tools=tools, config=cfg, on_delta=on_delta, cancel=cancel,
                                        session_id=self.run_id if self.config.append_only else None)

        try:
            # The engine enforces cfg.timeout_s itself; this outer limit catches one that does not.
            return call_with_timeout(call, timeout + min(5.0, timeout), "the model call", on_timeout=cancel.set)
        except CallTimeout as exc:
            raise RunEnd("error", f"{exc}; raise model_timeout_s or use a faster model") from None
        except EngineError as exc:
            raise RunEnd("error", f"engine: {one_line(exc)}") from None
        except Exception as exc:
            raise RunEnd("error", f"engine failed: {type(exc).__name__}: {one_line(exc)}") from exc

    def _parse(self, result: GenerationResult, obs: Observation, resized: tuple[int, int],
               record: dict[str, Any]) -> tuple[Action, Action, list[Action], str]:
        """(model-space action, screen-space action, ignored extra actions, the model's thought: thinking +
        prose outside the call). A click's point comes from the model's pointing head when the run uses it
        (visagent/loop/pointing.py; the written one is kept in the record's model.pointer). Raises ParseError /
        ActionError with a message fit for the model."""
        from visagent.loop.coords import to_screen
        from visagent.loop.parsing import parse_output

        parsed = parse_output(result.text, space=self.engine.info.coord_space, tool_calls=result.tool_calls)
        if not parsed.actions:
            raise ParseError("no tool call found; call the tool once with an action")
        first, ignored = parsed.actions[0], list(parsed.actions[1:])
        allowed = _PLATFORM_ACTIONS.get(self.executor.platform, A.ALL_ACTIONS)
        if first.action not in allowed:
            raise ParseError(f"action {first.action!r} is not available on a {self.executor.platform}; "
                             f"use one of: {', '.join(allowed)}")
        if result.pointer is not None:
            record["model"]["pointer"] = result.pointer.to_dict()
            moved = with_head_point(first, result.pointer, self.engine.info.coord_space, resized) \
                if self.head_points else None
            if moved is not None:
                record["model"]["pointer"]["written"] = list(first.coordinate or ())
                first = moved
        screen = to_screen(first, obs.geometry, image_size=obs.image.size, resized_size=resized)
        return first, screen, ignored, f"{parsed.thinking}\n{parsed.text}"

    def _act(self, step: int, obs: Observation, model_action: Action, action: Action,
             ignored: list[Action], thought: str, record: dict[str, Any], mem: StepMemory) -> None:
        record["actions"] = [action.to_dict()]
        if ignored:
            record["ignored_actions"] = [a.to_dict() for a in ignored]
        written = (record["model"].get("pointer") or {}).get("written")
        self._emit(ActionParsed(step, [action], written=tuple(written) if written else None))
        told: list[str] = []
        if ignored:
            told.append(f"Only your first action was run; {len(ignored)} more were ignored. Call one tool per turn.")

        # The same action as last step on the same pixels; the screens are compared only when the action repeats.
        key = json.dumps(model_action.arguments(), sort_keys=True)
        last_key, last_image, last_count = self._repeat
        same = key == last_key and last_image is not None and not images_differ(last_image, obs.image)
        count = last_count + 1 if same else 1
        self._repeat = (key, obs.image, count)
        if count >= self.config.loop_limit:
            reason = f"the model repeated {model_action.summary()} {count} times on an unchanged screen"
            record["policy"] = {"decision": "blocked", "reason": reason}
            self._emit(Blocked(step, action, reason))
            mem.result = f"Not executed: {reason}."
            raise RunEnd("loop", reason)

        if action.action == A.TERMINATE:
            record["policy"] = {"decision": "allowed", "reason": ""}
            status = action.status or "success"
            raise RunEnd(status, action.text or f"the model terminated with status {status}")
        if action.action == A.ANSWER:
            record["policy"] = {"decision": "allowed", "reason": ""}
            raise RunEnd("answered", "the model answered", answer=self.vault.redact(action.text or ""))
        if action.action == A.CALL_USER:
            record["policy"] = {"decision": "allowed", "reason": ""}
            mem.result = " ".join(told + [self._call_user(action)])
            return

        decision = self.policy.check(action, thought=thought)
        verdict, reason = "allowed", decision.reason
        if decision.verdict == "confirm":
            verdict, reason = self._confirm(step, action, decision.reason)
        elif decision.verdict == "block":
            verdict = "blocked"
        record["policy"] = {"decision": verdict, "reason": reason}
        if verdict in ("denied", "blocked"):
            self._emit(Blocked(step, action, reason))
            mem.result = " ".join(told + [f"The action was not executed ({reason}). Choose a different action."])
            return

        res = self._execute(step, action, obs, record)
        if not res.ok:
            told.append(f"The action failed: {res.message or 'no reason given'}.")
        else:  # the executor's message speaks screen pixels (it stays in the trace's result); the model's own
            told.append("Done.")  # call, in its own coordinates, sits right before this (or in the step summary)
            if action.action in (A.SCROLL, A.HSCROLL) and action.pixels:
                told.append(A.scroll_note(action.pixels))
        if res.changed is False:
            told.append("The screen did not change after this action.")
        if count == self.config.loop_limit - 1:
            told.append(f"You have done this same action {count} times on an unchanged screen; "
                        "if you repeat it again the run stops. Try something else.")
        mem.result = " ".join(t for t in told if t)

    def _execute(self, step: int, action: Action, obs: Observation, record: dict[str, Any]) -> ExecResult:
        real = self.vault.for_execution(action)  # the only place a secret's value exists
        res = self.screen.act(real, before=obs)  # executed and settled once (settle off: no observation)
        res = dataclasses.replace(res, message=self.vault.redact(res.message or ""))
        if res.observation is not None:
            self._next_obs = res.observation
            self._settle_capture_s += res.settle_capture_s
        record["result"] = res.to_dict()
        if action.action in (A.SCROLL, A.HSCROLL) and action.pixels:
            record["result"]["wheel_clicks"] = A.scroll_clicks(action.pixels)  # what every executor turned
        record["timings"]["execute"] = round(res.execute_s, 4)
        record["timings"]["settle"] = round(res.settle_s, 4)
        self._emit(Executed(step, action, res))
        return res

    def _confirm(self, step: int, action: Action, reason: str) -> tuple[str, str]:
        """Ask for approval of a risky action: ("approved" | "denied", reason)."""
        if self.config.auto_approve:
            return "approved", f"{reason} (approved in advance with --yes)"
        self.controls.begin_confirmation()
        self._emit(NeedsConfirmation(step, action, reason))
        t = time.monotonic()
        timeout = self.config.human_timeout_s if self.config.human_in_loop else 0.0
        decision = self.controls.wait_confirmation(timeout)
        self._waited_s += time.monotonic() - t
        if decision == "approve":
            return "approved", reason
        if decision == "deny":
            return "denied", f"{reason}; the user denied it"
        if not self.config.human_in_loop:
            return "denied", f"{reason}; no one was available to confirm it"
        return "denied", f"{reason}; no answer from the user within {timeout:g} s"

    def _call_user(self, action: Action) -> str:
        """The model asked for the human: hand over the screen, wait for hand-back. Returns the text for the model."""
        self.controls.take_over(self.vault.redact(action.text or ""), by_model=True)
        t = time.monotonic()
        timeout = self.config.human_timeout_s if self.config.human_in_loop else 0.0
        back = self.controls.wait_handback(timeout)
        self._waited_s += time.monotonic() - t
        if not back:
            self.controls.hand_back(NO_USER_NOTE)
        note = self.controls.pop_handback_note() or ""
        self._next_obs = None  # the human may have changed the screen
        if not back:
            return note
        return "The user handed control back" + (f" with this note: {note}" if note else ".") + \
            " Look at the new screenshot."
