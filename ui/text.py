"""Untrusted text (model answers, trace fields, error messages) put into the dashboard's Markdown as text.

Gradio renders `gr.Markdown` with raw HTML allowed (sanitized against scripts, not against `<img src=...>`),
and Markdown itself can load images (`![](http://...)`). So nothing a model wrote or a trace holds is ever
pasted into Markdown as is: `text()` escapes it so it reads as written, `code()` / `block()` put it in a code
span / fenced block whose fence is longer than any backtick run inside (it cannot be closed from within).
Markdown components that show such text are built with `MARKDOWN_SAFE` (no LaTeX either).
"""

from __future__ import annotations

import re
from typing import Any

# Every character that starts Markdown or HTML syntax inline (CommonMark backslash-escapes any ASCII punctuation);
# `:` too, so a bare http:// never turns into an autolink (whose text would keep the escapes after it).
_INLINE = re.compile(r"([\\`*_{}\[\]<>&!#|~$+^:])")
_WWW = re.compile(r"(?i)\b(www)\.")
_LINE_START = re.compile(r"(?m)^(\s*)([-=])")  # list items, rules, setext headings
_ORDERED = re.compile(r"(?m)^(\s*\d+)([.)])")  # ordered list items
_TICKS = re.compile(r"`+")

#: Keyword arguments for a gr.Markdown that shows untrusted text: scripts stripped, no LaTeX rendering.
MARKDOWN_SAFE: dict[str, Any] = {"sanitize_html": True, "latex_delimiters": []}


def text(value: Any) -> str:
    """`value` as Markdown that renders exactly as the characters given: no HTML, link, image or emphasis."""
    s = _INLINE.sub(r"\\\1", str(value))
    s = _WWW.sub(r"\1\\.", s)
    s = _LINE_START.sub(r"\1\\\2", s)
    return _ORDERED.sub(r"\1\\\2", s)


def _fence(value: str, least: int) -> str:
    longest = max((len(m) for m in _TICKS.findall(value)), default=0)
    return "`" * max(least, longest + 1)


def code(value: Any) -> str:
    """`value` as an inline code span (one line; newlines become spaces)."""
    s = " ".join(str(value).splitlines())
    fence = _fence(s, 1)
    return f"{fence} {s} {fence}"


def block(value: Any) -> str:
    """`value` as a fenced code block."""
    s = str(value)
    fence = _fence(s, 3)
    return f"{fence}text\n{s}\n{fence}"
