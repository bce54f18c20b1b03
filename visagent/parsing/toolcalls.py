"""Tool calls written inside `<tool_call>…</tool_call>` (Qwen3.5 XML, Nous/Qwen3-VL JSON) or given as
OpenAI structured `tool_calls`. Each yields (format, tool name, arguments); raises `ParseError` only.

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

import re
from dataclasses import dataclass
from typing import Any

from visagent.errors import ParseError
from visagent.parsing.arguments import decode_xml_value, loads_json, show

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


@dataclass(frozen=True)
class RawCall:
    """One tool call before validation: its format ("qwen35" / "nous" / "openai"), tool name, arguments."""

    format: str
    tool: Any
    arguments: Any


def has_tool_call_tags(text: str) -> bool:
    return OPEN in text or CLOSE in text


def find_tool_calls(answer: str, fmt: str) -> tuple[list[RawCall], str]:
    """All `<tool_call>` blocks of `answer`, in order, and the text outside them (stripped).

    `fmt` is "auto", "qwen35" or "nous"; a forced format rejects a block written in the other one.
    Raises ParseError for truncated or stray tags and malformed bodies.
    """
    calls: list[RawCall] = []
    outside: list[str] = []
    pos = 0
    while True:
        start = answer.find(OPEN, pos)
        before = answer[pos:] if start < 0 else answer[pos:start]
        if CLOSE in before:
            raise ParseError("found </tool_call> without its opening <tool_call>")
        outside.append(before)
        if start < 0:
            break
        body_start = start + len(OPEN)
        end = answer.find(CLOSE, body_start)
        if end < 0:
            raise ParseError("truncated tool call: <tool_call> is not closed by </tool_call>")
        calls.append(_parse_body(answer[body_start:end], fmt))
        pos = end + len(CLOSE)
    return calls, "".join(outside).strip()


def find_bare_functions(answer: str, fmt: str) -> tuple[list[RawCall], str]:
    """Complete `<function=NAME>…</function>` blocks written without the `<tool_call>` wrapper (Qwen3.5
    sometimes drops it; vLLM's qwen3_coder parser and engine.toolcall_text accept them too).
    Raises ParseError for an unclosed block or when `fmt` is "nous"."""
    if fmt == "nous":
        raise ParseError('expected a JSON tool call <tool_call>{"name": ..., "arguments": {...}}</tool_call>, '
                         "got <function=...>")
    calls: list[RawCall] = []
    outside: list[str] = []
    pos = 0
    while True:
        start = answer.find("<function=", pos)
        if start < 0:
            outside.append(answer[pos:])
            break
        outside.append(answer[pos:start])
        end = answer.find("</function>", start)
        if end < 0:
            raise ParseError("truncated tool call: <function=...> is not closed by </function>")
        end += len("</function>")
        calls.append(_parse_xml(answer[start:end]))
        pos = end
    return calls, "".join(outside).strip()


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


def _parse_body(body: str, fmt: str) -> RawCall:
    head = body.lstrip()
    if head.startswith("<function="):
        if fmt == "nous":
            raise ParseError('expected a JSON tool call {"name": ..., "arguments": {...}}, got <function=...>')
        return _parse_xml(head)
    if head.startswith("{"):
        if fmt == "qwen35":
            raise ParseError("expected <function=NAME> with <parameter=NAME> values inside <tool_call>, got JSON")
        return _parse_json(head)
    raise ParseError(
        f"tool call must hold <function=NAME>...</function> or a JSON object, got {show(head[:40])}"
    )


def _parse_json(body: str) -> RawCall:
    obj = loads_json(body.strip(), "tool call")
    if not isinstance(obj, dict):
        raise ParseError(f"tool call must be a JSON object, got {show(obj)}")
    extra = sorted(set(obj) - {"name", "arguments"})
    if extra:
        raise ParseError(f"tool call has unknown key {show(extra[0])}; expected {{\"name\": ..., \"arguments\": {{...}}}}")
    if "name" not in obj or "arguments" not in obj:
        raise ParseError('tool call needs "name" and "arguments": {"name": "computer_use", "arguments": {...}}')
    return RawCall("nous", obj["name"], _arguments(obj["arguments"]))


def _arguments(value: Any) -> Any:
    if isinstance(value, str):  # OpenAI wire form: arguments as a JSON string
        value = loads_json(value, "tool call arguments")
    if not isinstance(value, dict):
        raise ParseError(f"tool call arguments must be an object like {{\"action\": ...}}, got {show(value)}")
    return value


def _parse_xml(body: str) -> RawCall:
    # body starts with "<function=" and holds everything up to </tool_call>
    i = len("<function=")
    close = body.find(">", i)
    if close < 0:
        raise ParseError("truncated tool call: <function= has no closing '>'")
    tool = body[i:close].strip()
    if not _NAME.match(tool):
        raise ParseError(f"bad function name {show(tool)} in <function=...>")
    i = close + 1
    params: dict[str, Any] = {}
    while True:
        i = _skip_ws(body, i)
        if body.startswith("</function>", i):
            i += len("</function>")
            break
        if body.startswith("<parameter=", i):
            i = _parse_parameter(body, i, tool, params)
            continue
        if i >= len(body):
            raise ParseError(f"truncated tool call: <function={tool}> is not closed by </function>")
        raise ParseError(
            f"unexpected text {show(body[i:i + 30])} inside <function={tool}>; "
            "expected <parameter=NAME>VALUE</parameter> or </function>"
        )
    rest = body[i:].strip()
    if rest:
        raise ParseError(f"unexpected text {show(rest[:30])} between </function> and </tool_call>")
    return RawCall("qwen35", tool, params)


def _parse_parameter(body: str, i: int, tool: str, params: dict[str, Any]) -> int:
    start = i + len("<parameter=")
    close = body.find(">", start)
    if close < 0:
        raise ParseError("truncated tool call: <parameter= has no closing '>'")
    name = body[start:close].strip()
    if not _NAME.match(name):
        raise ParseError(f"bad parameter name {show(name)} in <function={tool}>")
    end = body.find("</parameter>", close + 1)
    if end < 0:
        raise ParseError(f"truncated tool call: <parameter={name}> is not closed by </parameter>")
    raw = body[close + 1:end]
    raw = raw[1:] if raw.startswith("\n") else raw
    raw = raw[:-1] if raw.endswith("\n") else raw
    if name in params:
        raise ParseError(f"parameter {name!r} given twice in <function={tool}>")
    params[name] = decode_xml_value(name, raw)
    return end + len("</parameter>")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i
