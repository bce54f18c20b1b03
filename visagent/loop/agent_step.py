"""One step of the agent loop (the body of `visagent.loop.agent.Agent`, kept apart so each file holds one idea).

`StepLogic` is mixed into `Agent`; it expects the attributes `Agent.__init__` sets (engine, executor, config,
controls, policy, vault, trace, run_id and the per-run memory fields) and the helpers `_emit` and `_call`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from engine.api import GenerationConfig, GenerationResult, smart_resize
from engine.errors import EngineError
from engine.api import keep_encoding
from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.loop.controls import RunStopped
from visagent.core.errors import ActionError, ParseError
from visagent.loop.events import (
    ActionParsed, Blocked, ErrorEvent, Executed, ModelDelta, NeedsConfirmation, Screenshot, StepFinished,
    StepStarted,
)
from visagent.screen.base import ExecResult, Observation
from visagent.loop.pointing import with_head_point
from visagent.loop.prompting import ModelTurn, StepMemory, build_messages, count_images, history_window
from visagent.loop.sampling import resolve as resolve_sampling
from visagent.screen.settle import SettleDetector, images_differ
from visagent.core.timeouts import CallTimeout, call_with_timeout
from visagent.core.trace import step_image_name

if TYPE_CHECKING:
    from visagent.loop.agent import Agent

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


class StepLogic:
    """capture → settle → prompt → generate → parse → to screen → policy → execute → record, for one step."""

    def _step(self: Agent, task: str, step: int) -> None:
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

    def _record(self: Agent, step: int, record: dict[str, Any]) -> None:
        clean = self.vault.redact_obj(record)
        if self.trace is not None:
            # The writer thread has been saving the screenshot since the capture; StepFinished still means the
            # step's line and its files are on disk (docs/agent.md). meta.json's step count follows behind.
            self.trace.append(clean)
            self.trace.flush()
            self.trace.update_meta(steps=step)
        self._emit(StepFinished(step, clean))

    def _capture(self: Agent) -> Observation:
        """The screen for this step: the settled screen the last action left, else a fresh (settled) capture."""
        obs, self._next_obs = self._next_obs, None
        if obs is None:
            obs = self._call(self.executor.screenshot, "taking a screenshot")
            if self.config.settle:
                first = obs

                def wait() -> Any:
                    return SettleDetector().wait(lambda: self.executor.screenshot().image, self.executor.now,
                                                 self.executor.sleep, same_frame=self._same_frame)

                settled = self._call(wait, "waiting for the screen to settle")
                self._settle_capture_s += settled.capture_s
                obs = Observation(settled.final_image, first.geometry)
        keep_encoding(obs.image)  # never drawn on: the trace and every request share one PNG of it
        self._last_obs = obs
        return obs

    @property
    def _same_frame(self: Agent) -> Any:
        """The executor's `same_frame(a, b)` when it has one (SimExecutor), for the settle detector."""
        return getattr(self.executor, "same_frame", None)

    def _step_body(self: Agent, task: str, step: int, obs: Observation, record: dict[str, Any],
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

    def _forget_old_images(self: Agent) -> None:
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

    def _generation_config(self: Agent, thinking: bool) -> tuple[GenerationConfig, str]:
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

    def _generate(self: Agent, step: int, messages: list, tools: list, retry: int = 0,
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

    def _parse(self: Agent, result: GenerationResult, obs: Observation, resized: tuple[int, int],
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

    def _act(self: Agent, step: int, obs: Observation, model_action: Action, action: Action,
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

    def _execute(self: Agent, step: int, action: Action, obs: Observation, record: dict[str, Any]) -> ExecResult:
        real = self.vault.for_execution(action)  # the only place a secret's value exists
        t = time.monotonic()
        res = self._call(lambda: self.executor.execute(real), f"executing {action.action}")
        wall = time.monotonic() - t
        res = dataclasses.replace(res, message=self.vault.redact(res.message or ""))
        if not res.execute_s:
            res.execute_s = wall
        if res.observation is not None:
            self._next_obs = res.observation
            self._settle_capture_s += res.settle_capture_s
            if res.changed is None:
                res.changed = images_differ(obs.image, res.observation.image)
        elif self.config.settle:
            # `before` only serves `changed` here (the default detector does not wait for a late change), so it
            # is left out when the executor already said (the sim does): one full-frame comparison less.
            before = obs.image if res.changed is None else None

            def wait() -> Any:
                return SettleDetector().wait(lambda: self.executor.screenshot().image, self.executor.now,
                                             self.executor.sleep, before=before, same_frame=self._same_frame)

            t = time.monotonic()
            settled = self._call(wait, "waiting for the screen to settle")
            self._settle_capture_s += settled.capture_s
            res.settle_s = res.settle_s or settled.settle_s
            if res.changed is None:
                res.changed = settled.changed
            self._next_obs = Observation(settled.final_image, obs.geometry)
        record["result"] = res.to_dict()
        if action.action in (A.SCROLL, A.HSCROLL) and action.pixels:
            record["result"]["wheel_clicks"] = A.scroll_clicks(action.pixels)  # what every executor turned
        record["timings"]["execute"] = round(res.execute_s, 4)
        record["timings"]["settle"] = round(res.settle_s, 4)
        self._emit(Executed(step, action, res))
        return res

    def _confirm(self: Agent, step: int, action: Action, reason: str) -> tuple[str, str]:
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

    def _call_user(self: Agent, action: Action) -> str:
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
