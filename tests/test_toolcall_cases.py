"""The one tool-call parser against the case table (tests/toolcall_cases.py): the servers' own parser-test cases
and GUI answers read the same by the server view (`visagent serve`), by the agent reading text, and by the
agent reading what the server returned."""

from __future__ import annotations

import pytest

from engine.api import parse_tool_calls, scan_tool_calls
from engine.chat_protocol import wire_tool_calls
from tests.toolcall_cases import GUI_CASES, GUI_REFUSED, PUBLIC_CASES, REFUSED_BY_DESIGN, SERVER_VIEW_OF_REFUSED
from visagent.core.errors import ParseError
from visagent.loop.parsing import parse_output
from visagent.loop.parsing.toolcalls import find_tool_calls
from visagent.core.schemas import computer_use_tool, mobile_use_tool

# The tool schemas the agent sends a server (what `visagent serve` types values by).
GUI_TOOLS = [computer_use_tool("norm1000", 1920, 1080), mobile_use_tool("norm1000", 1080, 2400)]


def test_the_table_is_the_size_the_issue_counted():
    assert len(PUBLIC_CASES) >= 33 and len(GUI_CASES) >= 26
    assert set(REFUSED_BY_DESIGN) == {c[0] for c in PUBLIC_CASES if c[3] is None} == set(SERVER_VIEW_OF_REFUSED)


@pytest.mark.parametrize(("text", "tools", "calls", "content"), [c[1:] for c in PUBLIC_CASES],
                         ids=[c[0] for c in PUBLIC_CASES])
def test_public_cases_in_the_server_view(text, tools, calls, content):
    got_content, got = parse_tool_calls(text, tools)
    if calls is None:  # refused on purpose: the good calls come back, the bad block stays as text
        assert [(c.name, c.arguments) for c in got] == SERVER_VIEW_OF_REFUSED[next(
            c[0] for c in PUBLIC_CASES if c[1] == text)]
        assert got_content, "a refused block must stay in the content"
        return
    assert [(c.name, c.arguments) for c in got] == calls
    if content is not ...:
        assert got_content == content


@pytest.mark.parametrize(("text", "calls"), [(c[1], c[3]) for c in PUBLIC_CASES], ids=[c[0] for c in PUBLIC_CASES])
def test_public_cases_in_the_agent_view(text, calls):
    if calls is None:
        with pytest.raises(ParseError) as info:
            find_tool_calls(text, "auto")
        assert "\n" not in str(info.value)
        return
    found, _ = find_tool_calls(text, "auto")
    assert [c.tool for c in found] == [name for name, _ in calls]


def _fields(action) -> dict:
    return {k: v for k, v in action.to_dict().items() if v is not None and k != "space"}


def _expected(actions: list[dict]) -> list[dict]:
    return [{k: list(v) if isinstance(v, tuple) else v for k, v in a.items()} for a in actions]


@pytest.mark.parametrize(("text", "platform", "actions"), [c[1:] for c in GUI_CASES], ids=[c[0] for c in GUI_CASES])
def test_gui_answers_read_the_same_as_text_and_through_serve(text, platform, actions):
    from_text = parse_output(text, platform=platform)
    assert [_fields(a) for a in from_text.actions] == _expected(actions)
    # `visagent serve` parses the same text into structured tool_calls; the agent reads those the same way.
    content, calls = parse_tool_calls(text, GUI_TOOLS)
    assert len(calls) == len(actions)
    from_serve = parse_output(content, tool_calls=wire_tool_calls(calls), platform=platform)
    assert from_serve.actions == from_text.actions
    assert from_serve.text == from_text.text


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in GUI_REFUSED], ids=[c[0] for c in GUI_REFUSED])
def test_gui_answers_that_cannot_run_are_refused_the_same_way_on_both_paths(text, message):
    with pytest.raises(ParseError) as info:
        parse_output(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    content, calls = parse_tool_calls(text, GUI_TOOLS)
    if not calls:  # the server refused the block too, and kept every character of it
        assert scan_tool_calls(text, GUI_TOOLS).problems
        assert content == text.strip()
        return
    with pytest.raises(ParseError) as served:  # a well-formed call with a bad value: the agent refuses it
        parse_output(content, tool_calls=wire_tool_calls(calls))
    assert str(served.value) == str(info.value)
