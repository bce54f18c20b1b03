"""The Action type: every action validates its arguments on construction and serialises losslessly."""

from __future__ import annotations

import json

import pytest

from visagent.core.actions import ALL_ACTIONS, COMPUTER_ACTIONS, MOBILE_ACTIONS, Action, CoordMapping
from visagent.core.errors import ActionError

N = "norm1000"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": "tap"}, "unknown action 'tap'"),
    ({"action": ["left_click"]}, "unknown action"),
    ({"action": "wait", "space": "pixels"}, "unknown coordinate space 'pixels'"),
    ({"action": "key"}, "requires keys (computer_use) or text"),
    ({"action": "key", "keys": ()}, "keys must be a non-empty list"),
    ({"action": "key", "keys": "ctrl+c"}, "keys must be a non-empty list"),
    ({"action": "key", "keys": ("ctrl", " ")}, "every key must be a non-empty string"),
    ({"action": "type"}, "requires text"),
    ({"action": "type", "text": 5}, "text must be a string"),
    ({"action": "mouse_move"}, "requires coordinate"),
    ({"action": "left_click", "coordinate": (1, 2, 3)}, "coordinate must be [x, y]"),
    ({"action": "left_click", "coordinate": "12"}, "coordinate must be [x, y]"),
    ({"action": "left_click", "coordinate": (True, 2)}, "must hold two numbers"),
    ({"action": "left_click", "coordinate": (float("nan"), 2)}, "must hold two numbers"),
    ({"action": "left_click", "coordinate": (10**400, 2)}, "must hold two numbers"),
    ({"action": "left_click", "coordinate": (1001, 2), "space": N}, "outside the 0..1000 grid"),
    ({"action": "left_click", "coordinate": (-1, 2), "space": "resized"}, "negative pixel coordinate"),
    ({"action": "left_click", "text": "x"}, "does not take text"),
    ({"action": "left_click_drag"}, "requires coordinate"),
    ({"action": "right_click", "coordinate2": (1, 1)}, "does not take coordinate2"),
    ({"action": "middle_click", "pixels": 3}, "does not take pixels"),
    ({"action": "double_click", "time": 1}, "does not take time"),
    ({"action": "triple_click", "keys": ("a",)}, "does not take keys"),
    ({"action": "scroll"}, "requires pixels"),
    ({"action": "scroll", "pixels": 0}, "must not be 0"),
    ({"action": "scroll", "pixels": 1.5}, "whole number"),
    ({"action": "hscroll", "pixels": "5"}, "pixels must be a number"),
    ({"action": "hscroll", "pixels": 10**400}, "pixels must be a number"),
    ({"action": "wait", "time": 61}, "within 0..60"),
    ({"action": "wait", "time": -0.1}, "within 0..60"),
    ({"action": "wait", "time": True}, "time must be a number"),
    ({"action": "terminate"}, "requires status"),
    ({"action": "terminate", "status": "done"}, "'success' or 'failure'"),
    ({"action": "answer"}, "requires text"),
    ({"action": "answer", "text": ""}, "must not be empty"),
    ({"action": "click"}, "requires coordinate"),
    ({"action": "long_press"}, "requires coordinate"),
    ({"action": "swipe", "coordinate": (1, 1)}, "requires coordinate2"),
    ({"action": "system_button"}, "requires button"),
    ({"action": "system_button", "button": "back"}, "must be one of Back, Home, Menu, Enter"),
    ({"action": "open"}, "requires text"),
    ({"action": "open", "text": ""}, "must not be empty"),
    ({"action": "call_user", "coordinate": (1, 1)}, "does not take coordinate"),
])
def test_invalid_actions_raise_action_error(kwargs, message):
    with pytest.raises(ActionError) as info:
        Action(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_every_action_name_has_a_valid_minimal_form():
    minimal = {
        "key": {"keys": ("Return",)}, "type": {"text": "x"}, "mouse_move": {"coordinate": (1, 1)},
        "left_click_drag": {"coordinate": (1, 1)}, "scroll": {"pixels": 1}, "hscroll": {"pixels": -1},
        "terminate": {"status": "success"}, "answer": {"text": "a"}, "click": {"coordinate": (1, 1)},
        "long_press": {"coordinate": (1, 1)}, "swipe": {"coordinate": (1, 1), "coordinate2": (2, 2)},
        "system_button": {"button": "Home"}, "open": {"text": "Clock"},
    }
    for name in ALL_ACTIONS:
        assert Action(name, **minimal.get(name, {})).action == name
    assert set(COMPUTER_ACTIONS) | set(MOBILE_ACTIONS) == set(ALL_ACTIONS)
    assert "call_user" in COMPUTER_ACTIONS and "call_user" in MOBILE_ACTIONS


def test_values_are_normalised():
    a = Action("key", keys=[" ctrl ", "c"], space=N)
    assert a.keys == ("ctrl", "c")
    s = Action("scroll", pixels=3.0, coordinate=[1, 2], space=N)
    assert s.pixels == 3 and isinstance(s.pixels, int) and s.coordinate == (1.0, 2.0)
    assert Action("wait", time=2).time == 2.0


def test_arguments_are_in_schema_order_and_lossless():
    a = Action("left_click_drag", coordinate=(512, 300.125), coordinate2=(3, 4), space=N)
    args = a.arguments()
    assert list(args) == ["action", "coordinate", "coordinate2"]
    assert args["coordinate"] == [512, 300.125] and isinstance(args["coordinate"][0], int)
    assert Action("wait", time=0.125).arguments() == {"action": "wait", "time": 0.125}


def test_to_dict_from_dict_round_trip_through_json_with_mapping():
    mapping = CoordMapping(space=N, model=(500.0, 500.0), model2=None, factor_x=1.92, factor_y=1.08, offset_x=1920,
                           offset_y=0, scale=2.0, image_size=(3840, 2160))
    a = Action("left_click", coordinate=(2880, 540), space="screen", mapping=mapping)
    data = json.loads(json.dumps(a.to_dict()))
    back = Action.from_dict(data)
    assert back == a and back.space == "screen" and back.mapping == mapping


def test_from_dict_rejects_junk():
    with pytest.raises(ActionError, match="needs an 'action' field"):
        Action.from_dict({"coordinate": [1, 2]})
    with pytest.raises(ActionError, match="unknown argument"):
        Action.from_dict({"action": "wait", "colour": "red"})


def test_summary_is_one_short_line():
    assert Action("left_click", coordinate=(512, 300), space=N).summary() == "left_click [512, 300]"
    assert Action("key", keys=("ctrl", "c")).summary() == "key ctrl+c"
    long = Action("type", text="x" * 500 + "\n").summary()
    assert len(long) < 80 and "\n" not in long
    assert Action("terminate", status="success").is_final and not Action("wait").is_final
