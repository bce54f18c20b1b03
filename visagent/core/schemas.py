"""Tool schemas for Qwen's `computer_use` and `mobile_use` tools, in OpenAI function-tool form.

Argument names and action descriptions follow Qwen's own agent cookbooks (Qwen2.5-VL / Qwen3-VL), which
the models were trained on; only `call_user` (hand control to the human) and `answer` on mobile are ours.
The description states the screen size the model must assume for the chosen coordinate space:
norm1000 → 1000x1000, resized → the smart-resized image, absolute → the screenshot.

Prompt profiles (`PROMPT_PROFILES`): "full" is the cookbook text above (what Qwen3.5 and other released
models expect); "compact" keeps the same tool name, argument names and action enum with one-line
descriptions (~110 instead of ~900 tokens), for small models trained on it (the shipped tiny checkpoint
declares it in its `visagent.json`; see `engine.checkpoint`); "compact-task-first" is "compact" with each
turn's text placed before its screenshot, so that (causal attention) the screenshot's tokens can read the
task — an experiment for small models, see docs/training.md.
"""

from __future__ import annotations

from typing import Any

from visagent.core.actions import COMPUTER_ACTIONS, MOBILE_ACTIONS, SYSTEM_BUTTONS, TERMINATE_STATUSES
from visagent.core.errors import ConfigError

COMPUTER_TOOL = "computer_use"
MOBILE_TOOL = "mobile_use"
PROMPT_PROFILES: tuple[str, ...] = ("full", "compact", "compact-task-first")
#: Profiles with the compact system prompt and tool schema.
COMPACT_PROFILES: tuple[str, ...] = ("compact", "compact-task-first")
#: Profiles that put each turn's text before its screenshot.
TASK_FIRST_PROFILES: tuple[str, ...] = ("compact-task-first",)

_COMPUTER_INTRO = """\
Use a mouse and keyboard to interact with a computer, and take screenshots.
* This is an interface to a desktop GUI. You do not have access to a terminal or applications menu. You must click on desktop icons to start applications.
* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions. E.g. if you click on Firefox and a window doesn't open, try wait and taking another screenshot.
* The screen's resolution is {width}x{height}.
* Whenever you intend to move the cursor to click on an element like an icon, you should consult a screenshot to determine the coordinates of the element before moving the cursor.
* If you tried clicking on a program or link but it failed to load, even after waiting, try adjusting your cursor position so that the tip of the cursor visually falls on the element that you want to click.
* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges."""

_MOBILE_INTRO = """\
Use a touchscreen to interact with a mobile device, and take screenshots.
* This is an interface to a mobile device with touchscreen. You can perform actions like clicking, typing, swiping, etc.
* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions.
* The screen's resolution is {width}x{height}.
* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges unless asked."""

_CALL_USER = ("* `call_user`: Hand control to the user when the task needs them (a login, a payment, a CAPTCHA) "
              "or cannot go on; say why in `text`.")

_COMPUTER_ACTIONS_DOC = """\
The action to perform. The available actions are:
* `key`: Performs key down presses on the arguments passed in order, then performs key releases in reverse order.
* `type`: Type a string of text on the keyboard.
* `mouse_move`: Move the cursor to a specified (x, y) pixel coordinate on the screen.
* `left_click`: Click the left mouse button at a specified (x, y) pixel coordinate on the screen.
* `left_click_drag`: Click and drag the cursor to a specified (x, y) pixel coordinate on the screen.
* `right_click`: Click the right mouse button at a specified (x, y) pixel coordinate on the screen.
* `middle_click`: Click the middle mouse button at a specified (x, y) pixel coordinate on the screen.
* `double_click`: Double-click the left mouse button at a specified (x, y) pixel coordinate on the screen.
* `triple_click`: Triple-click the left mouse button at a specified (x, y) pixel coordinate on the screen.
* `scroll`: Performs a scroll of the mouse scroll wheel.
* `hscroll`: Performs a horizontal scroll.
* `wait`: Wait specified seconds for the change to happen.
* `terminate`: Terminate the current task and report its completion status.
* `answer`: Answer a question.
""" + _CALL_USER

_MOBILE_ACTIONS_DOC = """\
The action to perform. The available actions are:
* `key`: Perform a key event on the mobile device.
    - This supports adb's `keyevent` syntax.
    - Examples: "volume_up", "volume_down", "power", "camera", "clear".
* `click`: Click the point on the screen with coordinate (x, y).
* `long_press`: Press the point on the screen with coordinate (x, y) for specified seconds.
* `swipe`: Swipe from the starting point with coordinate (x, y) to the end point with coordinates2 (x2, y2).
* `type`: Input the specified text into the activated input box.
* `system_button`: Press the system button.
* `open`: Open an app on the device.
* `wait`: Wait specified seconds for the change to happen.
* `terminate`: Terminate the current task and report its completion status.
* `answer`: Answer a question.
""" + _CALL_USER

_SPACE_NOTE = {
    "norm1000": "Coordinates are on a 0..1000 grid over the screenshot: (0, 0) is the top-left corner, "
                "(1000, 1000) the bottom-right.",
    "resized": "Coordinates are pixels of the screenshot as you see it.",
    "absolute": "Coordinates are pixels of the screenshot.",
}


def computer_use_tool(space: str, width: int, height: int) -> dict[str, Any]:
    """The `computer_use` tool for a desktop, as `{"type": "function", "function": {...}}`.

    `width`/`height`: the image size in `space` — the smart-resized size for "resized", the screenshot
    size for "absolute"; ignored for "norm1000" (the model assumes 1000x1000). Raises ConfigError.
    """
    w, h = _assumed_size(space, width, height)
    params: dict[str, Any] = {
        "properties": {
            "action": {"description": _COMPUTER_ACTIONS_DOC, "enum": list(COMPUTER_ACTIONS), "type": "string"},
            "keys": {"description": "Required only by `action=key`.", "type": "array"},
            "text": {"description": "Required only by `action=type` and `action=answer`.", "type": "string"},
            "coordinate": {
                "description": "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) "
                               "coordinates to move the mouse to.",
                "type": "array",
            },
            "pixels": {
                "description": "The amount of scrolling to perform. Positive values scroll up, negative values "
                               "scroll down. Required only by `action=scroll` and `action=hscroll`.",
                "type": "number",
            },
            "time": {"description": "The seconds to wait. Required only by `action=wait`.", "type": "number"},
            "status": {
                "description": "The status of the task. Required only by `action=terminate`.",
                "type": "string",
                "enum": list(TERMINATE_STATUSES),
            },
        },
        "required": ["action"],
        "type": "object",
    }
    description = _COMPUTER_INTRO.format(width=w, height=h) + "\n* " + _SPACE_NOTE[space]
    return _function(COMPUTER_TOOL, description, params)


def mobile_use_tool(space: str, width: int, height: int) -> dict[str, Any]:
    """The `mobile_use` tool for a phone, as `{"type": "function", "function": {...}}`.

    `width`/`height` as in `computer_use_tool`. Raises ConfigError.
    """
    w, h = _assumed_size(space, width, height)
    point = ("(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move "
             "the mouse to.")
    params: dict[str, Any] = {
        "properties": {
            "action": {"description": _MOBILE_ACTIONS_DOC, "enum": list(MOBILE_ACTIONS), "type": "string"},
            "coordinate": {
                "description": point + " Required only by `action=click`, `action=long_press`, and `action=swipe`.",
                "type": "array",
            },
            "coordinate2": {"description": point + " Required only by `action=swipe`.", "type": "array"},
            "text": {
                "description": "Required only by `action=key`, `action=type`, `action=open` and `action=answer`.",
                "type": "string",
            },
            "time": {
                "description": "The seconds to wait. Required only by `action=long_press` and `action=wait`.",
                "type": "number",
            },
            "button": {
                "description": "Back means returning to the previous interface, Home means returning to the "
                               "desktop, Menu means opening the application background menu, and Enter means "
                               "pressing the enter. Required only by `action=system_button`",
                "enum": list(SYSTEM_BUTTONS),
                "type": "string",
            },
            "status": {
                "description": "The status of the task. Required only by `action=terminate`.",
                "type": "string",
                "enum": list(TERMINATE_STATUSES),
            },
        },
        "required": ["action"],
        "type": "object",
    }
    description = _MOBILE_INTRO.format(width=w, height=h) + "\n* " + _SPACE_NOTE[space]
    return _function(MOBILE_TOOL, description, params)


def compact_tool(platform: str, space: str, width: int, height: int) -> dict[str, Any]:
    """The "compact" profile's tool: same name, arguments and action enum as the full one, one-line texts."""
    w, h = _assumed_size(space, width, height)
    name = tool_name_for(platform)
    actions = list(COMPUTER_ACTIONS if platform == "desktop" else MOBILE_ACTIONS)
    props: dict[str, Any] = {
        "action": {"enum": actions, "type": "string"},
        "coordinate": {"description": "[x, y]", "type": "array"},
        "text": {"type": "string"},
    }
    if platform == "desktop":
        props.update(keys={"type": "array"}, pixels={"type": "number"})
    else:
        props.update(coordinate2={"description": "[x, y] swipe end", "type": "array"},
                     button={"enum": list(SYSTEM_BUTTONS), "type": "string"})
    props.update(time={"type": "number"}, status={"enum": list(TERMINATE_STATUSES), "type": "string"})
    device = "desktop" if platform == "desktop" else "phone"
    description = f"Act on the {device} screen ({w}x{h}). " + _SPACE_NOTE[space]
    return _function(name, description, {"properties": props, "required": ["action"], "type": "object"})


def tool_for(platform: str, space: str, width: int, height: int, profile: str = "full") -> dict[str, Any]:
    """`computer_use_tool` for platform "desktop", `mobile_use_tool` for "phone" (`compact_tool` under the
    "compact" profile). Raises ConfigError."""
    if profile not in PROMPT_PROFILES:
        raise ConfigError(f"unknown prompt profile {profile!r}; expected one of: {', '.join(PROMPT_PROFILES)}")
    if platform not in ("desktop", "phone"):
        raise ConfigError(f"unknown platform {platform!r}; expected 'desktop' or 'phone'")
    if profile in COMPACT_PROFILES:
        return compact_tool(platform, space, width, height)
    if platform == "desktop":
        return computer_use_tool(space, width, height)
    return mobile_use_tool(space, width, height)


def tool_name_for(platform: str) -> str:
    """"computer_use" for "desktop", "mobile_use" for "phone". Raises ConfigError."""
    if platform not in ("desktop", "phone"):
        raise ConfigError(f"unknown platform {platform!r}; expected 'desktop' or 'phone'")
    return COMPUTER_TOOL if platform == "desktop" else MOBILE_TOOL


def _assumed_size(space: str, width: int, height: int) -> tuple[int, int]:
    if space not in _SPACE_NOTE:
        raise ConfigError(f"unknown coordinate space {space!r}; expected one of: {', '.join(_SPACE_NOTE)}")
    if space == "norm1000":
        return 1000, 1000
    if isinstance(width, bool) or not isinstance(width, int) or isinstance(height, bool) \
            or not isinstance(height, int) or width <= 0 or height <= 0:
        raise ConfigError(f"screen size must be two positive whole numbers, got {width!r}x{height!r}")
    return width, height


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
