"""Model output → actions: every format, thinking split, several calls, strict rejection, and property tests
that random or damaged output yields actions or one ParseError, never another exception."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visagent.core.actions import ALL_ACTIONS, Action
from visagent.core.errors import ActionError, ParseError
from visagent.loop.parsing import (
    UITARS_SCROLL_PIXELS, UITARS_WAIT_SECONDS, ParsedOutput, parse_output, render_action, render_tool_call,
    uitars_platform,
)

N = "norm1000"

# At least one example of every action, with every optional argument somewhere.
EXAMPLES: list[Action] = [
    Action("key", keys=("ctrl", "c"), space=N),
    Action("key", text="volume_up", space=N),
    Action("type", text="hello 'world'\n\"quoted\" \\ back\tslash ünïcødé 日本", space=N),
    Action("type", text="x", coordinate=(10, 20), space=N),
    Action("mouse_move", coordinate=(0, 1000), space=N),
    Action("left_click", coordinate=(512, 300), space=N),
    Action("left_click", space=N),
    Action("left_click", coordinate=(512.5, 300.25), keys=("shift",), space=N),
    Action("left_click_drag", coordinate=(100, 200), space=N),
    Action("left_click_drag", coordinate=(100, 200), coordinate2=(300, 400), space=N),
    Action("right_click", coordinate=(1, 2), space=N),
    Action("middle_click", coordinate=(3, 4), space=N),
    Action("double_click", coordinate=(5, 6), space=N),
    Action("triple_click", coordinate=(7, 8), space=N),
    Action("scroll", pixels=-5, space=N),
    Action("scroll", pixels=3, coordinate=(500, 500), space=N),
    Action("hscroll", pixels=5, coordinate=(500, 500), space=N),
    Action("wait", space=N),
    Action("wait", time=2.5, space=N),
    Action("terminate", status="success", space=N),
    Action("terminate", status="failure", text="could not find it", space=N),
    Action("answer", text="42", space=N),
    Action("click", coordinate=(540, 800), space=N),
    Action("long_press", coordinate=(10, 10), space=N),
    Action("long_press", coordinate=(10, 10), time=2, space=N),
    Action("swipe", coordinate=(500, 800), coordinate2=(500, 200), space=N),
    Action("swipe", coordinate=(500, 800), coordinate2=(500, 200), time=0.5, space=N),
    Action("system_button", button="Back", space=N),
    Action("system_button", button="Menu", space=N),
    Action("open", text="Settings", space=N),
    Action("call_user", space=N),
    Action("call_user", text="please log in", space=N),
]

# What UI-TARS can write exactly (its scroll has no amount, its wait is 5 s, finished means success).
UITARS_EXAMPLES: list[Action] = [
    Action("key", keys=("ctrl", "shift", "t"), space=N),
    Action("type", text="it's a \"test\"\nwith \\ and\ttabs ü", space=N),
    Action("mouse_move", coordinate=(4, 5), space=N),
    Action("left_click", coordinate=(512, 300), space=N),
    Action("left_click", coordinate=(512.5, 300.5), space=N),
    Action("left_click_drag", coordinate=(100, 200), coordinate2=(300, 400), space=N),
    Action("right_click", coordinate=(1, 2), space=N),
    Action("double_click", coordinate=(5, 6), space=N),
    Action("scroll", pixels=-UITARS_SCROLL_PIXELS, coordinate=(500, 500), space=N),
    Action("scroll", pixels=UITARS_SCROLL_PIXELS, space=N),
    Action("hscroll", pixels=UITARS_SCROLL_PIXELS, coordinate=(500, 500), space=N),
    Action("hscroll", pixels=-UITARS_SCROLL_PIXELS, coordinate=(500, 500), space=N),
    Action("wait", time=UITARS_WAIT_SECONDS, space=N),
    Action("terminate", status="success", space=N),
    Action("terminate", status="success", text="done: it's 42", space=N),
    Action("click", coordinate=(540, 800), space=N),
    Action("long_press", coordinate=(10, 10), space=N),
    Action("long_press", coordinate=(10, 10), time=2, space=N),
    Action("swipe", coordinate=(500, 800), coordinate2=(500, 200), space=N),
    Action("system_button", button="Back", space=N),
    Action("system_button", button="Home", space=N),
    Action("open", text="Settings", space=N),
    Action("call_user", space=N),
]


def test_examples_cover_every_action():
    assert {a.action for a in EXAMPLES} == set(ALL_ACTIONS)


def _same(a: Action, b: Action) -> bool:
    return a == b and a.space == b.space


# -- round trips ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["qwen35", "nous"])
@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.summary()[:40])
def test_tool_call_formats_round_trip(action, fmt):
    text = render_action(action, fmt)
    parsed = parse_output(text, fmt=fmt)
    assert parsed.format == fmt
    assert len(parsed.actions) == 1 and _same(parsed.actions[0], action), text
    assert parse_output(text).actions == [action]  # auto-detected too


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.summary()[:40])
def test_openai_tool_calls_round_trip_with_object_and_string_arguments(action):
    call = render_tool_call(action)
    assert call["type"] == "function" and call["function"]["name"] in ("computer_use", "mobile_use")
    as_string = {"type": "function", "id": "call_1",
                 "function": {"name": call["function"]["name"], "arguments": json.dumps(call["function"]["arguments"])}}
    for calls in ([call], [as_string]):
        parsed = parse_output("", tool_calls=calls)
        assert parsed.format == "openai" and parsed.actions == [action]


@pytest.mark.parametrize("action", UITARS_EXAMPLES, ids=lambda a: a.summary()[:40])
def test_uitars_round_trip(action):
    text = render_action(action, "uitars")
    platform = uitars_platform(action)
    parsed = parse_output(text, fmt="uitars", platform=platform)
    assert parsed.format == "uitars"
    assert parsed.actions == [action], text
    assert parse_output("Thought: go\n" + text, platform=platform).actions == [action]


@pytest.mark.parametrize("action", [
    Action("middle_click", coordinate=(3, 4), space=N),
    Action("scroll", pixels=-3, space=N),
    Action("wait", space=N),
    Action("terminate", status="failure", space=N),
    Action("answer", text="42", space=N),
    Action("system_button", button="Menu", space=N),
    Action("left_click_drag", coordinate=(1, 2), space=N),
    Action("key", text="volume_up", space=N),
], ids=lambda a: a.summary())
def test_uitars_refuses_to_write_what_it_cannot_express(action):
    with pytest.raises(ActionError, match="UI-TARS has no way"):
        render_action(action, "uitars")


def test_rendering_refuses_screen_space_and_values_that_would_break_the_block():
    with pytest.raises(ActionError, match="from_screen"):
        render_action(Action("left_click", coordinate=(5, 5), space="screen"), "qwen35")
    with pytest.raises(ActionError, match="</parameter>"):
        render_action(Action("type", text="a</parameter>b", space=N), "qwen35")
    with pytest.raises(ActionError, match="</think>"):
        render_action(Action("type", text="a</think>b", space=N), "nous")
    with pytest.raises(ActionError, match="mobile_use has no action 'left_click'"):
        render_action(Action("left_click", coordinate=(5, 5), space=N), "qwen35", platform="phone")


def test_qwen35_render_matches_the_chat_template_layout():
    text = render_action(Action("left_click", coordinate=(512, 300), space=N), "qwen35")
    assert text == ("<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
                    "<parameter=coordinate>\n[512, 300]\n</parameter>\n</function>\n</tool_call>")
    phone = render_action(Action("type", text="hi", space=N), "qwen35", platform="phone")
    assert "<function=mobile_use>" in phone


# -- what each format accepts --------------------------------------------------------------------------------

def test_qwen35_multiline_values_and_thinking_without_opener():
    text = ("The field is empty, I type the address.\n</think>\n\n"
            "<tool_call>\n<function=computer_use>\n<parameter=action>\ntype\n</parameter>\n"
            "<parameter=text>\nline one\nline two\n</parameter>\n</function>\n</tool_call>")
    parsed = parse_output(text)
    assert parsed.thinking == "The field is empty, I type the address."
    assert parsed.actions == [Action("type", text="line one\nline two", space=N)]


def test_qwen35_numbers_and_spacing_variants():
    text = ("<tool_call><function=computer_use><parameter=action>scroll</parameter>"
            "<parameter=pixels>-5</parameter><parameter=coordinate>[10,20]</parameter></function></tool_call>")
    assert parse_output(text).actions == [Action("scroll", pixels=-5, coordinate=(10, 20), space=N)]


def test_several_calls_become_several_actions_in_order_with_prose_kept():
    text = ("<think>plan</think>First I click the box. "
            + render_action(Action("left_click", coordinate=(10, 10), space=N), "qwen35")
            + "\nthen type\n"
            + render_action(Action("type", text="abc", space=N), "nous"))
    parsed = parse_output(text)
    assert [a.action for a in parsed.actions] == ["left_click", "type"]
    assert parsed.thinking == "plan"
    assert parsed.text == "First I click the box. \nthen type"


def test_qwen35_call_without_its_tool_call_wrapper_is_accepted():
    text = "Clicking.\n<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n</function>"
    parsed = parse_output(text)
    assert parsed.format == "qwen35" and parsed.actions == [Action("wait", space=N)] and parsed.text == "Clicking."
    with pytest.raises(ParseError, match="expected a JSON tool call"):
        parse_output(text, fmt="nous")


def test_thinking_with_opener_and_tool_calls_inside_thinking_are_ignored():
    inner = render_action(Action("left_click", coordinate=(1, 1), space=N), "qwen35")
    outer = render_action(Action("left_click", coordinate=(9, 9), space=N), "qwen35")
    parsed = parse_output(f"<think>maybe {inner}?</think>\n{outer}")
    assert parsed.actions == [Action("left_click", coordinate=(9, 9), space=N)]
    assert inner in parsed.thinking


def test_uitars_variants_of_points_boxes_and_names():
    out = parse_output(
        "Thought: I see the button.\nAction: click(start_box='<|box_start|>(100,200)<|box_end|>')\n\n"
        "left_double(start_box='(10,20,30,40)')\nright_single(point='[1, 2, 3, 4]')\n"
        "drag(start_box='(1,2)', end_box='(3,4)')\nhotkey(key='ctrl c')\n"
        "scroll(point='<point>5 6</point>', direction='down')\nwait()\n"
        "type(content='a\\nb\\'c')\nfinished(content='done')",
        space="resized",
    )
    assert out.format == "uitars" and out.thinking == "I see the button."
    got = [(a.action, a.coordinate, a.coordinate2) for a in out.actions]
    assert got == [
        ("left_click", (100.0, 200.0), None), ("double_click", (20.0, 30.0), None),
        ("right_click", (2.0, 3.0), None), ("left_click_drag", (1.0, 2.0), (3.0, 4.0)),
        ("key", None, None), ("scroll", (5.0, 6.0), None), ("wait", None, None), ("type", None, None),
        ("terminate", None, None),
    ]
    assert out.actions[4].keys == ("ctrl", "c")
    assert out.actions[5].pixels == -UITARS_SCROLL_PIXELS
    assert out.actions[7].text == "a\nb'c"
    assert out.actions[8].status == "success" and out.actions[8].text == "done"
    assert all(a.space == "resized" for a in out.actions)


def test_uitars_mobile_vocabulary():
    out = parse_output("Action: long_press(point='<point>1 2</point>')\nopen_app(app_name='Clock')\n"
                       "press_back()\npress_home()\nclick(point='<point>3 4</point>')\n"
                       "drag(start_point='<point>5 6</point>', end_point='<point>5 1</point>')\ncall_user()",
                       platform="phone")
    assert [a.action for a in out.actions] == ["long_press", "open", "system_button", "system_button", "click",
                                               "swipe", "call_user"]
    assert [a.button for a in out.actions[2:4]] == ["Back", "Home"]


def test_uitars_thinking_block_and_thought_are_joined():
    out = parse_output("<think>deep</think>Thought: shallow\nAction: wait()")
    assert out.thinking == "deep\n\nshallow"


# -- rejection: ParseError with a message a model can act on -----------------------------------------------------

def _xml(**params: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function=computer_use>\n{body}</function>\n</tool_call>"


@pytest.mark.parametrize(("text", "message"), [
    (_xml(action="left_click", coordinate="[1200, 40]"), "coordinate [1200, 40] is outside the 0..1000 grid"),
    (_xml(action="tap", coordinate="[1, 2]"), "unknown action 'tap'; expected one of: key, type"),
    (_xml(action="left_click_drag"), "action 'left_click_drag' requires coordinate"),
    (_xml(action="type"), "action 'type' requires text"),
    (_xml(action="key", text="ctrl+c"), "action 'key' requires keys"),
    (_xml(action="key", keys='"ctrl+c"'), "keys must be a list of key names"),
    (_xml(action="scroll", pixels="lots"), "pixels must be a number, got 'lots'"),
    (_xml(action="scroll", pixels="0"), "pixels must not be 0"),
    (_xml(action="scroll", pixels="2.5"), "pixels must be a whole number"),
    (_xml(action="wait", time="-1"), "time must be within 0..60"),
    (_xml(action="terminate", status="done"), "status must be 'success' or 'failure'"),
    (_xml(action="left_click", coordinate="[1, 2, 3]"), "coordinate must be [x, y]"),
    (_xml(action="left_click", coordinate="(1, 2"), "coordinate must be [x, y] with two numbers, got '(1, 2'"),
    (_xml(action="left_click", coordinate='["a", 2]'), "coordinate must be [x, y]"),
    (_xml(action="left_click", coordinate="[1e999, 2]"), "coordinate must be [x, y] with two numbers"),
    (_xml(action="left_click", colour="red"), "unknown argument 'colour'"),
    (_xml(action="answer", text=""), "text must not be empty"),
    (_xml(coordinate="[1, 2]"), "no 'action' argument"),
    (_xml(action="swipe", coordinate="[1, 2]", coordinate2="[3, 4]"), "unknown action 'swipe'"),
    ("<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n",
     "truncated tool call: <tool_call> is not closed"),
    ("<tool_call>\n<function=computer_use>\n<parameter=action>\nwait\n</parameter>\nI am waiting\n</tool_call>",
     "unexpected text 'I am waiting' inside <function=computer_use>"),
    ("<tool_call>\n<function=computer_use>\n<parameter=action>\nwait",
     "truncated tool call: <tool_call> is not closed"),
    ("<tool_call>\n<function=browser>\n<parameter=action>\nwait\n</parameter>\n</function>\n</tool_call>",
     "unknown tool 'browser'"),
    ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait"}\n</tool_call>', "not valid JSON"),
    ('<tool_call>\n{"name": "computer_use"}\n</tool_call>', 'needs "name" and "arguments"'),
    ('<tool_call>\n{"name": "computer_use", "arguments": []}\n</tool_call>', "arguments must be an object"),
    ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [true, 2]}}\n</tool_call>',
     "coordinate must be [x, y]"),
    ("<tool_call>\nclick here\n</tool_call>", "tool call must hold <function=NAME>"),
    ("I would click the OK button.", "no tool call found: answer with <tool_call>"),
    ("", "no tool call found"),
    ("<think>only thinking, cut by the token limit", "no tool call found"),
    ('{"name": "computer_use"}\n</tool_call>', "</tool_call> without its opening <tool_call>"),
    ("<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n", "<function=...> is not closed"),
    ("Action: click(point='<point>1 2</point>'", "truncated action"),
    ("Action: click(point='<point>1 2</point>)", "truncated action"),
    ("Action: tap(point='<point>1 2</point>')", "unknown action 'tap'"),
    ("Action: click(point='<point>1</point>')", "a point must look like"),
    ("Action: click(point='<point>1200 2</point>')", "outside the 0..1000 grid"),
    ("Action: scroll(point='<point>1 2</point>', direction='sideways')", "direction must be up, down"),
    ("Action: click(box='(1,2)')", "does not take 'box'"),
    ("Action: hotkey()", "requires key"),
    ("Thought: I will click the button.", "no Action: line found"),
])
def test_bad_output_is_one_parse_error_naming_the_problem(text, message):
    with pytest.raises(ParseError) as info:
        parse_output(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_forced_format_rejects_the_other_one():
    xml = render_action(Action("wait", space=N), "qwen35")
    js = render_action(Action("wait", space=N), "nous")
    with pytest.raises(ParseError, match="expected a JSON tool call"):
        parse_output(xml, fmt="nous")
    with pytest.raises(ParseError, match="got JSON"):
        parse_output(js, fmt="qwen35")
    with pytest.raises(ParseError, match="call the computer_use"):
        parse_output(js, fmt="openai")


def test_error_in_one_of_several_calls_names_which():
    text = render_action(Action("wait", space=N), "qwen35") + _xml(action="left_click", coordinate="[1, 2000]")
    with pytest.raises(ParseError, match=r"tool call 2 of 2: coordinate \[1, 2000\] is outside"):
        parse_output(text)


def test_platform_rejects_the_other_tool_and_sets_uitars_meaning():
    with pytest.raises(ParseError, match="this screen is a phone: call mobile_use"):
        parse_output(_xml(action="left_click", coordinate="[1, 2]"), platform="phone")
    assert parse_output("Action: click(point='<point>1 2</point>')", platform="phone").actions[0].action == "click"


def test_spaces_validate_differently():
    text = _xml(action="left_click", coordinate="[1500, 40]")
    with pytest.raises(ParseError, match="0..1000 grid"):
        parse_output(text, space="norm1000")
    assert parse_output(text, space="resized").actions[0].coordinate == (1500.0, 40.0)
    with pytest.raises(ParseError, match="negative pixel"):
        parse_output(_xml(action="left_click", coordinate="[-1, 40]"), space="absolute")


def test_bad_arguments_to_parse_output_are_parse_errors():
    with pytest.raises(ParseError, match="unknown output format"):
        parse_output("x", fmt="xml")
    with pytest.raises(ParseError, match="unknown coordinate space"):
        parse_output("x", space="screen")
    with pytest.raises(ParseError, match="model output must be text"):
        parse_output(None)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match="tool_calls must be a list"):
        parse_output("", fmt="openai", tool_calls={"name": "x"})  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------------------------------

def _parse_or_error(text: str, **kw) -> ParsedOutput | None:
    """Parse; a ParseError is an allowed outcome. Anything else propagates and fails the test."""
    try:
        out = parse_output(text, **kw)
    except ParseError as exc:
        assert str(exc), "a ParseError must say what is wrong"
        return None
    assert out.actions and all(isinstance(a, Action) for a in out.actions)
    return out


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SPECIAL = st.sampled_from(["<", ">", "</", "=", "[", "]", "{", "}", "(", ")", "'", '"', "\\", ",", "\n", " ",
                            "-", "9", "1e999", "<tool_call>", "</tool_call>", "<function=", "<parameter=",
                            "</parameter>", "</function>", "</think>", "<think>", "Action:", "Thought:",
                            "<point>", "</point>", "99999999999999999999999999", "NaN", "\x00", "\u2028"])
_SOURCES = ([render_action(a, "qwen35") for a in EXAMPLES] + [render_action(a, "nous") for a in EXAMPLES]
            + [render_action(a, "uitars") for a in UITARS_EXAMPLES])


@FUZZ
@given(text=st.text(max_size=300), fmt=st.sampled_from(["auto", "qwen35", "nous", "uitars"]),
       space=st.sampled_from(["norm1000", "resized", "absolute"]))
def test_random_text_gives_actions_or_parse_error(text, fmt, space):
    _parse_or_error(text, fmt=fmt, space=space)


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(_SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "delete", "insert", "special", "number", "unicode", "repeat"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "truncate":
            text = text[:pos]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        elif kind == "insert":
            text = text[:pos] + draw(st.text(min_size=1, max_size=5)) + text[pos:]
        elif kind == "special":
            text = text[:pos] + draw(_SPECIAL) + text[pos:]
        elif kind == "unicode":
            text = text[:pos] + draw(st.characters()) + text[pos:]
        elif kind == "repeat":
            text = text + text[pos:]
        else:  # swap a number for another one, possibly huge, negative or fractional
            numbers = list(re.finditer(r"\d+", text))
            if numbers:
                m = numbers[draw(st.integers(0, len(numbers) - 1))]
                new = draw(st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True).map(str),
                                     st.sampled_from(["", "-", "1" * 5000])))
                text = text[:m.start()] + new + text[m.end():]
    return text


@FUZZ
@given(text=mutated(), fmt=st.sampled_from(["auto", "qwen35", "nous", "uitars"]),
       space=st.sampled_from(["norm1000", "resized", "absolute"]), platform=st.sampled_from([None, "desktop", "phone"]))
def test_mutated_output_gives_actions_or_parse_error(text, fmt, space, platform):
    _parse_or_error(text, fmt=fmt, space=space, platform=platform)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(calls=st.one_of(_JSONISH, st.lists(st.one_of(
    _JSONISH,
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({
        "name": st.sampled_from(["computer_use", "mobile_use", "x"]),
        "arguments": st.one_of(_JSONISH, st.dictionaries(
            st.sampled_from(["action", "coordinate", "coordinate2", "text", "keys", "pixels", "time", "button",
                             "status", "other"]),
            st.one_of(_JSONISH, st.sampled_from(list(ALL_ACTIONS))), max_size=4),
            _JSONISH.map(json.dumps)),
    })})), max_size=3)))
def test_random_structured_tool_calls_give_actions_or_parse_error(calls):
    _parse_or_error("", fmt="openai", tool_calls=calls)


_SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_GRID = st.integers(0, 1000) | st.floats(0, 1000, allow_nan=False)
_POINT = st.tuples(_GRID, _GRID)


@st.composite
def random_action(draw) -> Action:
    name = draw(st.sampled_from(ALL_ACTIONS))
    kw: dict = {}
    if name in ("mouse_move", "left_click_drag", "click", "long_press", "swipe") or (
            name in ("left_click", "right_click", "middle_click", "double_click", "triple_click", "scroll", "hscroll")
            and draw(st.booleans())):
        kw["coordinate"] = draw(_POINT)
    if name == "swipe" or (name == "left_click_drag" and draw(st.booleans())):
        kw["coordinate2"] = draw(_POINT)
    if name in ("type", "answer", "open") or (name in ("terminate", "call_user") and draw(st.booleans())):
        kw["text"] = draw(_SAFE_TEXT)
    if name == "key":
        kw["keys"] = tuple(draw(st.lists(st.sampled_from(["ctrl", "shift", "alt", "c", "Return", "F5"]), min_size=1,
                                         max_size=3)))
    if name in ("scroll", "hscroll"):
        kw["pixels"] = draw(st.integers(-50, 50).filter(bool))
    if name in ("wait", "long_press", "swipe") and draw(st.booleans()):
        kw["time"] = draw(st.floats(0, 60))
    if name == "system_button":
        kw["button"] = draw(st.sampled_from(["Back", "Home", "Menu", "Enter"]))
    if name == "terminate":
        kw["status"] = draw(st.sampled_from(["success", "failure"]))
    return Action(name, space=N, **kw)


@settings(max_examples=300, deadline=None)
@given(action=random_action(), fmt=st.sampled_from(["qwen35", "nous", "openai"]))
def test_any_action_round_trips_through_tool_call_formats(action, fmt):
    if fmt == "openai":
        parsed = parse_output("", tool_calls=[render_tool_call(action)])
    else:
        parsed = parse_output(render_action(action, fmt))
    assert parsed.actions == [action]


@pytest.mark.parametrize("text", [
    _xml(action="left_click", coordinate="[" * 100_000),
    '<tool_call>\n{"name": "computer_use", "arguments": ' + "[" * 100_000 + "}\n</tool_call>",
    _xml(action="scroll", pixels="1" * 5000),
    _xml(action="left_click", coordinate=f"[{'9' * 400}, 1]"),
    '<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait", "time": ' + "9" * 5000 + "}}\n</tool_call>",
    "Action: click(point='<point>" + "9" * 5000 + " 1</point>')",
    "Action: " + "click(" * 10_000,
    "<tool_call>" * 10_000,
], ids=["deep-xml-array", "deep-json", "5000-digit-pixels", "400-digit-coordinate", "5000-digit-json-time",
        "5000-digit-uitars", "unclosed-calls", "many-openers"])
def test_pathological_output_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_output(text, space="resized")


_TOKENS = st.sampled_from(list("<>/=[]{}()'\"\\,:\n -0123456789.e") + [
    "<tool_call>", "</tool_call>", "<function=computer_use>", "<function=mobile_use>", "<parameter=action>",
    "<parameter=coordinate>", "<parameter=text>", "</parameter>", "</function>", "<think>", "</think>", "Action:",
    "Thought:", "click(", "point=", "'<point>", "</point>'", "left_click", "wait", '"action"', '"coordinate"',
    '{"name": "computer_use", "arguments": ', "direction='down'", "content='", "drag(",
])


@FUZZ
@given(text=st.lists(_TOKENS, max_size=30).map("".join), fmt=st.sampled_from(["auto", "qwen35", "nous", "uitars"]))
def test_token_soup_gives_actions_or_parse_error(text, fmt):
    _parse_or_error(text, fmt=fmt, space="resized")
