"""Key names: aliases from X11 / pyautogui / Qwen spellings folded to one lower-case vocabulary."""

from __future__ import annotations

_KEY_ALIASES = {
    "return": "enter", "kp_enter": "enter", "esc": "escape", "back_space": "backspace", "bksp": "backspace",
    "del": "delete", "control": "ctrl", "control_l": "ctrl", "ctrl_l": "ctrl", "cmd": "meta", "command": "meta",
    "super": "meta", "win": "meta", "super_l": "meta", "option": "alt", "alt_l": "alt", "shift_l": "shift",
    "arrowleft": "left", "arrowright": "right", "arrowup": "up", "arrowdown": "down", "pgup": "pageup",
    "pgdn": "pagedown", "page_up": "pageup", "page_down": "pagedown", "spacebar": "space", " ": "space",
}


def normalise_key(name: str) -> str:
    """Lower-case key name with common aliases folded ("Return" → "enter", "Control_L" → "ctrl")."""
    k = name.strip().lower() if len(name) > 1 else name.lower()
    return _KEY_ALIASES.get(k, k)
