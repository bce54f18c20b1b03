"""Export traces as supervised training records (JSON lines), one per step whose action was acted on
(executed, or a final terminate / answer).

A record holds what a trainer needs to reproduce the agent's call and teach its answer:

- `instruction`: the task; `screenshot`: the step's screenshot path; `history`: one-line summaries of the
  earlier steps (`Step 1: left_click [500, 120] -> ...`);
- `messages`: the exact chat messages the agent sent for this step, rebuilt with
  `visagent.loop.prompting.build_messages` from the trace (images referenced by path: `{"type": "image",
  "image": "<path>"}`; each past assistant turn exactly as the model produced it — its call as text or as
  structured `tool_calls`, never both — with its thinking as `reasoning_content` when the run thought), and
  `tools`: the tool schema passed beside them;
- `target`: the assistant turn to learn, in the model's format (`render_action(action, "qwen35")`: the
  Qwen3.5 XML tool call); `thinking`: the model's recorded thinking at that step ("" when none), for
  trainers that teach a thinking block before the call;
- `action`: the action in model space (`model`, the space chosen with `space`) and in screen space
  (`screen`, logical pixels, what was executed);
- `meta`: run id, step, scenario, seed, split, run status, platform, space.

Paths are relative to `relative_to` (the output file's directory) when given, absolute otherwise.
Only successful runs are exported unless `include_failed` is set: the world's verdict where `visagent eval`
recorded one in meta.json, else the run's status ("success", or "answered").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.api import VisionSpec, smart_resize
from visagent.core.actions import Action
from visagent.loop.coords import from_screen
from visagent.core.errors import ActionError, ConfigError, TraceError, VisagentError
from visagent.screen.base import ScreenGeometry
from visagent.loop.prompting import ModelTurn, StepMemory, build_messages
from visagent.traces.replay import step_actions
from visagent.core.schemas import PROMPT_PROFILES, tool_for
from visagent.core.trace import Trace, read_trace

EXPORT_SPACES: tuple[str, ...] = ("norm1000", "resized")
EXPORT_FORMATS: tuple[str, ...] = ("qwen35",)
#: Run statuses that count as success when no evaluation verdict was recorded (the model's own claim).
SUCCESS_STATUSES = frozenset({"success", "answered"})


def run_succeeded(meta: dict[str, Any]) -> bool:
    """Whether a run reached its goal: the world's verdict when eval recorded one (meta `verdict.success`),
    else the run's own status (terminate success, or an answer)."""
    verdict = meta.get("verdict")
    if isinstance(verdict, dict) and isinstance(verdict.get("success"), bool):
        return verdict["success"]
    return meta.get("status") in SUCCESS_STATUSES


def export_records(
    trace_paths: Iterable[str | Path],
    *,
    space: str = "norm1000",
    fmt: str = "qwen35",
    include_failed: bool = False,
    relative_to: str | Path | None = None,
    vision: VisionSpec | None = None,
    splits: Iterable[str] | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
    profile: str = "full",
    history_images: int | None = None,
    on_damaged: Callable[[Path, VisagentError], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Training records of the given trace directories, in trace order then step order.

    `space`: coordinate space of the target and messages ("norm1000", or "resized": pixels of the image
    smart-resized with `vision`, default Qwen3.5's). `splits`: keep only runs whose scenario split is listed
    (e.g. ("train",)); runs without a scenario are kept. `on_skip(path, why)` hears of each run left out.
    `profile`: the prompt profile of the rebuilt system prompt and tool ("full" or "compact", visagent.core.schemas),
    that of the model to be trained, whatever model recorded the trace. `history_images`: screenshots each prompt
    shows as images (older steps as one-line summaries, visagent.loop.prompting); None: the window the run used (its
    settings), which is what the recording model saw. Every record's meta says the window it was rendered with.
    Raises ConfigError for an unknown space/format or a window below 1, TraceError for a damaged trace (a line
    or field that breaks the format, a missing screenshot, a screenshot outside the trace), naming the trace
    and what is wrong; with `on_damaged(path, error)`, that trace is left out and reported there instead (it
    may raise to stop). A torn last line (a run cut off while writing) is left out, not damage. Each trace's
    records are built whole before the first is yielded, so a trace is exported entirely or not at all.
    """
    if space not in EXPORT_SPACES:
        raise ConfigError(f"export space {space!r} is not supported; use one of: {', '.join(EXPORT_SPACES)}")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format {fmt!r} is not supported; use one of: {', '.join(EXPORT_FORMATS)}")
    if profile not in PROMPT_PROFILES:
        raise ConfigError(f"prompt profile {profile!r} is not supported; use one of: {', '.join(PROMPT_PROFILES)}")
    if history_images is not None and history_images < 1:
        raise ConfigError(f"history images must be at least 1, got {history_images}")
    vision = vision or VisionSpec()
    wanted = None if splits is None else frozenset(splits)
    base = None if relative_to is None else Path(relative_to).resolve()
    for path in trace_paths:
        try:
            trace = read_trace(path)
            if not include_failed and not run_succeeded(trace.meta):
                if on_skip is not None:  # checked before damage: a killed run (torn line, "running") is skipped
                    judged = "the world check failed" if isinstance(trace.meta.get("verdict"), dict) else "no verdict"
                    on_skip(trace.path, f"not successful (run status {trace.status}, {judged})")
                continue
            if trace.damage:
                raise TraceError(f"{trace.path}: {trace.damage[0]}; fix or leave out this trace")
            split = _split_of(trace.meta)
            if wanted is not None and split is not None and split not in wanted:
                if on_skip is not None:
                    on_skip(trace.path, f"split {split}")
                continue
            records = list(_trace_records(trace, space=space, fmt=fmt, base=base, vision=vision, split=split,
                                          profile=profile, history_images=history_images))
        except VisagentError as exc:  # TraceError, or an unknown scenario / an action the space cannot hold
            error = exc if isinstance(exc, TraceError) or str(path) in str(exc) else TraceError(f"{path}: {exc}")
            if on_damaged is None:
                if error is exc:
                    raise
                raise error from None
            on_damaged(Path(path), error)
            continue
        yield from records


def _trace_records(trace: Trace, *, space: str, fmt: str, base: Path | None, vision: VisionSpec,
                   split: str | None, profile: str, history_images: int | None) -> Iterator[dict[str, Any]]:
    from visagent.loop.parsing import render_action

    meta = trace.meta
    executor = meta.get("executor") or {}
    platform = str(executor.get("platform") or "desktop")
    settings = meta.get("settings") or {}
    history_images = history_images or int(settings.get("history_images") or 4)
    append_only = bool(settings.get("append_only", False))
    thinking = bool(settings.get("thinking", False))  # past reasoning went back as reasoning_content
    recorded_space = (meta.get("model") or {}).get("coord_space")
    history: list[StepMemory] = []
    summaries: list[str] = []
    for record in trace.steps:
        geometry = _geometry(record, meta, trace)
        image = _image_ref(trace, record, base)
        resized = (smart_resize(geometry.physical_width, geometry.physical_height, vision)
                   if space == "resized" else None)
        tool_size = resized or (geometry.physical_width, geometry.physical_height)
        screen_actions = step_actions(record, only_executed=False)
        model_actions = [_model_action(a, geometry, space, resized, record) for a in screen_actions]
        feedback = _feedback(record)
        # Acted on: the action passed the policy and did not fail. Final actions (terminate / answer) count:
        # knowing when to stop is part of what a model must learn.
        acted = (bool(step_actions(record)) and (record.get("result") or {}).get("ok", True)
                 and not record.get("error"))
        if acted:
            messages = build_messages(
                str(meta.get("task", "")), list(history), image,  # type: ignore[arg-type] - a path, not a PIL image
                platform=platform, space=space, history_images=history_images, append_only=append_only,
                feedback=feedback, profile=profile, thinking=thinking)
            target = "\n".join(render_action(a, fmt, platform=platform) for a in model_actions)
            yield {
                "id": f"{trace.run_id}:{record['step']}",
                "instruction": meta.get("task", ""),
                "screenshot": image,
                "history": list(summaries),
                "messages": messages,
                "tools": [tool_for(platform, space, *tool_size, profile)],
                "target": target,
                "thinking": str((record.get("model") or {}).get("thinking") or ""),  # for thinking-mode targets
                "action": {
                    "model": [_plain(a) for a in model_actions],
                    "screen": [_plain(a) for a in screen_actions],
                    "space": space,
                },
                "meta": {
                    "run_id": trace.run_id, "step": record["step"], "scenario": executor.get("scenario"),
                    "seed": executor.get("seed"), "split": split, "status": trace.status,
                    "success": run_succeeded(meta), "platform": platform,
                    "space": space, "format": fmt, "prompt_profile": profile, "history_images": history_images,
                    "image_size": [geometry.physical_width, geometry.physical_height],
                    "resized_size": list(resized) if resized else None,
                    "model": (meta.get("model") or {}).get("spec"),
                    **_target_box(record, model_actions, geometry),
                },
            }
        if not record.get("actions"):
            continue  # the answer never parsed (or the user took over first): later prompts do not show it
        memory = StepMemory(step=int(record["step"]), image=image,  # type: ignore[arg-type]
                            turn=_turn(record, model_actions, fmt, platform, space == recorded_space),
                            actions=model_actions, result=_result_text(record, trace), note=feedback or "")
        history.append(memory)
        summaries.append(memory.summary())


def _target_box(record: dict[str, Any], actions: list[Action], geometry: ScreenGeometry) -> dict[str, Any]:
    """{"bbox": the element the step's one-point action landed on, in screenshot pixels, "target_label"} when
    the executor recorded it (the sim does: ExecResult.target), else {}. The pointer loss
    (visagent.training.pointer) supervises the pointing head with it on agent steps too."""
    from visagent.core.actions import HEAD_ACTIONS
    from visagent.traces.report import screen_point_to_image

    target = (record.get("result") or {}).get("target")
    if not target or len(actions) != 1 or actions[0].action not in HEAD_ACTIONS:
        return {}
    x1, y1, x2, y2 = target["bbox"]
    corners = screen_point_to_image((x1, y1), geometry.to_dict()) + screen_point_to_image((x2, y2), geometry.to_dict())
    return {"bbox": list(corners), "target_label": target.get("label")}


def _model_action(action: Action, geometry: ScreenGeometry, space: str, resized: tuple[int, int] | None,
                  record: dict[str, Any]) -> Action:
    """The action as a model answering in `space` writes it (the model's own point when the space matches)."""
    mapping = action.mapping
    if mapping is not None and mapping.space == space and (space != "resized" or mapping.resized_size == resized):
        return action.with_(coordinate=mapping.model, coordinate2=mapping.model2, space=space, mapping=None)
    try:
        return from_screen(action.with_(mapping=None), geometry, space=space, resized_size=resized).with_(mapping=None)
    except ActionError as exc:
        raise TraceError(f"step {record.get('step')}: cannot express {action.summary()} "
                         f"in {space} space ({exc})") from None


def _turn(record: dict[str, Any], model_actions: list[Action], fmt: str, platform: str, same_space: bool) -> ModelTurn:
    """The assistant turn the agent replayed in later prompts: the recorded turn when the coordinate space is the
    one recorded (content, thinking and structured calls as the model produced them, visagent.loop.prompting.ModelTurn),
    else the actions re-rendered as text in the export space (no thinking: it spoke of the other space's numbers)."""
    from visagent.loop.parsing import render_action

    if same_space:
        return ModelTurn.from_record(record.get("model") or {})
    return ModelTurn("\n".join(render_action(a, fmt, platform=platform) for a in model_actions))


def _result_text(record: dict[str, Any], trace: Trace) -> str:
    """What the agent told the model about this step's result (the tool turn text, `tool_result`)."""
    text = record.get("tool_result")
    if not isinstance(text, str):
        raise TraceError(f"{trace.path}: step {record.get('step')} has no tool_result, so the prompts of later "
                         "steps cannot be rebuilt exactly (trace written before visagent recorded it)")
    return text


def _feedback(record: dict[str, Any]) -> str | None:
    """Text the agent showed beside this step's screenshot (hand-back note, last parse error), if any."""
    note = record.get("feedback")
    return note if isinstance(note, str) and note else None


def _geometry(record: dict[str, Any], meta: dict[str, Any], trace: Trace) -> ScreenGeometry:
    data = record.get("geometry") or (meta.get("executor") or {}).get("geometry")
    if not data:
        raise TraceError(f"{trace.path}: step {record.get('step')} has no geometry; cannot place its coordinates")
    return ScreenGeometry(int(data["width"]), int(data["height"]), int(data["physical_width"]),
                          int(data["physical_height"]), int(data.get("offset_x", 0)), int(data.get("offset_y", 0)),
                          int(data.get("monitor", 1)))


def _image_ref(trace: Trace, record: dict[str, Any], base: Path | None) -> str:
    name = record.get("screenshot") or f"step_{int(record['step']):03d}.png"
    path = trace.file(name).resolve()  # TraceError for a name or a link leading out of the trace
    if not path.is_file():
        raise TraceError(f"{trace.path}: screenshot {name} of step {record['step']} is missing; "
                         "a training record needs its image")
    return str(path) if base is None else os.path.relpath(path, base)


def _plain(action: Action) -> dict[str, Any]:
    data = action.to_dict()
    data.pop("mapping", None)
    return data


def _split_of(meta: dict[str, Any]) -> str | None:
    """The split of the run's scenario: recorded in meta, else looked up by scenario id (None: no scenario)."""
    executor = meta.get("executor") or {}
    if executor.get("split"):
        return str(executor["split"])
    scenario_id = executor.get("scenario")
    if not scenario_id:
        return None
    from visagent.sim.scenarios import get_scenario

    return str(get_scenario(scenario_id).split)
