"""Key names: what models write (Qwen's computer_use `keys`) → what pyautogui presses."""

from __future__ import annotations

import re
import sys

from visagent.errors import ActionError

#: Qwen / common key names → pyautogui key names (lower-case lookups; single characters pass through).
KEY_NAMES: dict[str, str] = {
    "control": "ctrl", "ctl": "ctrl", "ctrl": "ctrl", "alt": "alt", "option": "alt", "shift": "shift",
    "super": "win", "win": "win", "windows": "win", "meta": "win", "cmd": "win", "command": "win",
    "enter": "enter", "return": "enter", "kp_enter": "enter", "esc": "esc", "escape": "esc",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right", "up": "up",
    "down": "down", "left": "left", "right": "right", "page_up": "pageup", "pageup": "pageup", "pgup": "pageup",
    "page_down": "pagedown", "pagedown": "pagedown", "pgdn": "pagedown", "backspace": "backspace",
    "delete": "delete", "del": "delete", "tab": "tab", "space": "space", "spacebar": "space", "home": "home",
    "end": "end", "insert": "insert", "ins": "insert", "capslock": "capslock", "caps_lock": "capslock",
    "printscreen": "printscreen", "print": "printscreen", "menu": "apps", "plus": "+", "minus": "-",
}
_FKEY = re.compile(r"f([1-9]|1[0-9]|2[0-4])")


def pyautogui_key(name: str) -> str:
    """A Qwen key name ("ctrl", "Return", "super", "F5", "a") → pyautogui's name. Raises ActionError."""
    import pyautogui

    raw = name.strip()
    low = raw.lower()
    key = KEY_NAMES.get(low) or (low if _FKEY.fullmatch(low) else None)
    if key == "win" and sys.platform == "darwin":
        key = "command"  # pyautogui's name for ⌘ on macOS (untested here)
    if key is None and len(raw) == 1:
        key = raw
    if key is None and pyautogui.isValidKey(low):
        key = low
    if key is None:
        raise ActionError(f"unknown key {name!r}; use names like ctrl, alt, shift, super, enter, esc, tab, "
                          "up/down/left/right, pageup, f1..f24 or a single character")
    return key
