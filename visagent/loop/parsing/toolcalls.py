"""Tool calls written inside `<tool_call>…</tool_call>` (Qwen3.5 XML, Nous/Qwen3-VL JSON) or given as
OpenAI structured `tool_calls`. Each yields (format, tool name, arguments); raises `ParseError` only.

Text is read by the engine's parser (engine.api.scan_tool_calls, the one `visagent serve` uses too), with
the agent's argument types, so the agent and a server read the same answer the same way; this module only
turns what that parser refused into a ParseError and checks a forced format.

Qwen3.5 XML (Qwen's chat template writes exactly one newline around each value; strings stay raw, arrays
and numbers are JSON)::

    <tool_call>
    <function=computer_use>
    <parameter=action>
    left_click
    </parameter>
    <parameter=coordinate>
    [512, 300]
    </parameter>
    </function>
    </tool_call>

Nous / Qwen2.5-VL / Qwen3-VL JSON::

    <tool_call>
    {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [512, 300]}}
    </tool_call>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.api import scan_tool_calls
from visagent.core.errors import ParseError
from visagent.loop.parsing.arguments import AGENT_TOOLS, loads_json, show

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


@dataclass(frozen=True)
class RawCall:
    """One tool call before validation: its format ("qwen35" / "nous" / "openai"), tool name, arguments."""

    format: str
    tool: Any
    arguments: Any


def has_tool_call_tags(text: str) -> bool:
    return OPEN in text or CLOSE in text


def find_tool_calls(answer: str, fmt: str) -> tuple[list[RawCall], str]:
    """All tool calls written in `answer` (`<tool_call>` blocks, or bare `<function=…>` blocks as Qwen3.5
    sometimes writes), in order, and the text outside them (stripped).

    `fmt` is "auto", "qwen35" or "nous"; a forced format rejects a call written in the other one.
    Raises ParseError for a call the parser refused (truncated, malformed) and a stray `</tool_call>` when
    no call was found.
    """
    scan = scan_tool_calls(answer, AGENT_TOOLS)
    if scan.problems:
        raise ParseError(scan.problems[0])
    if not scan.calls and scan.stray_closers:
        raise ParseError("found </tool_call> without its opening <tool_call>")
    for call in scan.calls:
        if fmt == "nous" and call.format == "qwen35":
            raise ParseError('expected a JSON tool call <tool_call>{"name": ..., "arguments": {...}}</tool_call>, '
                             "got <function=...>")
        if fmt == "qwen35" and call.format == "nous":
            raise ParseError("expected <function=NAME> with <parameter=NAME> values inside <tool_call>, got JSON")
    return [RawCall(c.format, c.name, c.arguments) for c in scan.calls], scan.content


def openai_calls(tool_calls: Any) -> list[RawCall]:
    """OpenAI-style `tool_calls` ([{"type": "function", "function": {"name", "arguments"}}], arguments as a
    JSON string or an object; a bare {"name", "arguments"} is accepted too) → RawCalls."""
    if not isinstance(tool_calls, (list, tuple)):
        raise ParseError(f"tool_calls must be a list, got {show(tool_calls)}")
    out: list[RawCall] = []
    for item in tool_calls:
        if not isinstance(item, dict):
            raise ParseError(f"each tool call must be an object, got {show(item)}")
        if item.get("type", "function") != "function":
            raise ParseError(f"tool call type must be 'function', got {show(item.get('type'))}")
        fn = item.get("function", item)
        if not isinstance(fn, dict):
            raise ParseError(f"tool call 'function' must be an object, got {show(fn)}")
        out.append(RawCall("openai", fn.get("name"), _arguments(fn.get("arguments"))))
    return out


def _arguments(value: Any) -> Any:
    if isinstance(value, str):  # OpenAI wire form: arguments as a JSON string
        value = loads_json(value, "tool call arguments")
    if not isinstance(value, dict):
        raise ParseError(f"tool call arguments must be an object like {{\"action\": ...}}, got {show(value)}")
    return value
