"""`visagent mcp`: the executors as a Model Context Protocol server (official `mcp` SDK, `MCPServer`).

One `McpSession` per server process holds the executor, the coordinate space clients write in, the [safety]
policy, the secrets typed so far and the session's trace. Tools (see docs/mcp.md):

- `screenshot`: the current (settled) screen as an image, plus its geometry.
- `act`: one `computer_use` / `mobile_use` action (validated as a model's tool call is), converted to screen
  space, checked by the policy, executed, settled; returns what ran in both spaces, whether the screen
  changed, and the settled screen. `click` / `type_text` / `press_keys` / `scroll` are the same with fewer
  arguments.
- `list_scenarios` / `reset`: the sim's scenarios, and a fresh world (ends the current trace).
- `run_task`: visagent's own agent on the same executor, with the configured model (or the sim's oracle).

The session's trace is a `visagent-trace/1` directory, written the way the agent loop writes one: each
`act` is a step whose screenshot is the screen the action was decided on and whose next step starts from the
settled screen it left, so `visagent report` and `visagent replay` read it. A trace ends at `reset`,
`run_task`, a final action (terminate / answer) or when the server stops.

Risky actions follow the policy: with `--yes` they run; else the client is asked through MCP elicitation
(both the 2026-07-28 input-required rounds and the older server-to-client request, as the SDK negotiates);
a client without elicitation gets the action denied. `{{secret:NAME}}` in typed text is filled from the
environment at execution time only; every returned or traced string is redacted.

Bad input gets an error result (`isError`) holding the same one-line message the CLI prints; the server keeps
running.
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations, which name local objects.

import base64
import dataclasses
import io
import json
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any

from PIL import Image

from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.core.errors import ConfigError, VisagentError
from visagent.screen.base import Executor, Observation
from visagent.screen.seam import Screen
from visagent.loop.policy import SafetyPolicy, SecretVault, resolve_secrets, secret_names
from visagent.core.settings import Settings

log = logging.getLogger(__name__)

SPACES = ("absolute", "norm1000")
_PLATFORM_TOOL = {"desktop": "computer_use", "phone": "mobile_use"}
_SESSION_TASK = "MCP session (actions chosen by an MCP client)"
NOT_CONFIRMED = "no-elicitation"


def _one_line(value: Any) -> str:
    text = " ".join(str(value).split())
    return text or type(value).__name__


def png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclasses.dataclass
class ActOutcome:
    """What one `act` did, ready for the client (strings already redacted)."""

    data: dict[str, Any]
    image: Image.Image | None


class McpSession:
    """The state behind one `visagent mcp` server: executor, policy, secrets, trace. Thread-safe (one lock:
    tool calls run one at a time, in the order they arrive). Every call to the executor goes through `screen`
    (visagent.screen.seam: closed check, time limit, one worker thread, settling).

    `open_executor(scenario, seed)` builds the executor (for `reset` on the sim it is called again with the new
    scenario). `space`: the coordinate space clients write in ("absolute": screenshot pixels, "norm1000").
    `auto_approve`: run risky actions without asking (`--yes`).
    """

    def __init__(self, settings: Settings, open_executor: Callable[[str | None, int | None], Executor], *,
                 kind: str, space: str = "absolute", scenario: str | None = None, seed: int | None = None,
                 auto_approve: bool = False, meta: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        if space not in SPACES:
            raise ConfigError(f"--space must be one of {', '.join(SPACES)}, got {space!r}")
        self.settings = settings
        self.kind = kind
        self.space = space
        self.auto_approve = auto_approve
        self.policy = SafetyPolicy(settings.safety)
        self._open = open_executor
        self._meta_extra = dict(meta or {})
        self._env = env
        self._secrets: dict[str, str] = {}
        self.vault = SecretVault()
        self._lock = threading.RLock()
        self._scenario_id = scenario
        self._seed = seed
        self.screen = Screen(open_executor(scenario, seed))
        self._scenario_id = scenario or getattr(getattr(self.executor, "world", None), "scenario_id", None)
        self.trace: Any = None
        self.trace_paths: list[str] = []
        self._step = 0
        self._current: Observation | None = None  # the settled screen no action has changed since
        self._ended: str | None = None  # sim: why the episode ended (acts refused until reset)

    # -- helpers --------------------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """The backend behind `screen` (for its world on the sim; drive it through `screen`)."""
        return self.screen.backend

    @property
    def platform(self) -> str:
        return str(self.executor.platform)

    @property
    def is_sim(self) -> bool:
        return self.kind == "sim"

    @property
    def scenario_id(self) -> str | None:
        """The sim scenario the world was built from (None on real screens)."""
        return self._scenario_id if self.is_sim else None

    def redact(self, text: str) -> str:
        return self.vault.redact(text)

    def _scenario(self) -> Any:
        if not self._scenario_id:
            return None
        from visagent.sim.scenarios import get_scenario

        return get_scenario(self._scenario_id)

    def task_text(self) -> str:
        """The sim scenario's task (what a client is meant to do), else ''."""
        scenario = self._scenario()
        world = getattr(self.executor, "world", None)
        return scenario.instruction_for(world) if scenario is not None else ""

    def _trace_meta(self) -> dict[str, Any]:
        geometry = self.screen.geometry()
        executor = {"name": getattr(self.executor, "name", self.kind), "platform": self.platform,
                    "geometry": geometry.to_dict()}
        if self.is_sim and self._scenario_id:
            scenario = self._scenario()
            executor["scenario"] = self._scenario_id
            executor["seed"] = scenario.seed if self._seed is None else self._seed
        executor.update(self._meta_extra)
        task = self.task_text() or _SESSION_TASK
        return {"task": task,
                "model": {"spec": "mcp-client", "model_type": None, "coord_space": self.space,
                          "prompt_profile": None, "provider": "mcp"},
                "executor": executor,
                "settings": {"settle": True, "space": self.space, "auto_approve": self.auto_approve,
                             "safety": dataclasses.asdict(self.settings.safety), "source": "visagent mcp"}}

    def _ensure_trace(self) -> Any:
        if self.trace is None:
            from visagent.core.trace import TraceWriter

            self.trace = TraceWriter(self.settings.trace_dir, self._trace_meta(), redact=self.redact)
            self.trace.append({"type": "run_started", "source": "mcp"})
            self.trace_paths.append(str(self.trace.path))
            self._step = 0
        return self.trace

    def _finish_trace(self, status: str, reason: str, answer: str | None = None) -> str | None:
        """Save final.png and close the current trace; returns its path (None when none was open)."""
        trace, self.trace = self.trace, None
        if trace is None:
            return None
        from visagent.core.trace import FINAL_IMAGE

        try:
            try:
                trace.save_image(FINAL_IMAGE, self.screen.screenshot().image)
            except VisagentError as exc:
                log.warning("final screenshot not captured: %s", _one_line(exc))
                if self._current is not None:
                    trace.save_image(FINAL_IMAGE, self._current.image)
            trace.finish(status, self.redact(reason), self._step, None if answer is None else self.redact(answer))
        except VisagentError as exc:
            log.error("trace %s could not be finished: %s", trace.path, _one_line(exc))
        return str(trace.path)

    def _capture(self) -> Observation:
        """The screen an action is decided on, as the agent loop takes it: the settled screen the last action
        left (the sim: nothing changes without an action, so it is reused), else a fresh settled capture."""
        if self._current is not None and self.is_sim:
            return self._current
        self._current = self.screen.observe()
        return self._current

    def _check_open(self) -> None:
        if self._ended is not None:
            raise ConfigError(f"the sim episode has ended ({self._ended}); call reset to start a fresh world")

    # -- tools ----------------------------------------------------------------------------------------
    def screenshot(self) -> tuple[Image.Image, dict[str, Any]]:
        with self._lock:
            obs = self._capture()
            info = {"executor": self.kind, "platform": self.platform, "space": self.space,
                    "tool": _PLATFORM_TOOL.get(self.platform), "geometry": obs.geometry.to_dict(),
                    "image_size": list(obs.image.size)}
            if self.space == "absolute":
                info["coordinates"] = (f"pixels of this image: x 0..{obs.image.width - 1}, "
                                       f"y 0..{obs.image.height - 1}")
            else:
                info["coordinates"] = "a 0..1000 grid over this image (500, 500 is the centre)"
            if self.is_sim:
                info["scenario"] = self._scenario_id
                info["task"] = self.task_text()
            return obs.image, info

    def parse(self, arguments: dict[str, Any]) -> Action:
        """The client's arguments as an Action in the session's space (ParseError with the loop's message)."""
        from visagent.loop.parsing.arguments import action_from_arguments

        tool = _PLATFORM_TOOL.get(self.platform, "computer_use")
        args = {k: v for k, v in arguments.items() if v is not None}
        return action_from_arguments(tool, args, self.space, platform=self.platform)

    def decide(self, action: Action, thought: str = "") -> tuple[str, str]:
        """The policy's verdict on `action`: ("allow" | "confirm" | "block", reason). `--yes` approves."""
        decision = self.policy.check(action, thought=thought)
        return decision.verdict, decision.reason

    def act(self, arguments: dict[str, Any], *, thought: str = "",
            approval: Callable[[str], tuple[str, str]] | None = None) -> ActOutcome:
        """Validate, convert, check, execute and settle one action; record it as a trace step.

        `approval(reason)` → ("approved" | "denied", reason) is asked for a risky action (not with --yes).
        Raises ParseError / ActionError / ConfigError for bad input (nothing recorded, nothing executed) and
        ExecutorError when the screen cannot be driven.
        """
        from visagent.loop.coords import to_screen
        from visagent.core.trace import step_image_name

        with self._lock:
            self._check_open()
            model_action = self.parse(arguments)
            if model_action.text and secret_names(model_action.text):
                self._add_secrets(model_action.text)
            obs = self._capture()
            screen_action = to_screen(model_action, obs.geometry, image_size=obs.image.size)
            trace = self._ensure_trace()
            self._step += 1
            step = self._step
            record: dict[str, Any] = {
                "type": "step", "step": step, "screenshot": trace.save_image(step_image_name(step), obs.image),
                "geometry": obs.geometry.to_dict(), "prompt": {},
                "model": {"raw": json.dumps(model_action.arguments(), ensure_ascii=False), "thinking": "",
                          "answer": thought, "finish_reason": "mcp", "generated_tokens": 0},
                "attempts": 1, "parse_error": None, "actions": [screen_action.to_dict()],
                "policy": {"decision": None, "reason": ""}, "result": None, "timings": {}, "error": None,
            }
            out: dict[str, Any] = {"step": step, "action": {"model": model_action.to_dict(),
                                                            "screen": screen_action.to_dict()}}
            if screen_action.is_final:  # recorded before the trace is finished with the episode's status
                record["policy"] = {"decision": "allowed", "reason": ""}
                self._record(record)
                return self._end_episode(screen_action, out)
            try:
                return self._act_body(model_action, screen_action, obs, thought, approval, record, out)
            except Exception as exc:  # the executor failed (lost display, dead device): the step says why
                record["error"] = _one_line(exc)
                raise
            finally:
                self._record(record)

    def _act_body(self, model_action: Action, action: Action, obs: Observation, thought: str,
                  approval: Callable[[str], tuple[str, str]] | None, record: dict[str, Any],
                  out: dict[str, Any]) -> ActOutcome:
        if action.action == A.CALL_USER:
            record["policy"] = {"decision": "allowed", "reason": ""}
            out.update(executed=False, message="call_user is for the agent loop's human; over MCP, ask your "
                       "user directly")
            return ActOutcome(self._redacted(out), obs.image)
        verdict, reason = self.decide(action, thought)
        decision = "allowed"
        if verdict == "confirm":
            if self.auto_approve:
                decision, reason = "approved", f"{reason} (approved in advance with --yes)"
            elif approval is None:
                decision, reason = "denied", f"{reason}; no one was available to confirm it"
            else:
                decision, reason = approval(reason)
        elif verdict == "block":
            decision = "blocked"
        record["policy"] = {"decision": decision, "reason": reason}
        out["policy"] = {"decision": decision, "reason": reason}
        if decision in ("denied", "blocked"):
            out.update(executed=False, message=f"The action was not executed ({reason}).")
            return ActOutcome(self._redacted(out), obs.image)
        real = self.vault.for_execution(action)  # the only place a secret's value exists
        result = self.screen.act(real, before=obs)  # executed and settled once
        result = dataclasses.replace(result, message=self.redact(result.message or ""))
        self._current = result.observation  # None after a failed action: the next step captures afresh
        record["result"] = result.to_dict()
        record["timings"] = {"execute": round(result.execute_s, 4), "settle": round(result.settle_s, 4)}
        out.update(executed=True, result=result.to_dict(), changed=result.changed)
        image = self._current.image if self._current is not None else self.screen.screenshot().image
        if self._current is not None:
            out["geometry"] = self._current.geometry.to_dict()
        return ActOutcome(self._redacted(out), image)

    def _end_episode(self, action: Action, out: dict[str, Any]) -> ActOutcome:
        status = "answered" if action.action == A.ANSWER else (action.status or "success")
        reason = action.text or (f"the MCP client terminated with status {status}" if action.action == A.TERMINATE
                                 else "the MCP client answered")
        answer = action.text if action.action == A.ANSWER else None
        check = self._world_check(status)
        path = self._finish_trace(status, reason, answer)
        if check is not None and path is not None:
            from visagent.traces.evaluate import record_verdict

            record_verdict(path, check[0])
        out.update(executed=False, status=status, trace=path)
        if check is not None:
            out["world_check"] = {"goal_met": check[0], "line": check[1]}
        if self.is_sim:
            self._ended = f"{action.action} {status}"
        self._current = None
        return ActOutcome(self._redacted(out), None)

    def _world_check(self, status: str) -> tuple[bool, str] | None:
        scenario = self._scenario()
        world = getattr(self.executor, "world", None)
        if scenario is None or world is None:
            return None
        from visagent.traces.evaluate import world_check

        return world_check(scenario, world, scenario.instruction_for(world), status)

    def _record(self, record: dict[str, Any]) -> None:
        trace = self.trace
        if trace is None:  # the step ended the trace (terminate/answer): it was appended before finishing
            return
        trace.append(self.vault.redact_obj(record))
        trace.update_meta(steps=record["step"])

    def _redacted(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.vault.redact_obj(data)

    def _add_secrets(self, text: str) -> None:
        import os

        env = self._env if self._env is not None else os.environ
        found = resolve_secrets(text, self._secrets, env)
        if found != self._secrets:
            self._secrets = found
            self.vault = SecretVault(found)

    def list_scenarios(self) -> list[dict[str, Any]]:
        from visagent.sim.scenarios import load_scenarios

        return [{"id": s.id, "platform": s.platform, "task": s.instruction_for(None), "max_steps": s.max_steps,
                 "tags": dict(s.tags)} for s in load_scenarios()]

    def reset(self, scenario: str | None = None, seed: int | None = None) -> tuple[Image.Image, dict[str, Any]]:
        """A fresh sim world (this scenario or the current one); ends the current trace as 'stopped'."""
        if not self.is_sim:
            raise ConfigError(f"reset rebuilds the sim world; it does not apply to --executor {self.kind}")
        with self._lock:
            sid = scenario or self._scenario_id
            if sid:
                from visagent.sim.scenarios import get_scenario

                get_scenario(sid)  # an unknown id fails before the old world is touched
            previous = self._finish_trace("stopped", "the MCP client reset the world")
            new = self._open(sid, seed)
            old, self.screen = self.screen, Screen(new)
            old.close()
            self._scenario_id = sid or getattr(getattr(new, "world", None), "scenario_id", None)
            self._seed = seed
            self._current = None
            self._ended = None
        image, info = self.screenshot()
        info["previous_trace"] = previous
        return image, info

    def run_task(self, task: str | None, *, policy: str = "model", max_steps: int | None = None,
                 open_engine: Callable[[Settings], Any] | None = None) -> dict[str, Any]:
        """visagent's own agent on this executor. The sim starts from a fresh world of the scenario (so the
        run's trace replays) and the episode ends with the run. Returns status, reason, steps, answer, trace."""
        from visagent.loop.agent import Agent, AgentConfig

        if policy not in ("model", "oracle"):
            raise ConfigError(f"policy must be 'model' or 'oracle', got {policy!r}")
        with self._lock:
            self._finish_trace("stopped", "the MCP client started run_task")
            if self.is_sim:
                new = self._open(self._scenario_id, self._seed)
                self.screen.close()
                self.screen = Screen(new)
                self._current = None
            scenario = self._scenario()
            world = getattr(self.executor, "world", None)
            if not task:
                if scenario is None:
                    raise ConfigError("run_task needs a task (there is no sim scenario to take it from)")
                task = scenario.instruction_for(world)
            if policy == "oracle":
                if scenario is None or world is None:
                    raise ConfigError("policy 'oracle' needs --executor sim and a scenario")
                if task != scenario.instruction_for(world):
                    raise ConfigError("policy 'oracle' plays the scenario's own solution; leave task empty")
                from visagent.loop.scripted import OracleEngine

                engine = OracleEngine(scenario, lambda: self.executor.world, geometry=self.executor.geometry)
            else:
                if open_engine is None:
                    from visagent.loop.engines import open_engine as _open_engine

                    open_engine = _open_engine
                engine = open_engine(self.settings)
            try:
                overrides: dict[str, Any] = {"auto_approve": self.auto_approve, "human_in_loop": False}
                if max_steps is not None:
                    if max_steps < 1:
                        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
                    overrides["max_steps"] = max_steps
                config = AgentConfig.from_settings(self.settings, **overrides)
                meta: dict[str, Any] = {}
                if scenario is not None:
                    meta = {"scenario": scenario.id, "seed": scenario.seed if self._seed is None else self._seed}
                meta.update(self._meta_extra)
                agent = Agent(engine, self.screen, config, trace_root=self.settings.trace_dir, run_meta=meta)
                result = agent.run(task)
            finally:
                engine.close()
            out: dict[str, Any] = {"status": result.status, "reason": result.reason, "steps": result.steps,
                                   "answer": result.answer,
                                   "trace": str(result.trace_dir) if result.trace_dir else None}
            check = self._world_check(result.status) if scenario is not None else None
            if check is not None and task == scenario.instruction_for(world):
                out["world_check"] = {"goal_met": check[0], "line": check[1]}
                if result.trace_dir is not None:
                    from visagent.traces.evaluate import record_verdict

                    record_verdict(result.trace_dir, check[0])
            if result.trace_dir is not None:
                self.trace_paths.append(str(result.trace_dir))
            if self.is_sim:
                self._ended = f"run_task ended with {result.status}"
            return self._redacted(out)

    def close(self) -> str | None:
        """Finish the open trace ('stopped': the session ended) and close the executor."""
        with self._lock:
            try:
                return self._finish_trace("stopped", "the MCP session ended")
            finally:
                self.screen.close()


# -- the MCP server -----------------------------------------------------------------------------------------

_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


def build_server(session: McpSession) -> Any:
    """An `MCPServer` whose tools drive `session`."""
    from mcp.server.mcpserver import (
        AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve,
    )
    from mcp_types import CallToolResult, ImageContent, TextContent
    from pydantic import BaseModel, Field

    import visagent

    space_doc = ("pixels of the latest screenshot" if session.space == "absolute"
                 else "a 0..1000 grid over the screenshot")
    tool = _PLATFORM_TOOL.get(session.platform, "computer_use")
    vocabulary = ", ".join(A.COMPUTER_ACTIONS if session.platform == "desktop" else A.MOBILE_ACTIONS)
    server = MCPServer(
        "visagent", version=visagent.__version__,
        instructions=(f"Drives a {session.platform} screen ({session.kind}). Take a screenshot, then act with one "
                      f"{tool} action at a time; coordinates are {space_doc}. Risky actions may need the "
                      "user's confirmation; type {{secret:NAME}} to enter a secret without seeing it."),
    )

    class Confirm(BaseModel):
        approve: bool = Field(description="run the risky action")

    def text_block(data: dict[str, Any]) -> Any:
        return TextContent(type="text", text=json.dumps(data, ensure_ascii=False, default=str))

    def image_block(image: Image.Image) -> Any:
        return ImageContent(type="image", data=png_base64(image), mime_type="image/png")

    def error_result(message: str) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)

    def answer(fn: Callable[[], CallToolResult]) -> CallToolResult:
        """`fn()`, or an error result holding the one line the CLI would print (its text exactly, with no
        SDK prefix); the server keeps running either way."""
        try:
            return fn()
        except (VisagentError, ValueError) as exc:
            return error_result(session.redact(_one_line(exc)))
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down; the client gets one line
            log.exception("tool failed")
            return error_result(f"internal error: {type(exc).__name__}: {session.redact(_one_line(exc))}")

    @server.tool(description="The current screen as a PNG image, with its geometry and the coordinate space "
                             "actions use. The sim also names its scenario and task.")
    def screenshot() -> CallToolResult:
        return answer(lambda: shot_result(*session.screenshot()))

    def shot_result(image: Image.Image, info: dict[str, Any]) -> CallToolResult:
        info = session.vault.redact_obj(info)
        return CallToolResult(content=[text_block(info), image_block(image)], structured_content=info)

    def arguments(**kw: Any) -> dict[str, Any]:
        return {k: v for k, v in kw.items() if v is not None}

    async def approval(ctx: Context, action: str, coordinate: Any = None, coordinate2: Any = None,
                       text: Any = None, keys: Any = None, pixels: Any = None, time: Any = None,
                       button: Any = None, status: Any = None, thought: str = "") -> Any:
        """Resolver: whether the client's user must confirm this action, asked through elicitation."""
        try:
            parsed = session.parse(arguments(action=action, coordinate=coordinate, coordinate2=coordinate2,
                                             text=text, keys=keys, pixels=pixels, time=time, button=button,
                                             status=status))
        except (VisagentError, ValueError):
            return "n/a"  # the tool body reports the bad input
        verdict, reason = session.decide(parsed, thought or "")
        if verdict != "confirm" or session.auto_approve:
            return "n/a"
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None:
            return NOT_CONFIRMED
        return Elicit(session.redact(f"Allow the risky action {parsed.summary()}? ({reason})"), Confirm)

    def decision_from(outcome: Any) -> Callable[[str], tuple[str, str]]:
        def decide(reason: str) -> tuple[str, str]:
            if isinstance(outcome, AcceptedElicitation):
                data = outcome.data
                if isinstance(data, Confirm):
                    return ("approved", reason) if data.approve else ("denied", f"{reason}; the user denied it")
                if data == NOT_CONFIRMED:
                    return "denied", f"{reason}; the MCP client cannot ask its user (no elicitation support)"
                return "denied", f"{reason}; no one was asked"
            how = "cancelled" if getattr(outcome, "action", "") == "cancel" else "declined"
            return "denied", f"{reason}; the user {how} it"

        return decide

    def act_result(outcome: ActOutcome) -> CallToolResult:
        content = [text_block(outcome.data)]
        if outcome.image is not None:
            content.append(image_block(outcome.image))
        return CallToolResult(content=content, structured_content=outcome.data)

    def run_act(args: dict[str, Any], thought: str, outcome: Any) -> CallToolResult:
        return answer(lambda: act_result(session.act(args, thought=thought or "",
                                                     approval=decision_from(outcome))))

    point = Field(default=None, description=f"[x, y] in {space_doc}", json_schema_extra=_POINT)

    @server.tool(description=(
        f"Run one {tool} action on the screen, wait for it to settle and return what ran (in your coordinate "
        f"space and in screen pixels), whether the screen changed, and the settled screenshot. Actions: "
        f"{vocabulary}. Coordinates are {space_doc}. Risky actions (per the [safety] policy) need the user's "
        "confirmation. Text may hold {{secret:NAME}}: the server types the secret's value and never returns it."))
    def act(
        action: Annotated[str, Field(description=f"one of: {vocabulary}")],
        approval_outcome: Annotated[ElicitationResult[Confirm], Resolve(approval)],
        coordinate: Annotated[Any, point] = None,
        coordinate2: Annotated[Any, Field(default=None, description="drag/swipe end point [x, y]",
                                          json_schema_extra=_POINT)] = None,
        text: Annotated[Any, Field(default=None, description="text to type / answer / key name (mobile)",
                                   json_schema_extra={"type": "string"})] = None,
        keys: Annotated[Any, Field(default=None, description='key combination, e.g. ["ctrl", "c"]',
                                   json_schema_extra={"type": "array", "items": {"type": "string"}})] = None,
        pixels: Annotated[Any, Field(default=None, description="scroll amount; positive scrolls up/left",
                                     json_schema_extra={"type": "integer"})] = None,
        time: Annotated[Any, Field(default=None, description="seconds (wait, long_press, swipe)",
                                   json_schema_extra={"type": "number"})] = None,
        button: Annotated[Any, Field(default=None, description="system_button: Back, Home, Menu or Enter",
                                     json_schema_extra={"type": "string"})] = None,
        status: Annotated[Any, Field(default=None, description="terminate: success or failure",
                                     json_schema_extra={"type": "string"})] = None,
        thought: Annotated[str, Field(description="why you take this action (checked by the risky-words rule "
                                                  "as a model's thought is)")] = "",
    ) -> CallToolResult:
        args = arguments(action=action, coordinate=coordinate, coordinate2=coordinate2, text=text, keys=keys,
                         pixels=pixels, time=time, button=button, status=status)
        return run_act(args, thought, approval_outcome)

    click_name = "left_click" if session.platform == "desktop" else "click"

    async def click_approval(ctx: Context, x: float, y: float, thought: str = "") -> Any:
        return await approval(ctx, click_name, coordinate=[x, y], thought=thought)

    @server.tool(description=f"Click at (x, y) in {space_doc}; same as act with {click_name}.")
    def click(x: float, y: float,
              approval_outcome: Annotated[ElicitationResult[Confirm], Resolve(click_approval)],
              thought: str = "") -> CallToolResult:
        return run_act({"action": click_name, "coordinate": [x, y]}, thought, approval_outcome)

    async def type_approval(ctx: Context, text: str) -> Any:
        return await approval(ctx, "type", text=text)

    @server.tool(description="Type text into the focused field; {{secret:NAME}} types a secret from the "
                             "server's environment (VISAGENT_SECRET_NAME or NAME) without returning it.")
    def type_text(text: str,
                  approval_outcome: Annotated[ElicitationResult[Confirm], Resolve(type_approval)]) -> CallToolResult:
        return run_act({"action": "type", "text": text}, "", approval_outcome)

    async def key_approval(ctx: Context, keys: list[str]) -> Any:
        if session.platform == "phone":
            return await approval(ctx, "key", text=" ".join(keys))
        return await approval(ctx, "key", keys=keys)

    @server.tool(description='Press a key combination, e.g. ["ctrl", "c"] or ["enter"] (on a phone: one adb '
                             'key name such as ["volume_up"]).')
    def press_keys(keys: list[str],
                   approval_outcome: Annotated[ElicitationResult[Confirm], Resolve(key_approval)]) -> CallToolResult:
        if session.platform == "phone":
            return run_act({"action": "key", "text": " ".join(keys)}, "", approval_outcome)
        return run_act({"action": "key", "keys": keys}, "", approval_outcome)

    async def scroll_approval(ctx: Context, pixels: int, x: float | None = None, y: float | None = None) -> Any:
        return "n/a"  # scrolling is never on the risky list

    @server.tool(description=f"Scroll by `pixels` (positive up, negative down), optionally at (x, y) in "
                             f"{space_doc}. Desktop only; on a phone use act with swipe.")
    def scroll(pixels: int,
               approval_outcome: Annotated[ElicitationResult[Confirm], Resolve(scroll_approval)],
               x: float | None = None, y: float | None = None) -> CallToolResult:
        args: dict[str, Any] = {"action": "scroll", "pixels": pixels}
        if x is not None or y is not None:
            if x is None or y is None:
                return error_result("scroll needs both x and y, or neither")
            args["coordinate"] = [x, y]
        return run_act(args, "", approval_outcome)

    @server.tool(description="The sim's scenarios: id, platform, task, step budget and tags.")
    def list_scenarios() -> CallToolResult:
        def listing() -> CallToolResult:
            data = {"scenarios": session.list_scenarios(), "current": session.scenario_id}
            return CallToolResult(content=[text_block(data)], structured_content=data)

        return answer(listing)

    @server.tool(description="Start a fresh sim world (optionally another scenario or seed); ends the current "
                             "trace. Returns the new screenshot.")
    def reset(scenario: str | None = None, seed: int | None = None) -> CallToolResult:
        return answer(lambda: shot_result(*session.reset(scenario, seed)))

    @server.tool(description="Run visagent's own agent on this screen with the configured model until it ends; "
                             "returns the outcome and its trace path. On the sim it starts from a fresh world of "
                             "the scenario (task defaults to the scenario's); policy 'oracle' plays the sim "
                             "scenario's known solution instead of a model.")
    def run_task(task: str | None = None, policy: str = "model", max_steps: int | None = None) -> CallToolResult:
        def ran() -> CallToolResult:
            data = session.run_task(task, policy=policy, max_steps=max_steps)
            return CallToolResult(content=[text_block(data)], structured_content=data)

        return answer(ran)

    return server
