"""Calculator: a keypad grid and a display; keys typed on the keyboard work too (digits, + - * /, Enter).

Evaluation follows normal precedence (× ÷ before + −) with a tiny safe parser; results show up to 10
significant digits. State: display, expression, last_result, history.
"""

from __future__ import annotations

import ast
import operator
import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App
from visagent.sim.theme import mix
from visagent.sim.widgets import Button, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

KEYS = [["C", "⌫", "%", "÷"], ["7", "8", "9", "×"], ["4", "5", "6", "−"], ["1", "2", "3", "+"], ["±", "0", ".", "="]]
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Mod: operator.mod}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    raise ValueError("bad expression")


def format_number(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.10g}"


class Keypad(Widget):
    """The calculator body: takes typed characters and keys while the app has focus (no element)."""

    focusable = True

    def __init__(self, app: CalculatorApp) -> None:
        super().__init__("keypad", "")
        self.app = app

    def elements(self, app: str) -> list[Any]:
        return []

    def text_input(self, s: str, world: Any) -> bool:
        changed = False
        for ch in s:
            sym = {"*": "×", "x": "×", "/": "÷", "-": "−", "=": "=", ",": "."}.get(ch, ch)
            if sym in "0123456789.+×÷−%=":
                self.app.press(sym)
                changed = True
            elif ch in "cC":
                self.app.press("C")
                changed = True
        return changed

    def key(self, name: str, mods: frozenset[str], world: Any) -> bool:
        mapping = {"enter": "=", "backspace": "⌫", "escape": "C", "delete": "C"}
        if name in mapping:
            self.app.press(mapping[name])
            return True
        return False


class CalculatorApp(App):
    name = "calculator"
    title = "Calculator"
    icon = "calculator"
    hue = 0.78
    packages = ("com.visagent.calculator",)

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "display")
        self.expr = str(setup.get("display", ""))
        self.last_result: str | None = None
        self.history: list[str] = []
        self.error = False
        self.fresh = False  # just showed a result: a digit starts a new number, an operator continues
        self.keypad = Keypad(self)
        self.buttons = [Button(f"key.{k}", k, (lambda k=k: self.press(k)),
                               kind="primary" if k == "=" else "default") for row in KEYS for k in row]
        self.round_keys = rng.random() < 0.5
        self.focus = self.keypad

    def press(self, k: str) -> None:
        if self.error and k not in "C":
            self.expr, self.error = "", False
        if self.fresh and (k.isdigit() or k == "."):
            self.expr = ""
        self.fresh = False
        if k == "C":
            self.expr, self.error = "", False
        elif k == "⌫":
            self.expr = self.expr[:-1]
        elif k == "±":
            self.expr = self.expr[1:] if self.expr.startswith("−") else "−" + self.expr
        elif k == "=":
            if not self.expr:
                return
            py = self.expr.replace("×", "*").replace("÷", "/").replace("−", "-")
            try:
                value = _eval(ast.parse(py, mode="eval"))
                result = format_number(value)
                self.history.append(f"{self.expr} = {result}")
                self.expr = result.replace("-", "−")
                self.last_result = result
                self.fresh = True
            except (ValueError, SyntaxError, ZeroDivisionError):
                self.expr, self.error = "Error", True
        else:
            if k in "+×÷−%" and self.expr and self.expr[-1] in "+×÷−%":
                self.expr = self.expr[:-1]
            if len(self.expr) < 24:
                self.expr += k
        self.focus = self.keypad

    @property
    def display(self) -> str:
        return self.expr or "0"

    def widgets(self) -> list[Widget]:
        return [*self.buttons, self.keypad]

    def hit(self, x: float, y: float) -> Widget | None:
        return super().hit(x, y) or self.keypad

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        pad = int(12 * s)
        disp_h = int((y2 - y1) * 0.28)
        self.keypad.place((x1, y1, x2, y1 + disp_h))
        if not self.phone:  # a compact keypad centred in the window
            w = min(x2 - x1 - 2 * pad, int(360 * s))
            x1 = (rect[0] + rect[2] - w) // 2
            x2 = x1 + w
        gy1 = y1 + disp_h + pad
        rows, cols = len(KEYS), 4
        cw = (x2 - x1 - pad * (cols + 1)) / cols
        ch = (y2 - gy1 - pad * rows) / rows
        for i, b in enumerate(self.buttons):
            r, c = divmod(i, cols)
            bx = x1 + pad + c * (cw + pad)
            by = gy1 + r * (ch + pad)
            b.place((bx, by, bx + cw, by + ch))

    def draw(self, cv: Any, st: Any) -> None:
        th = st.th
        cv.rect(self.rect, fill=mix(th.surface, th.accent, 0.06))
        d = self.keypad.rect
        cv.rect(d, fill=mix(th.surface2, th.accent, 0.12))
        pad = st.px(20)
        if self.history:
            cv.text_in((d[0], d[1] + pad // 2, d[2], d[1] + st.px(40)), self.history[-1], st.fs, th.muted, False,
                       "right", pad)
        size = st.px(44) if len(self.display) < 12 else st.px(28)
        cv.text_in((d[0], d[1] + st.px(30), d[2], d[3]), self.display, size, th.danger if self.error else th.text,
                   False, "right", pad)
        for b in self.buttons:
            r = b.rect
            k = b.label
            fill = th.accent if k == "=" else mix(th.surface2, th.accent, 0.25) if k in "÷×−+%" else th.surface2
            fg = th.on_accent if k == "=" else th.text
            if self.round_keys:
                cv.rect(r, fill=fill, radius=min(r[2] - r[0], r[3] - r[1]) // 2)
            else:
                cv.rect(r, fill=fill, outline=th.border, radius=st.px(6))
            cv.text_in(r, k, st.px(20), fg, k in "=C")

    def state(self) -> dict[str, Any]:
        return {"display": self.display.replace("−", "-"), "expression": self.expr, "last_result": self.last_result,
                "history": list(self.history), "error": self.error}
