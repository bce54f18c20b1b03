"""Turn one screen-space `Action` into the world's low-level events (clicks, drags, wheel, keys, text).

Timings on the world's clock: a click holds CLICK_HOLD_S, a double click is two clicks 0.1 s apart
(inside DOUBLE_CLICK_S), a long press holds >= 0.6 s (or `time`), a swipe/drag lasts `time` (default 0.3 s)
in 8 moves, `wait` advances the clock by `time` (default 1 s). Scroll `pixels` count wheel clicks (Qwen's
reference agents run `pyautogui.scroll(pixels)`), at most visagent.core.actions.MAX_SCROLL_CLICKS; one click moves
content WHEEL_CLICK_DP logical pixels (times the world's UI scale).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visagent.core import actions as A
from visagent.core.errors import ExecutorError

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

LONG_PRESS_HOLD_S = 0.8
DEFAULT_WAIT_S = 1.0


def wheel_clicks(pixels: int) -> int:
    """Wheel clicks for a scroll action's `pixels` (sign kept, capped: visagent.core.actions.scroll_clicks)."""
    return A.scroll_clicks(pixels)


def split_combo(keys: tuple[str, ...] | None, text: str | None) -> tuple[str, tuple[str, ...]]:
    """(key, modifiers) from computer_use `keys` (["ctrl", "a"]) or mobile_use `text` ("ctrl+a", "enter")."""
    if keys:
        parts = list(keys)
    else:
        t = (text or "").strip()
        parts = [p for p in t.replace(" ", "+").split("+") if p] if len(t) > 1 else [t]
    if not parts or not parts[-1]:
        raise ExecutorError(f"key action without a key name (keys={keys!r}, text={text!r})")
    return parts[-1], tuple(parts[:-1])


def apply_action(world: SimWorld, a: A.Action) -> str:
    n = a.action
    pt = a.coordinate if a.coordinate is not None else world.pointer
    x, y = pt
    if a.coordinate is not None and not (0 <= x < world.size[0] and 0 <= y < world.size[1]):
        raise ExecutorError(f"{n} at [{x:.0f}, {y:.0f}] is outside the {world.size[0]}x{world.size[1]} screen")
    if n in (A.LEFT_CLICK, A.CLICK):
        world.click(x, y)  # held modifier keys (a.keys) are accepted but have no effect in the sim
        return f"click at ({x:.0f}, {y:.0f})"
    if n == A.RIGHT_CLICK:
        world.click(x, y, "right")
        return f"right click at ({x:.0f}, {y:.0f})"
    if n == A.MIDDLE_CLICK:
        world.click(x, y, "middle")
        return f"middle click at ({x:.0f}, {y:.0f})"
    if n in (A.DOUBLE_CLICK, A.TRIPLE_CLICK):
        for i in range(2 if n == A.DOUBLE_CLICK else 3):
            if i:
                world.clock.advance(0.1)
            world.click(x, y)
        return f"{n} at ({x:.0f}, {y:.0f})"
    if n == A.MOUSE_MOVE:
        world.pointer_move(x, y)
        return f"pointer at ({x:.0f}, {y:.0f})"
    if n == A.LONG_PRESS:
        world.click(x, y, hold=max(0.6, a.time if a.time is not None else LONG_PRESS_HOLD_S))
        return f"long press at ({x:.0f}, {y:.0f})"
    if n in (A.SWIPE, A.LEFT_CLICK_DRAG):
        if n == A.LEFT_CLICK_DRAG and a.coordinate2 is None:
            start, end = world.pointer, (x, y)
        else:
            start, end = (x, y), a.coordinate2  # type: ignore[assignment]
        world.drag(start, end, duration=a.time if a.time else 0.3)
        return f"{n} from ({start[0]:.0f}, {start[1]:.0f}) to ({end[0]:.0f}, {end[1]:.0f})"
    if n in (A.SCROLL, A.HSCROLL):
        clicks = wheel_clicks(int(a.pixels or 0))
        if n == A.SCROLL:
            world.wheel(x, y, 0, clicks)
        else:
            world.wheel(x, y, clicks, 0)
        note = A.scroll_note(int(a.pixels or 0))
        return f"{n} {clicks} clicks at ({x:.0f}, {y:.0f})" + (f" ({note})" if note else "")
    if n == A.TYPE:
        if a.coordinate is not None:
            world.click(x, y)
        world.text(a.text or "")
        return f"typed {len(a.text or '')} characters"
    if n == A.KEY:
        key, mods = split_combo(a.keys, a.text)
        world.key(key, mods)
        return "key " + "+".join((*mods, key))
    if n == A.SYSTEM_BUTTON:
        world.system_button(a.button or "")
        return f"system button {a.button}"
    if n == A.OPEN:
        world.launch(a.text or "")
        return f"opened {a.text}"
    if n == A.WAIT:
        world.clock.advance(a.time if a.time is not None else DEFAULT_WAIT_S)
        return "waited"
    if n in (A.TERMINATE, A.ANSWER, A.CALL_USER):
        return f"{n} (no-op)"
    raise ExecutorError(f"the sim world cannot perform action {n!r}")
