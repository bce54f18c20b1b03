"""Tool-call arguments (as a model wrote them) → a validated `Action`, with errors a model can act on.

Shared by every tool-call format (Qwen3.5 XML, Nous JSON, OpenAI `tool_calls`): each one produces a tool
name and an arguments mapping; this module checks names and types strictly (nothing is guessed or clamped)
and builds the `Action` in the model's coordinate space. Raises `ParseError` only.
"""

from __future__ import annotations

import json
from typing import Any

from engine.api import convert_param_value, show_value
from visagent.core.actions import ARGUMENTS, COMPUTER_ACTIONS, KEY, MOBILE_ACTIONS, Action
from visagent.core.errors import ActionError, ParseError
from visagent.core.schemas import COMPUTER_TOOL, MOBILE_TOOL

TOOL_ACTIONS: dict[str, tuple[str, ...]] = {COMPUTER_TOOL: COMPUTER_ACTIONS, MOBILE_TOOL: MOBILE_ACTIONS}
TOOL_PLATFORM: dict[str, str] = {COMPUTER_TOOL: "desktop", MOBILE_TOOL: "phone"}

#: How each argument is written: JSON arrays, numbers, free text, or short enum strings.
ARG_KINDS: dict[str, str] = {
    "action": "name", "coordinate": "point", "coordinate2": "point", "keys": "keys", "text": "text",
    "pixels": "number", "time": "number", "button": "name", "status": "name",
}
_EXAMPLES = {"point": "[512, 300]", "keys": '["ctrl", "c"]', "number": "5"}
#: The JSON type of each kind, as the engine's tool-call parser types values (engine.api.convert_param_value):
#: a string written for an array or a number is read as JSON or a Python literal, e.g. (512, 300) or 512, 300.
_KIND_SCHEMA: dict[str, dict[str, Any]] = {
    "point": {"type": ["array", "null"]}, "keys": {"type": ["array", "null"]},
    "number": {"type": ["number", "null"]}, "text": {"type": "string"}, "name": {"type": "string"},
}
#: computer_use and mobile_use as the tool-call parser needs them: only the parameter types.
AGENT_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": tool, "parameters": {
        "type": "object", "properties": {key: _KIND_SCHEMA[kind] for key, kind in ARG_KINDS.items()}}}}
    for tool in (COMPUTER_TOOL, MOBILE_TOOL)
]


show = show_value  # one short-repr rule for the parser's messages, engine's and the agent's


def loads_json(raw: str, what: str) -> Any:
    """json.loads that raises ParseError (bad JSON, absurd nesting, too many digits)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply to be valid") from None
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        raise ParseError(f"{what} is not valid JSON ({msg}): {show(raw)}") from None


def action_from_arguments(
    tool: Any, arguments: Any, space: str, *, platform: str | None = None
) -> Action:
    """Build the Action a `computer_use` / `mobile_use` call describes, coordinates in `space`.

    `platform` ("desktop" / "phone"), when given, rejects a call to the other platform's tool.
    Raises ParseError naming the bad tool, action, argument or value.
    """
    if isinstance(tool, str):  # servers pass names through as written: "computer_use " is computer_use
        tool = tool.strip()
    if not isinstance(tool, str) or tool not in TOOL_ACTIONS:
        raise ParseError(f"unknown tool {show(tool)}; expected {COMPUTER_TOOL} or {MOBILE_TOOL}")
    if platform is not None and TOOL_PLATFORM[tool] != platform:
        wanted = COMPUTER_TOOL if platform == "desktop" else MOBILE_TOOL
        raise ParseError(f"this screen is a {platform}: call {wanted}, not {tool}")
    if not isinstance(arguments, dict):
        raise ParseError(f"{tool} arguments must be an object like {{\"action\": ...}}, got {show(arguments)}")
    # Whitespace around argument names and enum values is the model's slip, not its meaning: vLLM keeps
    # "<parameter=action >" as the key "action ", and "left_click " as the value.
    arguments = {k.strip() if isinstance(k, str) else k: v for k, v in arguments.items()}
    allowed = TOOL_ACTIONS[tool]
    name = arguments.get("action")
    if isinstance(name, str):
        name = name.strip()
    if name is None:
        raise ParseError(f"{tool} call has no 'action' argument; expected one of: {', '.join(allowed)}")
    if not isinstance(name, str) or name not in allowed:
        raise ParseError(f"unknown action {show(name)}; expected one of: {', '.join(allowed)}")
    unknown = [k for k in arguments if k != "action" and k not in ARGUMENTS]
    if unknown:
        raise ParseError(
            f"action {name!r}: unknown argument {show(unknown[0])}; expected: {', '.join(ARGUMENTS)}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in arguments.items():
        if key == "action":
            continue
        value = _decoded(key, value)
        if value is None:
            continue
        kwargs[key] = _checked(name, key, value)
    if name == KEY and tool == COMPUTER_TOOL and "keys" not in kwargs:
        raise ParseError("action 'key' requires keys, a list like [\"ctrl\", \"c\"]")
    if name == KEY and tool == MOBILE_TOOL and "text" not in kwargs:
        raise ParseError("action 'key' requires text, an adb keyevent name like \"volume_up\"")
    try:
        return Action(action=name, space=space, **kwargs)
    except ActionError as exc:
        raise ParseError(str(exc)) from None


def _decoded(key: str, value: Any) -> Any:
    """A value given as a string where an array or a number belongs, read the way the servers' tool-call
    parsers read it (JSON, else a Python literal: "(512, 300)", "512, 300", "['ctrl', 'c']"); enum names
    lose surrounding whitespace. A string that does not read is returned as it is (and refused by type)."""
    kind = ARG_KINDS[key]
    if not isinstance(value, str):
        return value
    if kind == "name":
        return value.strip()
    if kind in _EXAMPLES:
        return convert_param_value(value, _KIND_SCHEMA[kind])
    return value


def _checked(action: str, key: str, value: Any) -> Any:
    kind = ARG_KINDS[key]
    if kind == "point":
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value):
            raise ParseError(f"action {action!r}: {key} must be [x, y] with two numbers, got {show(value)}")
        return (value[0], value[1])
    if kind == "keys":
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(k, str) for k in value):
            raise ParseError(f"action {action!r}: keys must be a list of key names like [\"ctrl\", \"c\"], "
                             f"got {show(value)}")
        return tuple(value)
    if kind == "number":
        if not _is_number(value):
            raise ParseError(f"action {action!r}: {key} must be a number, got {show(value)}")
        return value
    if not isinstance(value, str):
        raise ParseError(f"action {action!r}: {key} must be a string, got {show(value)}")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
