"""Typing any Unicode text on X11 through XTEST, the way xdotool does it, but without its race.

pyautogui.write types only characters that have a key on the current keyboard map. For everything else we
bind the character's keysym to a spare keycode (one with no keysyms) and press that keycode with XTEST.
`xdotool type` reuses one scratch keycode for every character, so a client that reads its key events late
(Tk under load) translates several of them with the last mapping ("✓ ü" arrives as "ü ü"). Here every
distinct character gets its own spare keycode, mappings are changed only between batches (with a pause so
clients see the MappingNotify first), and the bindings are kept until `close()`, so a late reader still sees
the right character.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from visagent.core.errors import ExecutorError

_MAPPING_PAUSE_S = 0.05  # clients refresh their keymap on MappingNotify before the next key event
_EVICT_PAUSE_S = 0.2


def keysym_for(char: str) -> int:
    """The X keysym of a character: Latin-1 keysyms equal the code point, the rest are 0x01000000 + code point."""
    cp = ord(char)
    if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
        return cp
    return 0x01000000 + cp


class UnicodeTyper:
    """Types characters on one python-xlib Display by binding them to spare keycodes (see module docstring).

    Raises ExecutorError when the keyboard map has no spare keycode.
    """

    def __init__(self, display: Any, key_delay_s: float = 0.008) -> None:
        self.d = display
        self.key_delay_s = key_delay_s
        first = display.display.info.min_keycode
        count = display.display.info.max_keycode - first + 1
        mapping = display.get_keyboard_mapping(first, count)
        self.width = max(1, len(mapping[0]) if mapping else 1)
        # keycode 8 is skipped: some toolkits ignore the lowest keycode
        self.spare = [first + i for i, syms in enumerate(mapping) if not any(syms) and first + i > 8]
        if not self.spare:
            raise ExecutorError("this X keyboard map has no spare keycode to type non-ASCII text with; "
                                "free one with xmodmap (e.g. xmodmap -e 'keycode 250 =')")
        self.bound: OrderedDict[str, int] = OrderedDict()

    def _bind(self, chars: list[str]) -> None:
        """Make sure every char in `chars` (at most len(spare) distinct) has a keycode; evicts the oldest."""
        changed = False
        for ch in chars:
            if ch in self.bound:
                self.bound.move_to_end(ch)
                continue
            if len(self.bound) < len(self.spare):
                used = set(self.bound.values())
                code = next(c for c in self.spare if c not in used)
            else:
                if not changed:
                    time.sleep(_EVICT_PAUSE_S)  # let late readers finish with the keycodes about to change
                victim = next(c for c in self.bound if c not in chars)
                code = self.bound.pop(victim)
            self.d.change_keyboard_mapping(code, [[keysym_for(ch)] * self.width])
            self.bound[ch] = code
            changed = True
        if changed:
            self.d.sync()
            time.sleep(_MAPPING_PAUSE_S)

    def type(self, text: str) -> None:
        """Press and release one bound keycode per character of `text` (any characters but control ones)."""
        from Xlib import X
        from Xlib.ext import xtest

        pos = 0
        while pos < len(text):
            batch: list[str] = []
            end = pos
            while end < len(text) and (text[end] in batch or len(batch) < len(self.spare)):
                if text[end] not in batch:
                    batch.append(text[end])
                end += 1
            self._bind(batch)
            for ch in text[pos:end]:
                code = self.bound[ch]
                xtest.fake_input(self.d, X.KeyPress, code)
                xtest.fake_input(self.d, X.KeyRelease, code)
                self.d.sync()
                time.sleep(self.key_delay_s)
            pos = end

    def close(self) -> None:
        """Give the spare keycodes back (empty mappings)."""
        for code in self.bound.values():
            self.d.change_keyboard_mapping(code, [[0] * self.width])
        if self.bound:
            self.d.sync()
        self.bound.clear()
