"""UI-TARS text actions: `Thought: …` then `Action: click(point='<point>x y</point>')`, parsed and rendered.

Points may be written `<point>x y</point>`, `(x,y)`, `<|box_start|>(x,y)<|box_end|>` or as a box
`(x1,y1,x2,y2)` / `[x1, y1, x2, y2]` (its centre is used). Coordinates stay in the model's space (UI-TARS-1.5:
pixels of the resized image; UI-TARS-1: a 0..1000 grid). Strings use Python escapes (\\n, \\', \\", \\\\).
Desktop and phone differ in what `click` and `drag` mean, so parsing takes the platform.
Raises `ParseError` only (rendering raises `ActionError` for an action UI-TARS cannot express).
"""

from __future__ import annotations

import re
from typing import Any

from visagent.core.actions import (
    CALL_USER, CLICK, DOUBLE_CLICK, HSCROLL, KEY, LEFT_CLICK, LEFT_CLICK_DRAG, LONG_PRESS, MOUSE_MOVE, OPEN,
    RIGHT_CLICK, SCROLL, SWIPE, SYSTEM_BUTTON, TERMINATE, TYPE, WAIT, Action,
)
from visagent.core.errors import ActionError, ParseError
from visagent.loop.parsing.arguments import show

#: Scroll amount (Qwen `pixels`) of one UI-TARS `scroll(direction=...)`; UI-TARS gives no amount.
UITARS_SCROLL_PIXELS = 5
#: UI-TARS `wait()` sleeps 5 s by its own prompt.
UITARS_WAIT_SECONDS = 5.0

_POINT_KEYS = ("point", "start_box", "start_point")
_END_KEYS = ("end_point", "end_box")
#: UI-TARS function → accepted keyword arguments.
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "click": _POINT_KEYS, "left_single": _POINT_KEYS, "left_double": _POINT_KEYS,
    "right_single": _POINT_KEYS, "hover": _POINT_KEYS, "mouse_move": _POINT_KEYS,
    "long_press": _POINT_KEYS + ("time",),
    "drag": _POINT_KEYS + _END_KEYS, "select": _POINT_KEYS + _END_KEYS,
    "scroll": _POINT_KEYS + ("direction",),
    "hotkey": ("key",), "type": ("content",), "wait": (), "finished": ("content",),
    "call_user": ("content",), "open_app": ("app_name",), "press_back": (), "press_home": (),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACTION_LINE = re.compile(r"(?m)^[ \t]*Action[ \t]*:[ \t]*")
_LABEL = re.compile(r"Action[ \t]*:")
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*")
_CALL_START = re.compile(r"(?m)^[ \t]*(" + "|".join(_SIGNATURES) + r")[ \t]*\(")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")
# Scanning works on positions in the one text (pattern.match(text, i)), never on copies of its rest, so the
# work is linear in the length of the answer.
_BARE = re.compile(r"[^,()\s'\"]+")
_WS = re.compile(r"\s*")
_PLAIN = {"'": re.compile(r"[^'\\]*"), '"': re.compile(r'[^"\\]*')}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def looks_like_uitars(answer: str) -> bool:
    """Whether `answer` opens with `Thought:`, has an `Action:` line or starts a line with a UI-TARS call."""
    return bool(_THOUGHT.match(answer) or _ACTION_LINE.search(answer) or _CALL_START.search(answer))


def split_uitars(answer: str) -> tuple[str, str]:
    """(thought, action section): the text before the first `Action:` line without its `Thought:` label,
    and the text after it. Without an `Action:` line, the whole answer is the action section."""
    m = _ACTION_LINE.search(answer)
    if m is None:
        if _THOUGHT.match(answer):
            raise ParseError("no Action: line found; answer with Thought: ... then Action: click(point='<point>x y</point>')")
        return "", answer
    return _THOUGHT.sub("", answer[: m.start()], count=1).strip(), answer[m.end():]


def parse_uitars(section: str, space: str, platform: str) -> list[Action]:
    """Every call in an action section (separated by whitespace), in order, as Actions in `space`."""
    calls = _scan_calls(section)
    if not calls:
        raise ParseError("no action found: answer with Thought: ... then Action: click(point='<point>x y</point>')")
    out = []
    for name, kwargs in calls:
        try:
            out.append(_to_action(name, kwargs, space, platform))
        except ActionError as exc:
            raise ParseError(f"{name}(): {exc}") from None
    return out


# -- scanning ----------------------------------------------------------------------------------------------


def _scan_calls(text: str) -> list[tuple[str, dict[str, str]]]:
    calls: list[tuple[str, dict[str, str]]] = []
    i = _skip_ws(text, 0)
    while i < len(text):
        label = _LABEL.match(text, i)  # "Action:" repeated before a later call
        if label is not None and calls:
            i = _skip_ws(text, label.end())
            continue
        m = _NAME.match(text, i)
        j = _skip_ws(text, m.end()) if m else i
        if m is None or j >= len(text) or text[j] != "(":
            if m is not None and j >= len(text):
                raise ParseError(f"truncated action: {m.group()} has no argument list (...)")
            raise ParseError(f"expected a call like click(point='<point>x y</point>'), got {show(text[i:i + 40])}")
        name = m.group()
        kwargs, i = _scan_arguments(text, j + 1, name)
        calls.append((name, kwargs))
        i = _skip_ws(text, i)
    return calls


def _scan_arguments(text: str, i: int, name: str) -> tuple[dict[str, str], int]:
    kwargs: dict[str, str] = {}
    while True:
        i = _skip_ws(text, i)
        if i >= len(text):
            raise ParseError(f"truncated action: {name}( is not closed by ')'")
        if text[i] == ")":
            return kwargs, i + 1
        m = _NAME.match(text, i)
        if m is None:
            raise ParseError(f"{name}(): expected keyword=value, got {show(text[i:i + 30])}")
        key = m.group()
        i = _skip_ws(text, m.end())
        if i >= len(text) or text[i] != "=":
            raise ParseError(f"{name}(): expected {key}=value, got {show(text[m.start():m.start() + 30])}")
        i = _skip_ws(text, i + 1)
        if i < len(text) and text[i] in "'\"":
            value, i = _scan_string(text, i, name)
        else:
            bare = _BARE.match(text, i)
            if bare is None:
                raise ParseError(f"{name}(): {key}= has no value")
            value, i = bare.group(), bare.end()
        if key in kwargs:
            raise ParseError(f"{name}(): {key} given twice")
        kwargs[key] = value
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i += 1
        elif i < len(text) and text[i] != ")":
            raise ParseError(f"{name}(): expected ',' or ')' after {key}=..., got {show(text[i:i + 30])}")


def _scan_string(text: str, i: int, name: str) -> tuple[str, int]:
    quote = text[i]
    plain = _PLAIN[quote]
    out: list[str] = []
    i += 1
    while i < len(text):
        run = plain.match(text, i)  # everything up to the next quote or backslash, in one step
        out.append(run.group())  # type: ignore[union-attr]
        i = run.end()  # type: ignore[union-attr]
        if i >= len(text):
            break
        if text[i] == quote:
            return "".join(out), i + 1
        if i + 1 < len(text):  # a backslash escape
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append("\\")
        i += 1
    raise ParseError(f"truncated action: a string in {name}(...) is not closed by {quote}")


def _skip_ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]


# -- meaning -----------------------------------------------------------------------------------------------


def _to_action(name: str, kwargs: dict[str, str], space: str, platform: str) -> Action:
    if name not in _SIGNATURES:
        raise ParseError(f"unknown action {show(name)}; expected one of: {', '.join(_SIGNATURES)}")
    for key in kwargs:
        if key not in _SIGNATURES[name]:
            allowed = ", ".join(_SIGNATURES[name]) or "no arguments"
            raise ParseError(f"{name}() does not take {key!r}; it takes {allowed}")
    phone = platform == "phone"
    if name in ("click", "left_single", "left_double", "right_single", "hover", "mouse_move", "long_press"):
        point = _point(name, _one_of(name, kwargs, _POINT_KEYS, required=True))
        action = {"click": CLICK if phone else LEFT_CLICK, "left_single": LEFT_CLICK, "left_double": DOUBLE_CLICK,
                  "right_single": RIGHT_CLICK, "hover": MOUSE_MOVE, "mouse_move": MOUSE_MOVE,
                  "long_press": LONG_PRESS}[name]
        time = _seconds(name, kwargs["time"]) if kwargs.get("time", "").strip() else None
        return Action(action, coordinate=point, time=time, space=space)
    if name in ("drag", "select"):
        start = _point(name, _one_of(name, kwargs, _POINT_KEYS, required=True))
        end = _point(name, _one_of(name, kwargs, _END_KEYS, required=True))
        return Action(SWIPE if phone else LEFT_CLICK_DRAG, coordinate=start, coordinate2=end, space=space)
    if name == "scroll":
        raw = _one_of(name, kwargs, _POINT_KEYS, required=False)
        point = None if raw is None else _point(name, raw)
        direction = _required(name, kwargs, "direction").strip().lower()
        signs = {"up": (SCROLL, 1), "down": (SCROLL, -1), "left": (HSCROLL, 1), "right": (HSCROLL, -1)}
        if direction not in signs:
            raise ParseError(f"scroll(): direction must be up, down, left or right, got {show(direction)}")
        kind, sign = signs[direction]
        return Action(kind, coordinate=point, pixels=sign * UITARS_SCROLL_PIXELS, space=space)
    if name == "hotkey":
        keys = tuple(_required(name, kwargs, "key").split())
        if not keys:
            raise ParseError("hotkey(): key must name keys split by spaces, like key='ctrl c'")
        return Action(KEY, keys=keys, space=space)
    if name == "type":
        return Action(TYPE, text=_required(name, kwargs, "content"), space=space)
    if name == "wait":
        return Action(WAIT, time=UITARS_WAIT_SECONDS, space=space)
    if name == "finished":
        return Action(TERMINATE, status="success", text=kwargs.get("content"), space=space)
    if name == "call_user":
        return Action(CALL_USER, text=kwargs.get("content"), space=space)
    if name == "open_app":
        return Action(OPEN, text=_required(name, kwargs, "app_name"), space=space)
    return Action(SYSTEM_BUTTON, button="Back" if name == "press_back" else "Home", space=space)


def _required(name: str, kwargs: dict[str, str], key: str) -> str:
    if key not in kwargs:
        raise ParseError(f"{name}() requires {key}=...")
    return kwargs[key]


def _one_of(name: str, kwargs: dict[str, str], keys: tuple[str, ...], *, required: bool) -> str | None:
    given = [k for k in keys if k in kwargs]
    if len(given) > 1:
        raise ParseError(f"{name}(): give only one of {', '.join(given)}")
    if not given:
        if required:
            raise ParseError(f"{name}() requires {keys[0]}='<point>x y</point>'")
        return None
    return kwargs[given[0]]


def _point(name: str, raw: str) -> tuple[float, float]:
    """`<point>x y</point>`, `(x,y)`, `<|box_start|>(x,y)<|box_end|>`, or a 4-number box (its centre)."""
    text = raw
    for tag in ("<|box_start|>", "<|box_end|>", "<point>", "</point>", "<bbox>", "</bbox>"):
        text = text.replace(tag, " ")
    text = text.strip()
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")):
        text = text[1:-1]
    parts = [p for p in re.split(r"[\s,]+", text) if p]
    if len(parts) not in (2, 4) or not all(_NUMBER.match(p) for p in parts):
        raise ParseError(f"{name}(): a point must look like '<point>x y</point>' or '(x,y)', got {show(raw)}")
    nums = [float(p) for p in parts]
    if len(nums) == 4:
        return ((nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2)
    return (nums[0], nums[1])


def _seconds(name: str, raw: str) -> float:
    if not _NUMBER.match(raw.strip()):
        raise ParseError(f"{name}(): time must be a number of seconds, got {show(raw)}")
    return float(raw.strip())


# -- rendering ---------------------------------------------------------------------------------------------


def render_uitars(action: Action) -> str:
    """`Action: name(...)` for one action; raises ActionError when UI-TARS cannot express it exactly."""
    a = action
    call: str | None = None
    pt = f"point='{_render_point(a.coordinate)}'" if a.coordinate is not None else None
    if a.action in (LEFT_CLICK, CLICK) and a.keys is None and pt:
        call = f"click({pt})"
    elif a.action == DOUBLE_CLICK and pt:
        call = f"left_double({pt})"
    elif a.action == RIGHT_CLICK and pt:
        call = f"right_single({pt})"
    elif a.action == MOUSE_MOVE and pt:
        call = f"hover({pt})"
    elif a.action == LONG_PRESS and pt:
        call = f"long_press({pt}" + ("" if a.time is None else f", time='{_num(a.time)}'") + ")"
    elif a.action in (LEFT_CLICK_DRAG, SWIPE) and a.coordinate2 is not None and a.time is None:
        call = f"drag(start_point='{_render_point(a.coordinate)}', end_point='{_render_point(a.coordinate2)}')"
    elif a.action in (SCROLL, HSCROLL) and abs(a.pixels or 0) == UITARS_SCROLL_PIXELS:
        direction = {(SCROLL, True): "up", (SCROLL, False): "down", (HSCROLL, True): "left",
                     (HSCROLL, False): "right"}[(a.action, (a.pixels or 0) > 0)]
        call = f"scroll({pt + ', ' if pt else ''}direction='{direction}')"
    elif a.action == KEY and a.keys is not None and all(" " not in k for k in a.keys):
        call = f"hotkey(key='{_escape(' '.join(a.keys))}')"
    elif a.action == TYPE and a.coordinate is None:
        call = f"type(content='{_escape(a.text or '')}')"
    elif a.action == WAIT and a.time == UITARS_WAIT_SECONDS:
        call = "wait()"
    elif a.action == TERMINATE and a.status == "success":
        call = "finished()" if a.text is None else f"finished(content='{_escape(a.text)}')"
    elif a.action == CALL_USER:
        call = "call_user()" if a.text is None else f"call_user(content='{_escape(a.text)}')"
    elif a.action == OPEN:
        call = f"open_app(app_name='{_escape(a.text or '')}')"
    elif a.action == SYSTEM_BUTTON and a.button in ("Back", "Home"):
        call = f"press_{(a.button or '').lower()}()"
    if call is None:
        raise ActionError(f"UI-TARS has no way to write {a.summary()!r}")
    return f"Action: {call}"


def uitars_platform(action: Action) -> str:
    """The platform whose UI-TARS vocabulary reads this action back as itself."""
    return "phone" if action.action in (CLICK, SWIPE, LONG_PRESS, OPEN, SYSTEM_BUTTON) else "desktop"


def _render_point(p: Any) -> str:
    return f"<point>{_num(p[0])} {_num(p[1])}</point>"


def _num(v: float) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
