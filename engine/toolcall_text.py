"""Tool calls that a model wrote as text → structured calls, the way vLLM's `qwen3_coder` / `hermes` parsers do.

Two written forms are recognised (both inside `<tool_call>…</tool_call>`; a bare `<function=…>…</function>`
without the wrapper is accepted too, as Qwen3.5 sometimes drops it):

- Qwen3.5 / Qwen3-Coder XML::

      <tool_call>
      <function=computer_use>
      <parameter=action>
      left_click
      </parameter>
      <parameter=coordinate>
      [500, 300]
      </parameter>
      </function>
      </tool_call>

- Nous / Hermes JSON (Qwen2.5, Qwen3)::

      <tool_call>
      {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500, 300]}}
      </tool_call>

Parameter values are typed by the tool's JSON schema when one is given (strings stay raw, arrays/objects/
numbers/booleans are decoded); without a schema a value is JSON-decoded when it is valid JSON, else kept
as a string. A block that cannot be parsed is left in the content untouched, so nothing the model wrote is
lost. This module is shared by the OpenAI-compatible server and the remote engine (engine imports nothing
from visagent).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
FUNCTION_OPEN = "<function="

_BLOCK_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_BARE_FUNCTION_RE = re.compile(r"<function=[^>\n]+>.*?</function>", re.DOTALL)
_FUNCTION_RE = re.compile(r"^\s*<function=([^>\n]+)>(.*?)(?:</function>\s*)?$", re.DOTALL)
_PARAM_RE = re.compile(r"<parameter=([^>\n]+)>(.*?)(?:</parameter>|(?=<parameter=)|$)", re.DOTALL)


@dataclass(frozen=True)
class ParsedToolCall:
    """One call: the function name and its decoded arguments (a JSON object)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


def parse_tool_calls(text: str, tools: Sequence[dict[str, Any]] | None = None) -> tuple[str, list[ParsedToolCall]]:
    """Find tool calls written in `text`.

    Returns (content, calls): `content` is `text` with every successfully parsed call block removed
    (whitespace at the ends stripped); `calls` are in the order written. Never raises: unparseable blocks
    stay in `content`.
    """
    schemas = _param_schemas(tools)
    calls: list[ParsedToolCall] = []
    pieces: list[str] = []
    pos = 0
    for match in _BLOCK_RE.finditer(text):
        call = _parse_block(match.group(1), schemas)
        if call is None:
            continue
        pieces.append(text[pos:match.start()])
        calls.append(call)
        pos = match.end()
    pieces.append(text[pos:])
    remainder = "".join(pieces)
    if not calls:  # no wrapped calls: accept bare <function=...> blocks
        pieces, pos = [], 0
        for match in _BARE_FUNCTION_RE.finditer(remainder):
            call = _parse_block(match.group(0), schemas)
            if call is None:
                continue
            pieces.append(remainder[pos:match.start()])
            calls.append(call)
            pos = match.end()
        pieces.append(remainder[pos:])
        remainder = "".join(pieces)
    return remainder.strip(), calls


def _parse_block(body: str, schemas: dict[str, dict[str, Any]]) -> ParsedToolCall | None:
    body = body.strip()
    if body.startswith(FUNCTION_OPEN):
        match = _FUNCTION_RE.match(body)
        if match is None:
            return None
        name = match.group(1).strip()
        props = schemas.get(name, {})
        args: dict[str, Any] = {}
        for pmatch in _PARAM_RE.finditer(match.group(2)):
            key = pmatch.group(1).strip()
            args[key] = convert_param_value(_trim_value(pmatch.group(2)), props.get(key))
        return ParsedToolCall(name, args) if name else None
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return None
        args = data.get("arguments", data.get("parameters", {}))
        if isinstance(args, str):  # some models double-encode the arguments
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict):
            return None
        return ParsedToolCall(data["name"], args)
    return None


def _trim_value(value: str) -> str:
    # The template writes "\nVALUE\n" between the tags; only that framing is removed, inner text is kept.
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def convert_param_value(value: str, schema: dict[str, Any] | None) -> Any:
    """Decode one XML parameter value by its JSON-schema type (None: decode JSON when valid, else raw text)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return value
    stripped = value.strip()
    if kind == "integer":
        try:
            return int(stripped)
        except ValueError:
            return value
    if kind == "number":
        try:
            number = float(stripped)
        except ValueError:
            return value
        return int(number) if number.is_integer() and re.fullmatch(r"-?\d+", stripped) else number
    if kind == "boolean":
        lowered = stripped.lower()
        return True if lowered == "true" else False if lowered == "false" else value
    try:
        return json.loads(stripped)
    except (json.JSONDecodeError, ValueError):
        return value


def _param_schemas(tools: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """{function name: {parameter name: parameter schema}} from OpenAI-style tool schemas."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools or ():
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters") or {}
        props = params.get("properties") if isinstance(params, dict) else None
        out[fn["name"]] = props if isinstance(props, dict) else {}
    return out


def render_tool_call_xml(name: str, arguments: dict[str, Any] | str) -> str:
    """Write one call the way Qwen3.5 does (strings raw, everything else as JSON); inverse of the parser."""
    if isinstance(arguments, str):  # undecodable arguments from a server: keep them visible as one value
        arguments = {"arguments": arguments}
    lines = [TOOL_CALL_OPEN, f"<function={name}>"]
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += [f"<parameter={key}>", text, "</parameter>"]
    lines += ["</function>", TOOL_CALL_CLOSE]
    return "\n".join(lines)


class ToolCallStreamFilter:
    """Streams answer text while holding back everything from the first tool-call tag onward.

    `feed(piece)` returns the text that is safe to stream as content now; `finish()` parses what was held
    back and returns (remaining content, calls). A partial tag at the end of a piece is held until the next
    piece decides it.
    """

    _TAGS = (TOOL_CALL_OPEN, FUNCTION_OPEN)

    def __init__(self, tools: Sequence[dict[str, Any]] | None = None) -> None:
        self._tools = tools
        self._pending = ""
        self._held: list[str] = []
        self._holding = False

    def feed(self, piece: str) -> str:
        if self._holding:
            self._held.append(piece)
            return ""
        buf = self._pending + piece
        starts = [i for i in (buf.find(tag) for tag in self._TAGS) if i >= 0]
        if starts:
            cut = min(starts)
            self._holding = True
            self._held.append(buf[cut:])
            self._pending = ""
            return buf[:cut]
        keep = max(_partial_suffix(buf, tag) for tag in self._TAGS)
        self._pending = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep]

    def finish(self) -> tuple[str, list[ParsedToolCall]]:
        held = "".join(self._held) + self._pending
        self._held, self._pending = [], ""
        if not held:
            return "", []
        content, calls = parse_tool_calls(held, self._tools)
        return (content if calls else held), calls


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of buf that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:n]):
            return n
    return 0
