"""Actions → model output text (Qwen3.5 XML, Nous JSON, UI-TARS) or an OpenAI-form tool call.

Used to write oracle turns for the scripted test engine, chat history and training data. Whatever is
rendered parses back (`visagent.loop.parsing.parse_output`) to the same action; an action a format cannot
express exactly raises `ActionError` instead of being written approximately.
"""

from __future__ import annotations

import json
from typing import Any

from visagent.core.actions import CLICK, KEY, LONG_PRESS, OPEN, SWIPE, SYSTEM_BUTTON, Action
from visagent.core.errors import ActionError, ConfigError
from visagent.loop.parsing.arguments import TOOL_ACTIONS
from visagent.loop.parsing.uitars import render_uitars
from visagent.core.schemas import COMPUTER_TOOL, MOBILE_TOOL, tool_name_for

RENDER_FORMATS: tuple[str, ...] = ("qwen35", "nous", "uitars")
_MOBILE_ONLY = frozenset({CLICK, LONG_PRESS, SWIPE, SYSTEM_BUTTON, OPEN})
# Strings that would end a block early or be taken for a thinking split when read back.
_FORBIDDEN = {"qwen35": ("</parameter>", "</tool_call>", "<think>", "</think>"),
              "nous": ("</tool_call>", "<think>", "</think>")}


def tool_for_action(action: Action, platform: str | None = None) -> str:
    """The tool that carries `action`: the platform's tool, else mobile_use for phone-only actions
    (and `key` with text), computer_use otherwise. Raises ActionError when the tool lacks the action."""
    if platform is not None:
        tool = tool_name_for(platform)
    elif action.action in _MOBILE_ONLY or (action.action == KEY and action.keys is None):
        tool = MOBILE_TOOL
    else:
        tool = COMPUTER_TOOL
    if action.action not in TOOL_ACTIONS[tool]:
        raise ActionError(f"{tool} has no action {action.action!r}")
    if action.action == KEY and (tool == COMPUTER_TOOL) != (action.keys is not None):
        raise ActionError(f"{tool} writes 'key' with {'keys' if tool == COMPUTER_TOOL else 'text'}")
    return tool


def render_tool_call(action: Action, *, platform: str | None = None) -> dict[str, Any]:
    """`{"type": "function", "function": {"name": tool, "arguments": {...}}}` (arguments as an object, as
    transformers' chat templates take them). Raises ActionError for a "screen"-space action."""
    _check_model_space(action)
    return {"type": "function",
            "function": {"name": tool_for_action(action, platform), "arguments": action.arguments()}}


def render_action(action: Action, fmt: str, *, platform: str | None = None) -> str:
    """The text a model writes for `action` in `fmt` ("qwen35", "nous" or "uitars"), coordinates as they
    are (the action must be in a model space; see `visagent.loop.coords.from_screen`).

    Raises ActionError when the format cannot express the action exactly, ConfigError for an unknown fmt.
    """
    if fmt not in RENDER_FORMATS:
        raise ConfigError(f"cannot render format {fmt!r}; expected one of: {', '.join(RENDER_FORMATS)}")
    _check_model_space(action)
    if fmt == "uitars":
        return render_uitars(action)
    tool = tool_for_action(action, platform)
    args = action.arguments()
    if fmt == "nous":
        text = "<tool_call>\n" + json.dumps({"name": tool, "arguments": args}, ensure_ascii=False) + "\n</tool_call>"
        _check_forbidden(action, fmt, [text[len("<tool_call>"):-len("</tool_call>")]])
        return text
    _check_forbidden(action, fmt, [v for v in args.values() if isinstance(v, str)])
    lines = ["<tool_call>", f"<function={tool}>"]
    for key, value in args.items():
        lines += [f"<parameter={key}>", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
                  "</parameter>"]
    lines += ["</function>", "</tool_call>"]
    return "\n".join(lines)


def _check_model_space(action: Action) -> None:
    if action.space == "screen":
        raise ActionError("render a model-space action, not a 'screen' one; convert it with "
                          "visagent.loop.coords.from_screen first")


def _check_forbidden(action: Action, fmt: str, values: list[str]) -> None:
    for value in values:
        for bad in _FORBIDDEN[fmt]:
            if bad in value:
                raise ActionError(f"{fmt} cannot carry {bad!r} inside a value ({action.summary()!r})")
