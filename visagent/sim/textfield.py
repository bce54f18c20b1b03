"""Text entry: a caret, a selection, typing, backspace/delete, arrows, home/end, ctrl+a/c/x/v, enter.

Positions (`caret`, `anchor`) are character indices into `value`; the selection is the range between
`anchor` and `caret`. The clipboard is the world's (`world.clipboard`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from visagent.sim.theme import Canvas, text_width
from visagent.sim.widgets import Pointer, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld


class TextField(Widget):
    role = "textfield"
    focusable = True

    def __init__(self, wid: str, label: str, value: str = "", *, placeholder: str = "", multiline: bool = False,
                 on_submit: Callable[[], Any] | None = None, on_change: Callable[[str], Any] | None = None,
                 max_len: int = 2000, mono: bool = False) -> None:
        super().__init__(wid, label)
        self.value = value
        self.caret = len(value)
        self.anchor = self.caret
        self.placeholder = placeholder
        self.multiline = multiline
        self.on_submit = on_submit
        self.on_change = on_change
        self.max_len = max_len
        self.mono = mono
        self.error = False  # drawn with a red border (validation)

    # -- editing ----------------------------------------------------------------------------------
    def set_value(self, value: str) -> None:
        self.value = value[: self.max_len]
        self.caret = self.anchor = len(self.value)

    @property
    def selection(self) -> tuple[int, int]:
        return (min(self.anchor, self.caret), max(self.anchor, self.caret))

    @property
    def selected_text(self) -> str:
        a, b = self.selection
        return self.value[a:b]

    def _replace(self, s: str) -> bool:
        a, b = self.selection
        if not self.multiline:
            s = s.replace("\n", " ")
        new = (self.value[:a] + s + self.value[b:])[: self.max_len]
        changed = new != self.value
        self.value = new
        self.caret = self.anchor = min(len(new), a + len(s))
        if changed and self.on_change:
            self.on_change(self.value)
        return changed or bool(s)

    def text_input(self, s: str, world: SimWorld) -> bool:
        if not self.enabled:
            return False
        return self._replace(s)

    def key(self, name: str, mods: frozenset[str], world: SimWorld) -> bool:
        ctrl = "ctrl" in mods or "meta" in mods
        shift = "shift" in mods
        a, b = self.selection
        if ctrl and name == "a":
            self.anchor, self.caret = 0, len(self.value)
            return True
        if ctrl and name in ("c", "x"):
            if a == b:
                return False
            world.clipboard = self.value[a:b]
            return self._replace("") if name == "x" else True
        if ctrl and name == "v":
            return self._replace(world.clipboard) if world.clipboard else False
        if name == "backspace":
            if a == b:
                if a == 0:
                    return False
                self.anchor = a - 1
                if ctrl:  # delete the previous word
                    while self.anchor > 0 and self.value[self.anchor - 1] != " ":
                        self.anchor -= 1
            return self._replace("")
        if name == "delete":
            if a == b:
                if b >= len(self.value):
                    return False
                self.caret = b + 1
            return self._replace("")
        if name in ("left", "right", "home", "end", "up", "down"):
            pos = {"left": max(0, self.caret - 1), "right": min(len(self.value), self.caret + 1), "home": 0,
                   "end": len(self.value), "up": 0, "down": len(self.value)}[name]
            if not shift and a != b and name in ("left", "right"):
                pos = a if name == "left" else b
            self.caret = pos
            if not shift:
                self.anchor = pos
            return True
        if name == "enter":
            if self.multiline and not ctrl:
                return self._replace("\n")
            if self.on_submit:
                self.on_submit()
                return True
            return False
        if name == "space":
            return self._replace(" ")
        return False

    # -- pointer ----------------------------------------------------------------------------------
    def _fs(self, st_s: float) -> int:
        return int(round(14 * st_s))

    def index_at(self, x: float, s: float) -> int:
        """Character index nearest to screen x (single line)."""
        fs = self._fs(s)
        start = self.rect[0] + int(8 * s)
        best, best_d = 0, float("inf")
        for i in range(len(self.value) + 1):
            d = abs(start + text_width(self.value[:i], fs, False, self.mono) - x)
            if d < best_d:
                best, best_d = i, d
        return best

    def click(self, ev: Pointer) -> bool:
        if self.multiline:
            pos = len(self.value)
        else:
            pos = self.index_at(ev.x, ev.world.ui_scale)
        self.caret = self.anchor = pos
        return True

    def double_click(self, ev: Pointer) -> bool:
        self.anchor, self.caret = 0, len(self.value)
        return True

    def context(self, ev: Pointer) -> bool:
        from visagent.sim.overlays import MenuItem, PopupMenu

        w = ev.world

        def do(key: str) -> Callable[[], None]:
            return lambda: self.key(key, frozenset({"ctrl"}), w)

        items = [MenuItem("Cut", do("x")), MenuItem("Copy", do("c")), MenuItem("Paste", do("v")),
                 MenuItem("Select all", do("a"))]
        w.open_popup(PopupMenu("textmenu", items, (ev.x, ev.y), app=w.app_of(self)))
        return True

    # -- painting ---------------------------------------------------------------------------------
    def _wrap(self, avail: int, fs: int) -> list[str]:
        lines: list[str] = []
        for para in self.value.split("\n"):
            cur = ""
            for word in para.split(" "):
                cand = word if not cur else cur + " " + word
                if text_width(cand, fs, False, self.mono) <= avail or not cur:
                    cur = cand
                else:
                    lines.append(cur)
                    cur = word
            lines.append(cur)
        return lines

    def draw(self, cv: Canvas, st: Style, focused: bool) -> None:
        th, r = st.th, self.rect
        fs = st.fs
        pad = st.px(8)
        border = th.danger if self.error else th.accent if focused else th.border
        cv.rect(r, fill=th.surface, outline=border, radius=st.px(5), width=max(1, st.px(2 if focused else 1)))
        a, b = self.selection
        if self.multiline:
            lh = int(fs * 1.45)
            lines = self._wrap(r[2] - r[0] - 2 * pad, fs)
            maxl = max(1, (r[3] - r[1] - 2 * pad) // lh)
            lines = lines[-maxl:]
            if not self.value and self.placeholder:
                cv.text((r[0] + pad, r[1] + pad), self.placeholder, fs, th.muted)
            for i, line in enumerate(lines):
                y = r[1] + pad + i * lh
                if focused and a != b:
                    cv.rect((r[0] + pad, y, r[0] + pad + text_width(line, fs, False, self.mono) + 2, y + lh),
                            fill=th.accent)
                    cv.text((r[0] + pad, y), line, fs, th.on_accent, mono=self.mono)
                else:
                    cv.text((r[0] + pad, y), line, fs, th.text, mono=self.mono)
            if focused and a == b and self.caret == len(self.value):
                last = lines[-1] if lines else ""
                x = r[0] + pad + text_width(last, fs, False, self.mono) + 1
                y = r[1] + pad + (len(lines) - 1) * lh
                cv.line([(x, y + 2), (x, y + lh - 2)], th.text, max(1, st.px(1.5)))
            return
        cy = (r[1] + r[3]) / 2
        avail = r[2] - r[0] - 2 * pad
        shown, offset = self.value, 0
        while text_width(shown, fs, False, self.mono) > avail and offset < self.caret:
            offset += 1
            shown = self.value[offset:]
        x0 = r[0] + pad
        if not self.value and self.placeholder:
            cv.text((x0, cy), self.placeholder, fs, th.muted, anchor="lm")
        if focused and a != b:
            sa, sb = max(a, offset), max(b, offset)
            xa = x0 + text_width(self.value[offset:sa], fs, False, self.mono)
            xb = x0 + text_width(self.value[offset:sb], fs, False, self.mono)
            cv.rect((xa, int(cy - fs * 0.75), min(r[2] - pad, xb + 1), int(cy + fs * 0.75)), fill=th.accent)
        while shown and text_width(shown, fs, False, self.mono) > avail:
            shown = shown[:-1]
        cv.text((x0, cy), shown, fs, th.text, anchor="lm", mono=self.mono)
        if focused and a != b:
            sa, sb = max(a, offset), max(b, offset)
            xa = x0 + text_width(self.value[offset:sa], fs, False, self.mono)
            cv.text((xa, cy), self.value[sa:sb], fs, th.on_accent, anchor="lm", mono=self.mono)
        if focused:
            x = x0 + text_width(self.value[offset:self.caret], fs, False, self.mono)
            cv.line([(x, cy - fs * 0.7), (x, cy + fs * 0.7)], th.text, max(1, st.px(1.5)))
