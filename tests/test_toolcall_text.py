"""Tool calls written as text (Qwen3.5 XML, Nous JSON) → structured calls, and the streaming hold-back."""

from __future__ import annotations

import pytest

from engine.toolcall_text import ParsedToolCall, ToolCallStreamFilter, parse_tool_calls, render_tool_call_xml

TOOLS = [{"type": "function", "function": {"name": "computer_use", "parameters": {"type": "object", "properties": {
    "action": {"type": "string"}, "coordinate": {"type": "array"}, "text": {"type": "string"},
    "time": {"type": "number"}, "pixels": {"type": "integer"}, "clear": {"type": "boolean"}}}}}]

XML = ("I will type.\n<tool_call>\n<function=computer_use>\n<parameter=action>\ntype\n</parameter>\n"
       "<parameter=text>\n123\n</parameter>\n<parameter=coordinate>\n[500, 300]\n</parameter>\n"
       "<parameter=time>\n1.5\n</parameter>\n<parameter=pixels>\n-3\n</parameter>\n<parameter=clear>\ntrue\n"
       "</parameter>\n</function>\n</tool_call>")


def test_qwen_xml_call_is_typed_by_the_tool_schema():
    content, calls = parse_tool_calls(XML, TOOLS)
    assert content == "I will type."
    assert calls == [ParsedToolCall("computer_use", {"action": "type", "text": "123", "coordinate": [500, 300],
                                                     "time": 1.5, "pixels": -3, "clear": True})]


def test_without_a_schema_values_stay_strings_as_the_servers_keep_them():
    # vLLM's and SGLang's qwen3_coder parsers type a value only by the tool's schema; one it does not
    # describe stays the string written.
    _, calls = parse_tool_calls(XML)
    assert calls[0].arguments["text"] == "123"
    assert calls[0].arguments["coordinate"] == "[500, 300]"
    _, calls = parse_tool_calls(XML, [{"type": "function", "function": {"name": "computer_use"}}])
    assert calls[0].arguments["time"] == "1.5"


def test_multiline_string_values_keep_inner_newlines():
    text = "<tool_call>\n<function=computer_use>\n<parameter=text>\nline one\nline two\n</parameter>\n</function>\n</tool_call>"
    _, calls = parse_tool_calls(text, TOOLS)
    assert calls[0].arguments == {"text": "line one\nline two"}


def test_nous_json_calls_and_several_calls_in_order():
    text = ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "key", "keys": ["ctrl", "c"]}}\n</tool_call>\n'
            '<tool_call>\n{"name": "computer_use", "arguments": "{\\"action\\": \\"wait\\"}"}\n</tool_call>')
    content, calls = parse_tool_calls(text, TOOLS)
    assert content == ""
    assert [c.arguments for c in calls] == [{"action": "key", "keys": ["ctrl", "c"]}, {"action": "wait"}]


def test_bare_function_block_without_tool_call_wrapper():
    content, calls = parse_tool_calls("ok <function=computer_use>\n<parameter=action>\nwait\n</parameter>\n</function>", TOOLS)
    assert content == "ok"
    assert calls == [ParsedToolCall("computer_use", {"action": "wait"})]


@pytest.mark.parametrize("text", [
    "no calls at all",
    "<tool_call>\n{not json}\n</tool_call>",
    "<tool_call>\nplain words\n</tool_call>",
    "<tool_call>\n<function=computer_use>\n<parameter=action>\nwait",  # cut off: no closing tags
])
def test_unparseable_or_absent_calls_leave_the_text_untouched(text):
    content, calls = parse_tool_calls(text, TOOLS)
    assert calls == []
    assert content == text.strip()


def test_render_is_the_inverse_of_parse():
    args = {"action": "left_click", "coordinate": [12, 34], "text": "a b"}
    _, calls = parse_tool_calls(render_tool_call_xml("computer_use", args), TOOLS)
    assert calls == [ParsedToolCall("computer_use", args)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_stream_filter_streams_prose_and_holds_back_calls_split_anywhere(size):
    flt = ToolCallStreamFilter(TOOLS)
    pieces = [XML[i:i + size] for i in range(0, len(XML), size)]
    streamed = "".join(flt.feed(p) for p in pieces)
    rest, calls = flt.finish()
    assert streamed == "I will type.\n"
    assert "<" not in streamed
    assert rest == ""
    assert calls == parse_tool_calls(XML, TOOLS)[1]


def test_stream_filter_returns_held_text_when_it_was_no_call():
    flt = ToolCallStreamFilter(TOOLS)
    streamed = flt.feed("a <tool") + flt.feed("_call> broken")
    rest, calls = flt.finish()
    assert calls == []
    assert streamed + rest == "a <tool_call> broken"
    flt = ToolCallStreamFilter(TOOLS)
    assert flt.feed("x <tool") == "x "
    assert flt.feed("box>") == "<toolbox>"  # a partial tag that turned out to be prose is released
