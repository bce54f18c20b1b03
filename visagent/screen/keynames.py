"""Key names: what models write (Qwen's computer_use `keys`) → what pyautogui presses."""

from __future__ import annotations

import re
import sys

from visagent.core.errors import ActionError

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


# -- what a key name presses, for the safety policy ----------------------------------------------------------

#: Side-specific and platform spellings folded to the key they press (after KEY_NAMES): pyautogui's own names
#: (altleft, ctrlright, winleft, optionleft ...), X11 keysyms (Alt_L, Control_R, Super_L), Android KEYCODE_*.
_FOLD: dict[str, str] = {
    **dict.fromkeys(("altleft", "altright", "option", "optionleft", "optionright", "alt_l", "alt_r", "altgr",
                     "keycode_alt_left", "keycode_alt_right", "57", "58"), "alt"),
    **dict.fromkeys(("ctrlleft", "ctrlright", "control_l", "control_r", "ctrl_l", "ctrl_r", "keycode_ctrl_left",
                     "keycode_ctrl_right", "113", "114"), "ctrl"),
    **dict.fromkeys(("shiftleft", "shiftright", "shift_l", "shift_r", "keycode_shift_left", "keycode_shift_right",
                     "59", "60"), "shift"),
    **dict.fromkeys(("win", "winleft", "winright", "super", "super_l", "super_r", "meta_l", "meta_r", "hyper_l",
                     "hyper_r", "keycode_meta_left", "keycode_meta_right", "117", "118"), "super"),
    **dict.fromkeys(("del", "keycode_forward_del", "112", "forward_del"), "delete"),
    **dict.fromkeys(("\b", "bksp", "back_space", "keycode_del", "67"), "backspace"),
    **dict.fromkeys(("esc", "keycode_escape", "111", "\x1b"), "escape"),
    **dict.fromkeys(("\n", "\r", "keycode_enter", "66", "keycode_numpad_enter", "160"), "enter"),
    **dict.fromkeys(("prtsc", "prtscr", "prntscrn", "print", "keycode_sysrq", "sys_req", "sysrq"), "printscreen"),
    **dict.fromkeys(("keycode_power", "26"), "power"),
    **{f"keycode_f{i}": f"f{i}" for i in range(1, 13)},
    **{str(131 + i): f"f{i + 1}" for i in range(12)},  # Android KEYCODE_F1 = 131
    **{f"keycode_{c}": c for c in "abcdefghijklmnopqrstuvwxyz0123456789"},
}


def pressed_key(name: str) -> str:
    """The key `name` presses, whatever the spelling: aliases (control, cmd, return), sides (altleft, Control_R,
    winright), case (F4, L), Android KEYCODE_* names and numbers, each folded to one lower-case name (alt, ctrl,
    shift, super, delete, backspace, escape, enter, f4, l ...). The safety policy compares combos with it, so a
    risky combo cannot be written past it in a spelling an executor would still press. Never raises."""
    raw = name.strip() or name
    low = raw.lower()
    key = KEY_NAMES.get(low, low)
    return _FOLD.get(key, key)


def pressed_combo(keys: tuple[str, ...] | list[str]) -> frozenset[str]:
    """The set of keys a combo presses (`pressed_key` of each; an element written "ctrl+alt" counts as both)."""
    out: set[str] = set()
    for key in keys:
        parts = [p for p in key.split("+") if p.strip()] if len(key.strip()) > 1 else [key]
        out.update(pressed_key(p) for p in parts or [key])
    return frozenset(out)
