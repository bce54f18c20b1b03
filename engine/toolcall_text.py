"""Tool calls that a model wrote as text → structured calls: the one parser shared by `visagent serve` (engine)
and the agent (visagent.loop.parsing reaches it through engine.api).

Two written forms are recognised:

- Qwen3.5 / Qwen3-Coder XML (a bare `<function=…>…</function>` without the `<tool_call>` wrapper too)::

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

- Nous / Hermes JSON (Qwen2.5, Qwen3-VL)::

      <tool_call>
      {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500, 300]}}
      </tool_call>

Leniency follows the servers users run (vLLM's and SGLang's `qwen3_coder` parsers): a missing
`</parameter>` (the value ends at the next tag), a missing `</function>` or `</tool_call>` when a later tag
or a complete function shows the model moved on, stray closers, whitespace around names, several calls, and
prose before, between and after. A parameter value is typed by the tool's JSON schema as those servers do
(strings stay raw; numbers, booleans, `null`; arrays and objects as JSON, else as a Python literal such as
`['ctrl', 'c']`, `(512, 300)` or `512, 300`, tuples read as lists); a parameter the schema does not
describe stays a string. What cannot be trusted is refused with a one-line message: a call cut off at the
end of the text (no `</function>` and no `</tool_call>` after it: the output was truncated), text inside a
function that is not a parameter, a malformed tag or name, a JSON body that does not decode.

`scan_tool_calls` reports all of it (calls, prose, one problem per refused block); `parse_tool_calls` is the
server's view: it never raises and leaves refused blocks in the content untouched, so nothing is lost. The
scan is linear in the length of the text (each character is looked at a bounded number of times).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
FUNCTION_OPEN = "<function="
FUNCTION_CLOSE = "</function>"

#: Longest function or parameter name looked for after `<function=` / `<parameter=` (keeps the scan linear).
MAX_NAME_CHARS = 200
#: Longest value read as a Python literal when it is not JSON (a GUI argument is a few dozen characters).
MAX_LITERAL_CHARS = 65536

# Every tag the scan stops at. Parameter tags allow whitespace inside as vLLM's parser does; a closer the
# model let drift ("</parameter1>", a bare "</parameter") still closes, as SGLang's detector does.
_TAG = re.compile(r"<tool_call>|</tool_call>|<function=|</function>|<\s*parameter\s*=|<\s*/\s*parameter\w*\s*>?")
_BLOCK_EDGE = re.compile(r"<tool_call>|</tool_call>")
_BARE_EDGE = re.compile(r"</function>|<tool_call>|<function=")
_NAME_END = re.compile(r"([^<>\n]{0,%d})>" % MAX_NAME_CHARS)
_NAME_RUN = re.compile(r"[^<>\n]{0,%d}" % MAX_NAME_CHARS)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_WS = re.compile(r"\s*")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

_OPEN, _CLOSE, _FUNC, _FUNC_END, _PARAM, _PARAM_END = "open", "close", "func", "func_end", "param", "param_end"
_KINDS = {TOOL_CALL_OPEN: _OPEN, TOOL_CALL_CLOSE: _CLOSE, FUNCTION_OPEN: _FUNC, FUNCTION_CLOSE: _FUNC_END}

_TRUNCATED_BLOCK = "truncated tool call: <tool_call> is not closed by </tool_call>"
_TRUNCATED_BARE = "truncated tool call: <function=...> is not closed by </function>"


@dataclass(frozen=True)
class ParsedToolCall:
    """One call: the function name and its decoded arguments (a JSON object). `format` says how it was
    written ("qwen35": XML, "nous": JSON); it takes no part in equality."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    format: str = field(default="qwen35", compare=False)


@dataclass
class ToolCallScan:
    """Everything `scan_tool_calls` found: `calls` in the order written; `content`, the text outside them
    (refused blocks kept verbatim, stray `</tool_call>` dropped, ends stripped); `problems`, one line per
    refused block, in order; `stray_closers`, how many `</tool_call>` had no opener."""

    content: str
    calls: list[ParsedToolCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stray_closers: int = 0


class _Refused(Exception):
    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.message, self.at = message, at


def scan_tool_calls(text: str, tools: Sequence[dict[str, Any]] | None = None) -> ToolCallScan:
    """Find every tool call written in `text`, typing XML parameter values by `tools` (OpenAI-style tool
    schemas; None: values stay strings). Never raises."""
    return _Scanner(text, _param_schemas(tools)).run()


def parse_tool_calls(text: str, tools: Sequence[dict[str, Any]] | None = None) -> tuple[str, list[ParsedToolCall]]:
    """(content, calls), as an OpenAI-compatible server returns them: never raises; a block that cannot be
    parsed stays in `content` untouched."""
    scan = scan_tool_calls(text, tools)
    return scan.content, scan.calls


class _Scanner:
    def __init__(self, text: str, schemas: dict[str, dict[str, Any]]) -> None:
        self.text, self.n, self.schemas = text, len(text), schemas
        self.prose: list[str] = []
        self.calls: list[ParsedToolCall] = []
        self.problems: list[str] = []
        self.stray = 0

    def run(self) -> ToolCallScan:
        text, pos, prose_from = self.text, 0, 0
        while True:
            m = _TAG.search(text, pos)
            if m is None:
                self.prose.append(text[prose_from:])
                break
            kind = _kind(m)
            if kind in (_OPEN, _FUNC, _CLOSE):
                self.prose.append(text[prose_from:m.start()])
            if kind == _OPEN:
                pos = prose_from = self._block(m.start(), m.end())
            elif kind == _FUNC:
                pos = prose_from = self._bare(m.start(), m.end())
            elif kind == _CLOSE:  # a closer without its opener: dropped, like the servers do
                self.stray += 1
                pos = prose_from = m.end()
            else:  # </function> or a parameter tag in prose: it stays prose
                pos = m.end()
        return ToolCallScan("".join(self.prose).strip(), self.calls, self.problems, self.stray)

    # -- blocks ------------------------------------------------------------------------------------------

    def _block(self, start: int, body: int) -> int:
        """A `<tool_call>` block from `start`; returns where the text after it begins."""
        text = self.text
        i = _skip_ws(text, body)
        while text.startswith(TOOL_CALL_OPEN, i):  # a repeated opener
            i = _skip_ws(text, i + len(TOOL_CALL_OPEN))
        calls: list[ParsedToolCall] = []
        try:
            if i >= self.n:
                raise _Refused(_TRUNCATED_BLOCK, i)
            if text.startswith("{", i):
                call, end = self._json(i)
                self.calls.append(call)
                return end
            if not text.startswith(FUNCTION_OPEN, i):
                edge = _BLOCK_EDGE.search(text, i)
                head = text[i:edge.start() if edge else min(self.n, i + 200)].strip()
                raise _Refused(f"tool call must hold <function=NAME>...</function> or a JSON object, got {show_value(head[:40])}", i)
            while True:
                call, pos, ended_by = self._function(i + len(FUNCTION_OPEN), wrapped=True)
                calls.append(call)
                if ended_by == _CLOSE or ended_by == _OPEN:
                    break
                if ended_by == _FUNC:
                    i = pos
                    continue
                # after </function>: stray closers, then </tool_call>, another function, or the block ends
                j = _skip_ws(text, pos)
                while True:
                    t = _TAG.match(text, j)
                    kind = _kind(t) if t else None
                    if kind in (_PARAM_END, _FUNC_END):
                        j = _skip_ws(text, t.end())
                        continue
                    break
                if kind == _CLOSE:
                    pos = t.end()
                    break
                if kind == _FUNC:
                    i = j
                    continue
                pos = j if kind == _OPEN or j >= self.n else pos  # closer missing; what follows is prose
                break
            self.calls.extend(calls)
            return pos
        except _Refused as refused:
            edge = _BLOCK_EDGE.search(self.text, max(refused.at, body))
            end = self.n if edge is None else edge.end() if _kind(edge) == _CLOSE else edge.start()
            return self._refuse(start, end, refused.message)

    def _bare(self, start: int, name_start: int) -> int:
        """A `<function=…>` written without the `<tool_call>` wrapper."""
        try:
            call, pos, _ = self._function(name_start, wrapped=False)
        except _Refused as refused:
            edge = _BARE_EDGE.search(self.text, max(refused.at, name_start))
            end = self.n if edge is None else edge.end() if _kind(edge) == _FUNC_END else edge.start()
            return self._refuse(start, end, refused.message)
        self.calls.append(call)
        return pos

    def _refuse(self, start: int, end: int, message: str) -> int:
        self.problems.append(message)
        self.prose.append(self.text[start:end])
        return end

    # -- one function ------------------------------------------------------------------------------------

    def _function(self, name_start: int, *, wrapped: bool) -> tuple[ParsedToolCall, int, str]:
        """Parse `NAME>` + parameters; returns the call, where scanning resumes and what ended it."""
        text = self.text
        m = _NAME_END.match(text, name_start)
        if m is None:
            raise _Refused(_no_close(text, name_start, "<function="), name_start)
        name = m.group(1).strip()
        if not _NAME.fullmatch(name):
            raise _Refused(f"bad function name {show_value(name)} in <function=...>", name_start)
        props = self.schemas.get(name, {})
        args: dict[str, Any] = {}
        pos = m.end()
        while True:
            t = _TAG.search(text, pos)
            gap_end = self.n if t is None else t.start()
            gap = text[pos:gap_end]
            if gap.strip():
                raise _Refused(f"unexpected text {show_value(gap.strip()[:30])} inside <function={name}>; "
                               "expected <parameter=NAME>VALUE</parameter> or </function>", pos)
            if t is None:
                raise _Refused(_TRUNCATED_BLOCK if wrapped else _TRUNCATED_BARE, self.n)
            kind = _kind(t)
            if kind == _PARAM:
                pos = self._parameter(t.end(), name, props, args, wrapped)
            elif kind == _PARAM_END:  # a stray closer
                pos = t.end()
            elif kind in (_FUNC_END, _CLOSE):
                return ParsedToolCall(name, args), t.end(), kind
            else:  # <tool_call> or <function=: the model moved on without closing this call
                return ParsedToolCall(name, args), t.start(), kind

    def _parameter(self, name_start: int, fn: str, props: dict[str, Any], args: dict[str, Any], wrapped: bool) -> int:
        text = self.text
        m = _NAME_END.match(text, name_start)
        if m is None:
            raise _Refused(_no_close(text, name_start, "<parameter="), name_start)
        name = m.group(1).strip()
        if not _NAME.fullmatch(name):
            raise _Refused(f"bad parameter name {show_value(name)} in <function={fn}>", name_start)
        end = _TAG.search(text, m.end())
        if end is None:
            raise _Refused(_TRUNCATED_BLOCK if wrapped else _TRUNCATED_BARE, self.n)
        args[name] = convert_param_value(_trim_value(text[m.end():end.start()]), props.get(name))
        return end.end() if _kind(end) == _PARAM_END else end.start()

    # -- JSON body ---------------------------------------------------------------------------------------

    def _json(self, i: int) -> tuple[ParsedToolCall, int]:
        edge = _BLOCK_EDGE.search(self.text, i)
        closed = edge is not None and _kind(edge) == _CLOSE
        body = self.text[i:self.n if edge is None else edge.start()].strip()
        if not closed and not body.endswith("}"):
            raise _Refused(_TRUNCATED_BLOCK, i)
        try:
            data = json.loads(body)
        except RecursionError:
            raise _Refused("tool call is nested too deeply to be valid", i) from None
        except ValueError as exc:
            if not closed:
                raise _Refused(_TRUNCATED_BLOCK, i) from None
            msg = getattr(exc, "msg", str(exc))
            raise _Refused(f"tool call is not valid JSON ({msg}): {show_value(body)}", i) from None
        if not isinstance(data, dict):
            raise _Refused(f"tool call must be a JSON object, got {show_value(data)}", i)
        args = data.get("arguments", data.get("parameters"))
        if "name" not in data or args is None:
            raise _Refused('tool call needs "name" and "arguments": {"name": "computer_use", "arguments": {...}}', i)
        if not isinstance(data["name"], str):
            raise _Refused(f"tool call name must be a string, got {show_value(data['name'])}", i)
        if isinstance(args, str):  # the OpenAI wire form, or a double-encoded object
            try:
                args = json.loads(args)
            except RecursionError:
                raise _Refused("tool call arguments are nested too deeply to be valid", i) from None
            except ValueError as exc:
                msg = getattr(exc, "msg", str(exc))
                raise _Refused(f"tool call arguments are not valid JSON ({msg}): {show_value(args)}", i) from None
        if not isinstance(args, dict):
            raise _Refused(f"tool call arguments must be an object like {{\"action\": ...}}, got {show_value(args)}", i)
        end = self.n if edge is None else edge.end() if closed else edge.start()
        return ParsedToolCall(data["name"].strip(), args, "nous"), end


def _kind(m: re.Match[str]) -> str:
    tag = m.group()
    kind = _KINDS.get(tag)
    if kind is not None:
        return kind
    return _PARAM_END if "/" in tag else _PARAM


def _no_close(text: str, at: int, tag: str) -> str:
    run = _NAME_RUN.match(text, at)
    if run.end() == len(text):  # type: ignore[union-attr]
        return f"truncated tool call: {tag} has no closing '>'"
    return f"malformed tool call: {tag}{run.group()[:40]} has no closing '>'"  # type: ignore[union-attr]


def _skip_ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]


def _trim_value(value: str) -> str:
    # The template writes "\nVALUE\n" between the tags; only that framing is removed, inner text is kept.
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def show_value(value: Any, limit: int = 60) -> str:
    """A short repr of a value for a one-line message (long values are cut; a long string before its repr, so the
    cost does not grow with the value)."""
    if isinstance(value, str):
        text = repr(value[: limit * 4])
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = "<unprintable value>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- values --------------------------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "int": "integer", "long": "integer", "short": "integer", "uint": "integer", "float": "number",
    "double": "number", "num": "number", "bool": "boolean", "dict": "object", "list": "array", "arr": "array",
    "str": "string", "text": "string", "enum": "string",
}
_TYPE_ORDER = ("null", "integer", "number", "boolean", "object", "array", "string")
_TYPE_NAMES = frozenset(_TYPE_ORDER)
_COMPOSITE = frozenset({"enum", "anyOf", "oneOf", "allOf"})
_FAIL = object()


def schema_types(schema: Any, _depth: int = 0) -> set[str]:
    """The JSON types a parameter schema allows: `type` (one or a list), types of `enum` values, and
    `anyOf` / `oneOf` / `allOf` branches. A schema that names none allows "string"."""
    types: set[str] = set()
    if not isinstance(schema, dict) or _depth > 8:
        return {"string"} if _depth == 0 else types
    kind = schema.get("type")
    if isinstance(kind, str) and not _COMPOSITE.intersection(schema):  # the common {"type": "..."}
        return {_TYPE_ALIASES.get(kind, kind)} if kind in _TYPE_NAMES else schema_types({**schema, "type": [kind]})
    for k in kind if isinstance(kind, list) else [kind]:
        if isinstance(k, str):
            types.add(_TYPE_ALIASES.get(k.strip().lower(), k.strip().lower()))
    enum = schema.get("enum")
    if isinstance(enum, list):
        for v in enum:
            types.add("null" if v is None else "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int)
                      else "number" if isinstance(v, float) else "string" if isinstance(v, str)
                      else "array" if isinstance(v, list) else "object")
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                types |= schema_types(branch, _depth + 1)
    return types or ({"string"} if _depth == 0 else types)


def convert_param_value(value: str, schema: dict[str, Any] | None) -> Any:
    """Type one XML parameter value by its JSON schema, as vLLM's and SGLang's parsers do: None keeps the
    string. Tried in order null, integer, number, boolean, object, array, string; a value no allowed type
    reads stays the string it was."""
    if schema is None:
        return value
    types = schema_types(schema)
    stripped = value.strip()
    for kind in _TYPE_ORDER:
        if kind not in types:
            continue
        if kind == "string":
            return value
        if kind == "null":
            if stripped.lower() == "null":
                return None
        elif kind == "integer":
            number = _integer(stripped)
            if number is not _FAIL:
                return number
        elif kind == "number":
            number = _number(stripped)
            if number is not _FAIL:
                return number
        elif kind == "boolean":
            lowered = stripped.lower()
            if lowered in ("true", "1", "false", "0"):
                return lowered in ("true", "1")
        else:  # object / array
            decoded = _decode_structured(stripped)
            if decoded is not _FAIL:
                return decoded
    return value


def _decode_structured(text: str) -> Any:
    """JSON, else a Python literal (lists, tuples as lists, dicts with string keys, numbers, strings,
    True/False/None); _FAIL when neither reads or a number is not finite."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = _literal(text)
    return value if value is not _FAIL and _finite(value) else _FAIL


def _literal(text: str) -> Any:
    if not text or len(text) > MAX_LITERAL_CHARS:
        return _FAIL
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _FAIL
    return _plain(value)


def _plain(value: Any) -> Any:
    """A literal as JSON data (tuples → lists), or _FAIL for sets, bytes, complex numbers, non-string keys."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _FAIL if any(v is _FAIL for v in items) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return _FAIL
        out = {k: _plain(v) for k, v in value.items()}
        return _FAIL if any(v is _FAIL for v in out.values()) else out
    return _FAIL


def _finite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return True


def _integer(text: str) -> Any:
    if not _INT.fullmatch(text):
        return _FAIL
    try:
        return int(text)
    except ValueError:  # beyond Python's digit limit
        return _FAIL


def _number(text: str) -> Any:
    number = _integer(text)
    if number is not _FAIL or not _FLOAT.fullmatch(text):
        return number
    try:
        f = float(text)
    except (ValueError, OverflowError):
        return _FAIL
    if not math.isfinite(f):
        return _FAIL
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


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
