"""The tool-call case table: what the servers users run do with Qwen3.5 / Qwen3-Coder XML calls, as data.

PUBLIC_CASES restate, as text in and calls out, the cases of the real servers' own parser tests (facts, not
their code): vLLM's tests/tool_parsers/test_qwen3coder_tool_parser.py (`v_*`) and SGLang's
test/registered/function_call/test_qwen3_coder_detector.py, its malformed-parameter-end test and the
Qwen3-Coder part of test/srt/test_function_call_parser.py (`s_*`). Each is
(id, text, tools, calls, content): `calls` is [(name, arguments)] as the server returns them, None when the
text holds no call a GUI agent may run (see REFUSED_BY_DESIGN); `content` is the prose left, or ... when the
servers' own tests do not pin it.

GUI_CASES are Qwen3.5 answers to the computer_use / mobile_use tools as models write them, correct and
sloppy: (id, text, platform, actions), `actions` the Action fields each call must become.
GUI_REFUSED are answers that cannot be run safely: (id, text, the one-line error's key words).
"""

from __future__ import annotations

from typing import Any

WEATHER = {"type": "object", "properties": {
    "city": {"type": "string"}, "state": {"type": "string"}, "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
    "location": {"type": "string"}, "days": {"type": "integer"}}}
AREA = {"type": "object", "properties": {
    "shape": {"type": "string"}, "dimensions": {"type": "object"}, "precision": {"type": "integer"}}}
SQL = {"type": "object", "properties": {"query": {"type": "string"}, "dry_run": {"type": "boolean"}}}
TODO = {"type": "object", "properties": {"todos": {"type": "array", "items": {"type": "object"}}}}
TIME = {"type": "object", "properties": {"cities": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                             {"type": "null"}], "default": None}}}
TYPES = {"type": "object", "properties": {
    "int_param": {"type": "integer"}, "float_param": {"type": "float"}, "bool_param": {"type": "boolean"},
    "str_param": {"type": "string"}, "obj_param": {"type": "object"}}}
ANYOF = {"type": "object", "properties": {
    "anyof_int": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 5},
    "anyof_str": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "anyof_array": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
    "anyof_obj": {"anyOf": [{"type": "object"}, {"type": "null"}]},
    "type_as_array": {"type": ["integer", "null"]},
    "multi_non_null": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}}}
RECORD = {"type": "object", "properties": {"data": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}
GREET = {"type": "object", "properties": {"message": {"type": "string"}}}
NESTED = {"type": "object", "properties": {"optional_items_to_process": {"anyOf": [
    {"anyOf": [{"type": "null"}, {"anyOf": [{"type": "array", "items": {}}, {"type": "null"}]}]}, {"type": "null"}],
    "default": None}}}


def tool(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": params}}


TOOLS = [tool("get_current_weather", WEATHER), tool("calculate_area", AREA), tool("sql_interpreter", SQL),
         tool("TodoWrite", TODO), tool("get_current_time", TIME), tool("test_types", TYPES),
         tool("test_anyof", ANYOF), tool("update_record", RECORD), tool("greet", GREET),
         tool("process_optional_list", NESTED)]


def _xml(name: str, *params: tuple[str, str], nl: bool = True) -> str:
    sep = "\n" if nl else ""
    body = "".join(f"<parameter={k}>{sep}{v}{sep}</parameter>\n" for k, v in params)
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


DALLAS = _xml("get_current_weather", ("city", "Dallas"), ("state", "TX"), ("unit", "fahrenheit"))
DALLAS_ARGS = {"city": "Dallas", "state": "TX", "unit": "fahrenheit"}
CIRCLE = _xml("calculate_area", ("shape", "circle"), ("dimensions", '{"radius": 15.5}'), ("precision", "3"))
WEATHER_NY = "<tool_call>\n<function=get_current_weather>\n<parameter=location>New York</parameter>\n</function>\n</tool_call>"


def _shanghai(city_block: str) -> str:
    return ("<tool_call>\n<function=get_current_weather>\n"
            f"<parameter=city>\n{city_block}\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>")


PUBLIC_CASES: list[tuple[str, str, list, list | None, Any]] = [
    ("v_no_tools", "This is a test response without any tool calls", TOOLS, [],
     "This is a test response without any tool calls"),
    ("v_single_tool", DALLAS, TOOLS, [("get_current_weather", DALLAS_ARGS)], ""),
    ("v_single_tool_with_content", "Sure! Let me check the weather for you." + DALLAS, TOOLS,
     [("get_current_weather", DALLAS_ARGS)], "Sure! Let me check the weather for you."),
    ("v_multiline_param",
     _xml("calculate_area", ("shape", "rectangle"), ("dimensions", '{"width": 10, \n "height": 20}'), ("precision", "2")),
     TOOLS, [("calculate_area", {"shape": "rectangle", "dimensions": {"width": 10, "height": 20}, "precision": 2})], ""),
    ("v_parallel_tools",
     DALLAS + "\n" + _xml("get_current_weather", ("city", "Orlando"), ("state", "FL"), ("unit", "celsius")), TOOLS,
     [("get_current_weather", DALLAS_ARGS), ("get_current_weather", {"city": "Orlando", "state": "FL", "unit": "celsius"})],
     ""),
    ("v_typed_params", "Let me calculate that area for you." + CIRCLE, TOOLS,
     [("calculate_area", {"shape": "circle", "dimensions": {"radius": 15.5}, "precision": 3})],
     "Let me calculate that area for you."),
    ("v_fallback_no_tags",
     "<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n<parameter=state>\nTX\n</parameter>\n</function>",
     TOOLS, [("get_current_weather", {"city": "Dallas", "state": "TX"})], ""),
    ("v_type_conversion",
     _xml("test_types", ("int_param", "42"), ("float_param", "3.14"), ("bool_param", "true"),
          ("str_param", "hello world"), ("obj_param", '{"key": "value"}')), TOOLS,
     [("test_types", {"int_param": 42, "float_param": 3.14, "bool_param": True, "str_param": "hello world",
                      "obj_param": {"key": "value"}})], ""),
    ("v_anyof_type_conversion",
     _xml("test_anyof", ("anyof_int", "5"), ("anyof_str", "hello"), ("anyof_array", '["a", "b", "c"]'),
          ("anyof_obj", '{"key": "value"}'), ("type_as_array", "42"), ("multi_non_null", "some text")), TOOLS,
     [("test_anyof", {"anyof_int": 5, "anyof_str": "hello", "anyof_array": ["a", "b", "c"], "anyof_obj": {"key": "value"},
                      "type_as_array": 42, "multi_non_null": "some text"})], ""),
    ("v_missing_closing_parameter_tag",
     "Let me check the weather for you:\n<tool_call>\n<function=get_current_weather>\n<parameter=city>\nDallas\n"
     "<parameter=state>\nTX\n</parameter>\n<parameter=unit>\nfahrenheit\n</parameter>\n</function>\n</tool_call>",
     TOOLS, [("get_current_weather", DALLAS_ARGS)], "Let me check the weather for you:"),
    ("v_missing_opening_tag",
     "I'll check the weather for you.\n\n<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n"
     "<parameter=state>\nTX\n</parameter>\n<parameter=unit>\nfahrenheit\n</parameter>\n</function>\n</tool_call>",
     TOOLS, [("get_current_weather", DALLAS_ARGS)], "I'll check the weather for you."),
    ("v_malformed_no_gt_delimiter",
     "<tool_call>\n<function=get_current_weather\n<parameter=city>Dallas</parameter>\n</function>\n</tool_call>",
     TOOLS, None, ...),
    ("v_none_tool_calls_filtered",
     "<tool_call>\n<function=bad_func_no_gt\n</function>\n</tool_call>\n<tool_call>\n<function=get_current_weather>\n"
     "<parameter=city>Dallas</parameter>\n<parameter=state>TX</parameter>\n</function>\n</tool_call>",
     TOOLS, None, ...),
    ("v_anyof_not_double_encoded",
     '<tool_call>\n<function=update_record>\n<parameter=data>{"key": "value", "count": 42}</parameter>\n</function>\n</tool_call>',
     TOOLS, [("update_record", {"data": {"key": "value", "count": 42}})], ""),
    ("v_no_double_serialization",
     "<tool_call>\n<function=greet>\n<parameter=message>hello world</parameter>\n</function>\n</tool_call>",
     TOOLS, [("greet", {"message": "hello world"})], ""),
    ("s_plain_text", "This is plain text without any tool calls.", TOOLS, [],
     "This is plain text without any tool calls."),
    ("s_text_prefix", "Let me check the weather for you.\n\n" + WEATHER_NY, TOOLS,
     [("get_current_weather", {"location": "New York"})], "Let me check the weather for you."),
    ("s_multiple_calls",
     WEATHER_NY + "\n<tool_call>\n<function=sql_interpreter>\n<parameter=query>SELECT * FROM users</parameter>\n"
     "<parameter=dry_run>True</parameter>\n</function>\n</tool_call>", TOOLS,
     [("get_current_weather", {"location": "New York"}), ("sql_interpreter", {"query": "SELECT * FROM users", "dry_run": True})],
     ""),
    ("s_integer_conversion",
     "<tool_call>\n<function=get_current_weather>\n<parameter=location>Tokyo</parameter>\n<parameter=days>5</parameter>\n"
     "</function>\n</tool_call>", TOOLS, [("get_current_weather", {"location": "Tokyo", "days": 5})], ""),
    ("s_boolean_conversion",
     "<tool_call>\n<function=sql_interpreter>\n<parameter=query>SELECT 1</parameter>\n<parameter=dry_run>True</parameter>\n"
     "</function>\n</tool_call>", TOOLS, [("sql_interpreter", {"query": "SELECT 1", "dry_run": True})], ""),
    ("s_complex_array",
     '<tool_call>\n<function=TodoWrite>\n<parameter=todos>\n[\n  {"content": "Buy groceries", "status": "pending"},\n'
     '  {"content": "Finish report", "status": "completed"}\n]\n</parameter>\n</function>\n</tool_call>', TOOLS,
     [("TodoWrite", {"todos": [{"content": "Buy groceries", "status": "pending"},
                               {"content": "Finish report", "status": "completed"}]})], ""),
    ("s_anyof_array", '<tool_call>\n<function=get_current_time>\n<parameter=cities>\n["NYC"]\n</parameter>\n</function>\n</tool_call>',
     TOOLS, [("get_current_time", {"cities": ["NYC"]})], ""),
    ("s_anyof_array_null", "<tool_call>\n<function=get_current_time>\n<parameter=cities>\nnull\n</parameter>\n</function>\n</tool_call>",
     TOOLS, [("get_current_time", {"cities": None})], ""),
    ("s_empty_parameter_value",
     "<tool_call>\n<function=get_current_weather>\n<parameter=location></parameter>\n</function>\n</tool_call>", TOOLS,
     [("get_current_weather", {"location": ""})], ""),
    ("s_special_characters",
     "<tool_call>\n<function=sql_interpreter>\n<parameter=query>SELECT * FROM users WHERE name = 'John \"Doe\"'</parameter>\n"
     "</function>\n</tool_call>", TOOLS,
     [("sql_interpreter", {"query": "SELECT * FROM users WHERE name = 'John \"Doe\"'"})], ""),
    ("s_incomplete_tool_call", "<tool_call>\n<function=get_current_weather>\n<parameter=location>London", TOOLS,
     None, ...),
    ("s_nested_anyof",
     '<tool_call>\n<function=process_optional_list>\n<parameter=optional_items_to_process>\n[true, null, {"enabled": false}]\n'
     "</parameter>\n</function>\n</tool_call>", TOOLS,
     [("process_optional_list", {"optional_items_to_process": [True, None, {"enabled": False}]})], ""),
    ("s_drifted_end_parameter1", _shanghai("Shanghai\n</parameter1>"), TOOLS,
     [("get_current_weather", {"city": "Shanghai", "days": 3})], ""),
    ("s_drifted_end_parameter_function", _shanghai("Shanghai\n</parameter_function>"), TOOLS,
     [("get_current_weather", {"city": "Shanghai", "days": 3})], ""),
    ("s_drifted_end_bare", _shanghai("Shanghai\n</parameter"), TOOLS,
     [("get_current_weather", {"city": "Shanghai", "days": 3})], ""),
    ("s_well_formed_value", _shanghai("Shanghai\n</parameter>"), TOOLS,
     [("get_current_weather", {"city": "Shanghai", "days": 3})], ""),
    ("s_angle_brackets_in_value", _shanghai("a <b>tag</b> city\n</parameter>"), TOOLS,
     [("get_current_weather", {"city": "a <b>tag</b> city", "days": 3})], ""),
    ("s_no_parameters", "<tool_call>\n<function=get_current_weather>\n</function>\n</tool_call>", TOOLS,
     [("get_current_weather", {})], ""),
    ("s_special_chars_in_value",
     "<tool_call>\n<function=get_current_weather>\n<parameter=city>\nDallas->TX\n</parameter>\n</function>\n</tool_call>",
     TOOLS, [("get_current_weather", {"city": "Dallas->TX"})], ""),
]

#: Cases where visagent refuses, on purpose, what a server may still return as a call, and why.
REFUSED_BY_DESIGN = {
    "v_malformed_no_gt_delimiter": "`<function=NAME` has no `>`: the name cannot be told from what follows "
                                   "(vLLM's test asserts only that nothing crashes)",
    "v_none_tool_calls_filtered": "one of two blocks is malformed: the agent refuses the turn rather than run "
                                  "half of it; the server view returns the good call and keeps the bad block as text",
    "s_incomplete_tool_call": "cut off at the end of the text: a truncated call may be missing arguments "
                              "(SGLang returns it; its test asserts only that nothing crashes)",
}

#: In the server view (`parse_tool_calls`), a refused case returns these calls and keeps the rest as text.
SERVER_VIEW_OF_REFUSED = {
    "v_malformed_no_gt_delimiter": [],
    "v_none_tool_calls_filtered": [("get_current_weather", {"city": "Dallas", "state": "TX"})],
    "s_incomplete_tool_call": [],
}


def gui(action: str, *params: tuple[str, str], fn: str = "computer_use", nl: bool = True) -> str:
    return _xml(fn, ("action", action), *params, nl=nl)


CLICK = {"action": "left_click", "coordinate": (512, 300)}
GUI_CASES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("canonical", gui("left_click", ("coordinate", "[512, 300]")), "desktop", [CLICK]),
    ("tuple_coordinate", gui("left_click", ("coordinate", "(512, 300)")), "desktop", [CLICK]),
    ("loose_coordinate", gui("left_click", ("coordinate", "512, 300")), "desktop", [CLICK]),
    ("compact_coordinate", gui("left_click", ("coordinate", "[512,300]")), "desktop", [CLICK]),
    ("spaced_coordinate", gui("left_click", ("coordinate", "  [ 512 , 300 ]  ")), "desktop", [CLICK]),
    ("python_list_keys", gui("key", ("keys", "['ctrl', 'c']")), "desktop", [{"action": "key", "keys": ("ctrl", "c")}]),
    ("tuple_keys", gui("key", ("keys", '("ctrl", "shift", "t")')), "desktop",
     [{"action": "key", "keys": ("ctrl", "shift", "t")}]),
    ("trailing_space_in_action", gui("left_click ", ("coordinate", "[512, 300]")), "desktop", [CLICK]),
    ("space_in_function_name",
     "<tool_call>\n<function=computer_use >\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n"
     "[512, 300]\n</parameter>\n</function>\n</tool_call>", "desktop", [CLICK]),
    ("space_in_parameter_tag",
     "<tool_call>\n<function=computer_use>\n<parameter= action >\nleft_click\n</parameter>\n< parameter=coordinate>\n"
     "[512, 300]\n< /parameter>\n</function>\n</tool_call>", "desktop", [CLICK]),
    ("missing_parameter_closer_before_next",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n<parameter=coordinate>\n[512, 300]\n"
     "</parameter>\n</function>\n</tool_call>", "desktop", [CLICK]),
    ("missing_parameter_closer_before_function_end",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n"
     "[512, 300]\n</function>\n</tool_call>", "desktop", [CLICK]),
    ("missing_function_closer",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n"
     "[512, 300]\n</parameter>\n</tool_call>", "desktop", [CLICK]),
    ("missing_tool_call_closer",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n"
     "[512, 300]\n</parameter>\n</function>", "desktop", [CLICK]),
    ("stray_tool_call_closer", gui("left_click", ("coordinate", "[512, 300]")) + "\n</tool_call>", "desktop", [CLICK]),
    ("stray_parameter_closer",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n</parameter>\n"
     "<parameter=coordinate>\n[512, 300]\n</parameter>\n</function>\n</tool_call>", "desktop", [CLICK]),
    ("prose_before_and_after",
     "The OK button is at the bottom.\n" + gui("left_click", ("coordinate", "[512, 300]")) + "\nThat should do it.",
     "desktop", [CLICK]),
    ("bare_function",
     "<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n[512, 300]\n"
     "</parameter>\n</function>", "desktop", [CLICK]),
    ("two_calls", gui("left_click", ("coordinate", "[512, 300]")) + "\n" + gui("type", ("text", "hello\nworld")),
     "desktop", [CLICK, {"action": "type", "text": "hello\nworld"}]),
    ("two_functions_in_one_block",
     "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n"
     "[512, 300]\n</parameter>\n</function>\n<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n"
     "</function>\n</tool_call>", "desktop", [CLICK, {"action": "wait"}]),
    ("no_newlines", gui("scroll", ("pixels", "-5"), ("coordinate", "[10,20]"), nl=False), "desktop",
     [{"action": "scroll", "pixels": -5, "coordinate": (10, 20)}]),
    ("float_seconds", gui("wait", ("time", "2.5")), "desktop", [{"action": "wait", "time": 2.5}]),
    ("status_with_spaces", gui("terminate", ("status", " success ")), "desktop",
     [{"action": "terminate", "status": "success"}]),
    ("text_kept_verbatim", gui("type", ("text", "  it's <b>bold</b> & \"quoted\"  ")), "desktop",
     [{"action": "type", "text": "  it's <b>bold</b> & \"quoted\"  "}]),
    ("nous_json",
     '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [512, 300]}}\n</tool_call>',
     "desktop", [CLICK]),
    ("mobile_swipe_tuples",
     gui("swipe", ("coordinate", "(500, 800)"), ("coordinate2", "(500, 200)"), fn="mobile_use"), "phone",
     [{"action": "swipe", "coordinate": (500, 800), "coordinate2": (500, 200)}]),
]

GUI_REFUSED: list[tuple[str, str, str]] = [
    ("truncated_at_end", "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
     "<parameter=coordinate>\n[512, 3", "truncated tool call: <tool_call> is not closed"),
    ("truncated_bare", "<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n",
     "truncated tool call: <function=...> is not closed"),
    ("text_inside_function",
     "<tool_call>\n<function=computer_use>\nI click OK\n<parameter=action>\nleft_click\n</parameter>\n</function>\n</tool_call>",
     "unexpected text 'I click OK' inside <function=computer_use>"),
    ("parameter_without_equals",
     "<tool_call>\n<function=computer_use>\n<parameter action>\nleft_click\n</parameter>\n</function>\n</tool_call>",
     "unexpected text '<parameter action>"),
    ("unreadable_coordinate", gui("left_click", ("coordinate", "(512, 300")),
     "coordinate must be [x, y] with two numbers, got '(512, 300'"),
    ("three_numbers", gui("left_click", ("coordinate", "512, 300, 7")), "coordinate must be [x, y]"),
    ("keys_as_one_string", gui("key", ("keys", "ctrl+c")), "keys must be a list of key names"),
    ("unknown_action", gui("tap", ("coordinate", "[1, 2]")), "unknown action 'tap'"),
    ("function_name_with_newline",
     "<tool_call>\n<function=computer_use\n<parameter=action>\nwait\n</parameter>\n</function>\n</tool_call>",
     "malformed tool call: <function=computer_use has no closing '>'"),
]
