"""Tool schemas: Qwen's computer_use / mobile_use argument names, the screen size per coordinate space."""

from __future__ import annotations

import json

import pytest

from visagent.core.actions import COMPUTER_ACTIONS, MOBILE_ACTIONS
from visagent.core.errors import ConfigError
from visagent.core.schemas import computer_use_tool, mobile_use_tool, tool_for


def test_computer_use_has_qwen_argument_names_and_actions():
    tool = computer_use_tool("norm1000", 1920, 1080)
    assert tool["type"] == "function"
    fn = tool["function"]
    assert fn["name"] == "computer_use"
    params = fn["parameters"]
    assert params["type"] == "object" and params["required"] == ["action"]
    assert set(params["properties"]) == {"action", "keys", "text", "coordinate", "pixels", "time", "status"}
    assert params["properties"]["action"]["enum"] == list(COMPUTER_ACTIONS)
    doc = params["properties"]["action"]["description"]
    assert "* `left_click`: Click the left mouse button at a specified (x, y) pixel coordinate on the screen." in doc
    for name in COMPUTER_ACTIONS:
        assert f"* `{name}`:" in doc
    json.dumps(tool)  # serialisable as the chat template needs


def test_mobile_use_has_qwen_argument_names_and_actions():
    fn = mobile_use_tool("norm1000", 1080, 2400)["function"]
    assert fn["name"] == "mobile_use"
    props = fn["parameters"]["properties"]
    assert set(props) == {"action", "coordinate", "coordinate2", "text", "time", "button", "status"}
    assert props["action"]["enum"] == list(MOBILE_ACTIONS)
    assert props["button"]["enum"] == ["Back", "Home", "Menu", "Enter"]
    for name in MOBILE_ACTIONS:
        assert f"* `{name}`:" in props["action"]["description"]


@pytest.mark.parametrize(("space", "size", "expected"), [
    ("norm1000", (1920, 1080), "The screen's resolution is 1000x1000."),
    ("resized", (1920, 1088), "The screen's resolution is 1920x1088."),
    ("absolute", (2880, 1800), "The screen's resolution is 2880x1800."),
])
def test_description_states_the_size_to_assume(space, size, expected):
    for make in (computer_use_tool, mobile_use_tool):
        assert expected in make(space, *size)["function"]["description"]


def test_tool_for_platform_and_errors():
    assert tool_for("desktop", "norm1000", 1, 1)["function"]["name"] == "computer_use"
    assert tool_for("phone", "resized", 1088, 2400)["function"]["name"] == "mobile_use"
    with pytest.raises(ConfigError, match="unknown platform 'tv'"):
        tool_for("tv", "norm1000", 1, 1)
    with pytest.raises(ConfigError, match="unknown coordinate space 'screen'"):
        computer_use_tool("screen", 1920, 1080)
    with pytest.raises(ConfigError, match="positive whole numbers"):
        computer_use_tool("absolute", 0, 1080)


@pytest.mark.parametrize("platform", ["desktop", "phone"])
def test_compact_profile_keeps_names_arguments_and_actions(platform):
    """The compact tool differs only in prose: a model trained on it calls the same tool the same way."""
    full = tool_for(platform, "norm1000", 1280, 800)["function"]
    compact = tool_for(platform, "norm1000", 1280, 800, "compact")["function"]
    assert compact["name"] == full["name"]
    assert set(compact["parameters"]["properties"]) == set(full["parameters"]["properties"])
    assert compact["parameters"]["properties"]["action"]["enum"] == full["parameters"]["properties"]["action"]["enum"]
    assert "1000x1000" in compact["description"]
    assert len(json.dumps(compact)) * 4 < len(json.dumps(full))


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="prompt profile"):
        tool_for("desktop", "norm1000", 1280, 800, "tiny")


def test_task_first_profile_uses_the_compact_tool():
    for platform in ("desktop", "phone"):
        assert tool_for(platform, "norm1000", 1280, 800, "compact-task-first") == \
            tool_for(platform, "norm1000", 1280, 800, "compact")
