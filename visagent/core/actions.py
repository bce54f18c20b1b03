"""The agent's vocabulary: one validated `Action` type for Qwen's `computer_use` and `mobile_use` actions.

An action's coordinates are in the coordinate space named by `space`:
- "norm1000": a 0..1000 grid over the image (Qwen3-VL, Qwen3.5),
- "resized": absolute pixels on the smart-resized image the model saw (Qwen2.5-VL, UI-TARS-1.5),
- "absolute": pixels of the screenshot / logical screen as the user gives them,
- "screen": global logical screen pixels, ready to execute (monitor offset applied).
`visagent.loop.coords.to_screen` converts to "screen" and records the model's point and the factors used in
`mapping`, so a trace shows both where the model pointed and where the click landed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from visagent.core.errors import ActionError

# computer_use actions (Qwen2.5-VL / Qwen3-VL / Qwen3.5 agent cookbooks)
KEY = "key"
TYPE = "type"
MOUSE_MOVE = "mouse_move"
LEFT_CLICK = "left_click"
LEFT_CLICK_DRAG = "left_click_drag"
RIGHT_CLICK = "right_click"
MIDDLE_CLICK = "middle_click"
DOUBLE_CLICK = "double_click"
TRIPLE_CLICK = "triple_click"
SCROLL = "scroll"
HSCROLL = "hscroll"
WAIT = "wait"
TERMINATE = "terminate"
ANSWER = "answer"
# mobile_use actions
CLICK = "click"
LONG_PRESS = "long_press"
SWIPE = "swipe"
SYSTEM_BUTTON = "system_button"
OPEN = "open"
# both: hand control to the human
CALL_USER = "call_user"

COMPUTER_ACTIONS: tuple[str, ...] = (
    KEY, TYPE, MOUSE_MOVE, LEFT_CLICK, LEFT_CLICK_DRAG, RIGHT_CLICK, MIDDLE_CLICK, DOUBLE_CLICK,
    TRIPLE_CLICK, SCROLL, HSCROLL, WAIT, TERMINATE, ANSWER, CALL_USER,
)
MOBILE_ACTIONS: tuple[str, ...] = (
    CLICK, LONG_PRESS, SWIPE, TYPE, KEY, SYSTEM_BUTTON, OPEN, WAIT, TERMINATE, ANSWER, CALL_USER,
)
ALL_ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(COMPUTER_ACTIONS + MOBILE_ACTIONS))

SYSTEM_BUTTONS: tuple[str, ...] = ("Back", "Home", "Menu", "Enter")
TERMINATE_STATUSES: tuple[str, ...] = ("success", "failure")
POINTER_ACTIONS: frozenset[str] = frozenset(
    {MOUSE_MOVE, LEFT_CLICK, LEFT_CLICK_DRAG, RIGHT_CLICK, MIDDLE_CLICK, DOUBLE_CLICK, TRIPLE_CLICK, CLICK,
     LONG_PRESS, SWIPE}
)
#: Actions that end an episode.
FINAL_ACTIONS: frozenset[str] = frozenset({TERMINATE, ANSWER})

Space = Literal["norm1000", "resized", "absolute", "screen"]
SPACES: tuple[str, ...] = ("norm1000", "resized", "absolute", "screen")
Platform = Literal["desktop", "phone"]

# Which arguments each action requires and allows (besides `action`).
_REQUIRED: dict[str, frozenset[str]] = {
    KEY: frozenset(),  # keys (computer_use) or text (mobile_use): checked below
    TYPE: frozenset({"text"}),
    MOUSE_MOVE: frozenset({"coordinate"}),
    LEFT_CLICK: frozenset(),
    LEFT_CLICK_DRAG: frozenset({"coordinate"}),
    RIGHT_CLICK: frozenset(),
    MIDDLE_CLICK: frozenset(),
    DOUBLE_CLICK: frozenset(),
    TRIPLE_CLICK: frozenset(),
    SCROLL: frozenset({"pixels"}),
    HSCROLL: frozenset({"pixels"}),
    WAIT: frozenset(),
    TERMINATE: frozenset({"status"}),
    ANSWER: frozenset({"text"}),
    CLICK: frozenset({"coordinate"}),
    LONG_PRESS: frozenset({"coordinate"}),
    SWIPE: frozenset({"coordinate", "coordinate2"}),
    SYSTEM_BUTTON: frozenset({"button"}),
    OPEN: frozenset({"text"}),
    CALL_USER: frozenset(),
}
_ALLOWED: dict[str, frozenset[str]] = {
    KEY: frozenset({"keys", "text"}),
    TYPE: frozenset({"text", "coordinate"}),
    MOUSE_MOVE: frozenset({"coordinate"}),
    LEFT_CLICK: frozenset({"coordinate", "keys"}),
    LEFT_CLICK_DRAG: frozenset({"coordinate", "coordinate2"}),
    RIGHT_CLICK: frozenset({"coordinate"}),
    MIDDLE_CLICK: frozenset({"coordinate"}),
    DOUBLE_CLICK: frozenset({"coordinate"}),
    TRIPLE_CLICK: frozenset({"coordinate"}),
    SCROLL: frozenset({"pixels", "coordinate"}),
    HSCROLL: frozenset({"pixels", "coordinate"}),
    WAIT: frozenset({"time"}),
    TERMINATE: frozenset({"status", "text"}),
    ANSWER: frozenset({"text"}),
    CLICK: frozenset({"coordinate"}),
    LONG_PRESS: frozenset({"coordinate", "time"}),
    SWIPE: frozenset({"coordinate", "coordinate2", "time"}),
    SYSTEM_BUTTON: frozenset({"button"}),
    OPEN: frozenset({"text"}),
    CALL_USER: frozenset({"text"}),
}
ARGUMENTS: tuple[str, ...] = ("coordinate", "coordinate2", "text", "keys", "pixels", "time", "button", "status")

Point = tuple[float, float]


@dataclass(frozen=True)
class CoordMapping:
    """How a model point became a screen point: screen ≈ offset + model * factor (per axis; the exact
    rounding is in `visagent.loop.coords`).

    `model` / `model2` are the points as the model wrote them (in `space`); factors are screen logical pixels
    per model unit; `scale` is physical/logical pixels of the monitor (HiDPI); offsets are the monitor origin.
    """

    space: str
    model: Point | None
    model2: Point | None
    factor_x: float
    factor_y: float
    offset_x: int
    offset_y: int
    scale: float
    image_size: tuple[int, int]  # screenshot size in physical pixels, as the model saw it before resize
    resized_size: tuple[int, int] | None = None  # smart-resized size ("resized" space only)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoordMapping:
        def pt(v: Any) -> Point | None:
            return None if v is None else (float(v[0]), float(v[1]))

        return cls(
            space=data["space"], model=pt(data.get("model")), model2=pt(data.get("model2")),
            factor_x=float(data["factor_x"]), factor_y=float(data["factor_y"]),
            offset_x=int(data["offset_x"]), offset_y=int(data["offset_y"]), scale=float(data["scale"]),
            image_size=tuple(data["image_size"]),  # type: ignore[arg-type]
            resized_size=None if data.get("resized_size") is None else tuple(data["resized_size"]),  # type: ignore[arg-type]
        )


#: The most wheel clicks one scroll action turns. `pixels` counts wheel clicks (Qwen's computer_use reference agents
#: run `pyautogui.scroll(pixels)`); a larger amount (a model answering `pixels: 1e9`) is capped here, told to the
#: model and recorded, instead of flooding the screen with scroll events.
MAX_SCROLL_CLICKS = 50

#: Actions with exactly one point, which a model's pointing head may set.
HEAD_ACTIONS: frozenset[str] = frozenset({MOUSE_MOVE, LEFT_CLICK, RIGHT_CLICK, MIDDLE_CLICK, DOUBLE_CLICK, TRIPLE_CLICK,
                                          CLICK, LONG_PRESS})


def scroll_clicks(pixels: int) -> int:
    """Wheel clicks a scroll of `pixels` turns: the amount itself (sign kept: positive scrolls up / left), at most
    MAX_SCROLL_CLICKS either way. Every executor scrolls by this (the sim and a phone turn clicks into distance)."""
    n = min(abs(int(pixels)), MAX_SCROLL_CLICKS)
    return n if pixels > 0 else -n


def scroll_note(pixels: int) -> str:
    """"" when `pixels` is executed as given, else one sentence saying it was capped (for the model and logs)."""
    clicks = scroll_clicks(pixels)
    if clicks == int(pixels):
        return ""
    return f"Scrolled {abs(clicks)} wheel clicks, the most one scroll action turns."


@dataclass(frozen=True)
class Action:
    """One validated agent action. Raises ActionError (a ValueError) on construction when invalid.

    Argument names follow Qwen's tool schemas: `coordinate` (x, y), `coordinate2` (drag/swipe end),
    `text`, `keys` (key combo, e.g. ("ctrl", "c")), `pixels` (scroll amount in mouse-wheel clicks, as Qwen's
    reference agents execute it with `pyautogui.scroll(pixels)`; positive scrolls up / left; see `scroll_clicks`),
    `time` (seconds), `button` (Back/Home/Menu/Enter), `status` (success/failure).
    `left_click_drag` with only `coordinate` drags from the current pointer position to it (Qwen's
    computer_use); with `coordinate2` too it drags from `coordinate` to `coordinate2` (like `swipe`).
    """

    action: str
    coordinate: Point | None = None
    coordinate2: Point | None = None
    text: str | None = None
    keys: tuple[str, ...] | None = None
    pixels: int | None = None
    time: float | None = None
    button: str | None = None
    status: str | None = None
    space: str = "absolute"
    mapping: CoordMapping | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        name = self.action
        if not isinstance(name, str) or name not in _REQUIRED:
            raise ActionError(f"unknown action {name!r}; expected one of: {', '.join(ALL_ACTIONS)}")
        if self.space not in SPACES:
            raise ActionError(f"unknown coordinate space {self.space!r}; expected one of: {', '.join(SPACES)}")
        given = {a for a in ARGUMENTS if getattr(self, a) is not None}
        missing = _REQUIRED[name] - given
        if missing:
            raise ActionError(f"action {name!r} requires {', '.join(sorted(missing))}")
        extra = given - _ALLOWED[name]
        if extra:
            raise ActionError(f"action {name!r} does not take {', '.join(sorted(extra))}")
        for arg in ("coordinate", "coordinate2"):
            value = getattr(self, arg)
            if value is not None:
                object.__setattr__(self, arg, _check_point(name, arg, value, self.space))
        if self.text is not None and not isinstance(self.text, str):
            raise ActionError(f"action {name!r}: text must be a string, got {type(self.text).__name__}")
        if name == KEY:
            if self.keys is None and self.text is None:
                raise ActionError("action 'key' requires keys (computer_use) or text (mobile_use)")
        if self.keys is not None:
            keys = self.keys
            if isinstance(keys, str) or not isinstance(keys, (list, tuple)) or not keys:
                raise ActionError(f"action {name!r}: keys must be a non-empty list of key names, got {keys!r}")
            if not all(isinstance(k, str) and k.strip() for k in keys):
                raise ActionError(f"action {name!r}: every key must be a non-empty string, got {list(keys)!r}")
            object.__setattr__(self, "keys", tuple(k.strip() for k in keys))
        if name in (ANSWER, OPEN) and self.text == "":
            raise ActionError(f"action {name!r}: text must not be empty")
        if self.pixels is not None:
            if not _is_finite_number(self.pixels):
                raise ActionError(f"action {name!r}: pixels must be a number, got {self.pixels!r}")
            if float(self.pixels) != int(self.pixels):
                raise ActionError(f"action {name!r}: pixels must be a whole number, got {self.pixels!r}")
            if self.pixels == 0:
                raise ActionError(f"action {name!r}: pixels must not be 0 (positive scrolls up, negative down)")
            object.__setattr__(self, "pixels", int(self.pixels))
        if self.time is not None:
            if not _is_finite_number(self.time):
                raise ActionError(f"action {name!r}: time must be a number of seconds, got {self.time!r}")
            if not 0 <= self.time <= 60:
                raise ActionError(f"action {name!r}: time must be within 0..60 seconds, got {self.time}")
            object.__setattr__(self, "time", float(self.time))
        if self.button is not None and self.button not in SYSTEM_BUTTONS:
            raise ActionError(f"system_button must be one of {', '.join(SYSTEM_BUTTONS)}, got {self.button!r}")
        if self.status is not None and self.status not in TERMINATE_STATUSES:
            raise ActionError(f"terminate status must be 'success' or 'failure', got {self.status!r}")

    # -- views -----------------------------------------------------------------------------------
    @property
    def is_final(self) -> bool:
        return self.action in FINAL_ACTIONS

    def arguments(self) -> dict[str, Any]:
        """The tool-call arguments in Qwen's schema order (`action` first; coordinates as [x, y] lists, whole
        numbers as ints, other values exact)."""
        args: dict[str, Any] = {"action": self.action}
        for name in ARGUMENTS:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("coordinate", "coordinate2"):
                value = [_exact(value[0]), _exact(value[1])]
            elif name == "keys":
                value = list(value)
            elif name == "time":
                value = _exact(value)
            args[name] = value
        return args

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the arguments plus `space` and, when converted, `mapping`."""
        data = self.arguments()
        data["space"] = self.space
        if self.mapping is not None:
            data["mapping"] = self.mapping.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        """Inverse of `to_dict` (also accepts plain tool-call arguments). Raises ActionError."""
        if not isinstance(data, dict) or "action" not in data:
            raise ActionError(f"an action needs an 'action' field, got {data!r}")
        unknown = set(data) - set(ARGUMENTS) - {"action", "space", "mapping"}
        if unknown:
            raise ActionError(f"action {data.get('action')!r}: unknown argument(s) {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {k: data[k] for k in ARGUMENTS if data.get(k) is not None}
        if "keys" in kwargs and isinstance(kwargs["keys"], list):
            kwargs["keys"] = tuple(kwargs["keys"])
        mapping = CoordMapping.from_dict(data["mapping"]) if data.get("mapping") else None
        return cls(action=data["action"], space=data.get("space", "absolute"), mapping=mapping, **kwargs)

    def with_(self, **changes: Any) -> Action:
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """One line for history prompts and logs, e.g. `left_click [512, 300]`."""
        parts = [self.action]
        for name in ARGUMENTS:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("coordinate", "coordinate2"):
                parts.append(f"[{_num(value[0])}, {_num(value[1])}]")
            elif name == "keys":
                parts.append("+".join(value))
            elif name == "text":
                shown = value if len(value) <= 60 else value[:57] + "..."
                parts.append(repr(shown))
            else:
                parts.append(f"{name}={value}")
        return " ".join(parts)


def _is_finite_number(v: Any) -> bool:
    """True for a finite int/float (not bool); False for ints too large for a float (no OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _exact(v: float) -> int | float:
    """A whole number as int (what models write), anything else unchanged (lossless)."""
    return int(v) if float(v).is_integer() else float(v)


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 2)


def _check_point(name: str, arg: str, value: Any, space: str) -> Point:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ActionError(f"action {name!r}: {arg} must be [x, y], got {value!r}")
    out = []
    for v in value:
        if not _is_finite_number(v):
            raise ActionError(f"action {name!r}: {arg} must hold two numbers, got {list(value)!r}")
        out.append(float(v))
    x, y = out
    if space == "norm1000" and not (0 <= x <= 1000 and 0 <= y <= 1000):
        raise ActionError(f"{arg} [{_num(x)}, {_num(y)}] is outside the 0..1000 grid")
    if space in ("resized", "absolute") and (x < 0 or y < 0):
        raise ActionError(f"{arg} [{_num(x)}, {_num(y)}] has a negative pixel coordinate")
    return (x, y)
