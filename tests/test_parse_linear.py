"""Parsing does work linear in the size of the answer, for every format, on adversarial input.

Work is counted, not timed: every regex call of the parser modules is replaced by a meter that adds the
characters the call scanned (up to the end of its match, or to the end of the text when it finds nothing),
and the text is a str subclass that adds the length of every slice taken from it (the copy `text[i:]`
inside a loop is how UI-TARS parsing went quadratic). The total must stay within a constant times the
input size, and grow no faster than the input from one size to ten times it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

import engine.toolcall_text as toolcall_text
import visagent.loop.parsing.uitars as uitars
from visagent.core.errors import ParseError
from visagent.loop.parsing import parse_output


class Meter:
    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0


class MeteredText(str):
    """A str whose slices (and finds) are counted; slices stay MeteredText so nested slicing is counted too."""

    meter: Meter

    def __getitem__(self, key: Any) -> str:
        out = str.__getitem__(self, key)
        self.meter.chars += len(out)
        return _metered(out, self.meter)

    def find(self, sub: str, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        at = str.find(self, sub, start, end)
        begin = 0 if start is None else start
        self.meter.chars += (len(self) if at < 0 else at + len(sub)) - begin
        return at


def _metered(text: str, meter: Meter) -> MeteredText:
    out = MeteredText(text)
    out.meter = meter
    return out


class MeteredPattern:
    def __init__(self, pattern: re.Pattern[str], meter: Meter) -> None:
        self.pattern, self.meter = pattern, meter

    def _count(self, string: str, pos: int, m: re.Match[str] | None, scanned_on_miss: int) -> re.Match[str] | None:
        self.meter.calls += 1
        self.meter.chars += (m.end() - pos + 1) if m else scanned_on_miss
        return m

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self._count(string, pos, self.pattern.match(string, pos, endpos), 1)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self._count(string, pos, self.pattern.search(string, pos, endpos), len(string) - pos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self._count(string, pos, self.pattern.fullmatch(string, pos, endpos), len(string) - pos)

    def __getattr__(self, name: str) -> Any:  # finditer, sub, split...: charge the whole string
        method = getattr(self.pattern, name)

        def counted(string: str, *args: Any, **kwargs: Any) -> Any:
            self.meter.calls += 1
            self.meter.chars += len(string)
            return method(string, *args, **kwargs)

        return counted


@pytest.fixture
def meter(monkeypatch) -> Meter:
    m = Meter()
    for module in (toolcall_text, uitars):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                monkeypatch.setattr(module, name, MeteredPattern(value, m))
            elif isinstance(value, dict) and value and all(isinstance(v, re.Pattern) for v in value.values()):
                monkeypatch.setattr(module, name, {k: MeteredPattern(v, m) for k, v in value.items()})
    return m


def _work(meter: Meter, text: str, fmt: str) -> int:
    """Work to parse `text`, fed straight to the format's scanner (parse_output's own thinking split hands it
    on as a plain str, which the meter could not follow), then once more through parse_output's regexes."""
    meter.calls = meter.chars = 0
    try:
        if fmt == "uitars":
            _, section = uitars.split_uitars(text)
            uitars.parse_uitars(_metered(section, meter), "norm1000", "desktop")
        else:
            toolcall_text.scan_tool_calls(_metered(text, meter))
        parse_output(text, fmt=fmt)
    except ParseError:
        pass
    return meter.chars + meter.calls


XML = "<tool_call>\n<function=computer_use>\n"
ADVERSARIAL = {
    # Qwen3.5 XML / Nous JSON: openers without closers, names without '>', values without ends
    "parameter-openers": lambda n: XML + "<parameter=" * (n // 11),
    "parameters-without-closers": lambda n: XML + "<parameter=action>\nx\n" * (n // 21),
    "many-calls": lambda n: ("<tool_call>\n<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n"
                             "</function>\n</tool_call>\n") * (n // 98),
    "function-openers": lambda n: "<function=" * (n // 10),
    "tool-call-openers": lambda n: "<tool_call>" * (n // 11),
    "json-openers": lambda n: "<tool_call>{" * (n // 12),
    "long-name": lambda n: XML + "<parameter=" + "a" * n,
    "junk-inside-function": lambda n: XML + "x" * n,
    "huge-value": lambda n: XML + "<parameter=text>\n" + "a" * n + "\n</parameter>\n</function>\n</tool_call>",
    "deep-array": lambda n: XML + "<parameter=coordinate>\n" + "[" * n + "\n</parameter>\n</function>\n</tool_call>",
    # UI-TARS: many unquoted values (the quadratic case), long strings with escapes, unclosed calls
    "uitars-unquoted-values": lambda n: "Action: " + "hotkey(key=ctrl)\n" * (n // 17),
    "uitars-escaped-string": lambda n: "Action: type(content='" + "a\\'" * (n // 3) + "')",
    "uitars-unclosed-calls": lambda n: "Action: " + "click(" * (n // 6),
    "uitars-long-bare-value": lambda n: "Action: type(content=" + "a" * n + ")",
}


@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_parsing_work_is_linear_in_the_input(meter, case):
    make = ADVERSARIAL[case]
    fmt = "uitars" if case.startswith("uitars") else "auto"
    small, large = make(20_000), make(200_000)
    w_small, w_large = _work(meter, small, fmt), _work(meter, large, fmt)
    assert w_large <= 12 * len(large), f"{case}: {w_large} units of work for {len(large)} characters"
    assert w_large <= 12 * w_small * len(large) / len(small), f"{case}: work grew from {w_small} to {w_large}"


def test_the_meter_sees_a_quadratic_scan(meter):
    """The meter is not blind: scanning by copying the rest of the text, as UI-TARS parsing once did, is caught."""
    text = _metered("a," * 10_000, meter)
    i = 0
    while i < len(text):
        i += len(re.match(r"[^,]*,", text[i:]).group())
    assert meter.chars > 100 * len(text)
