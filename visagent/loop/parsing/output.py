"""One entry point for model output: `parse_output(text)` → thinking, validated actions, format, prose.

Formats: "qwen35" (Qwen3.5 XML calls), "nous" (JSON calls in `<tool_call>`), "openai" (structured
`tool_calls` from a server), "uitars" (UI-TARS `Action: click(...)` text); "auto" picks one from what is
there. Thinking is split off first (`</think>` with or without its opener; UI-TARS's `Thought:` preamble).
Every failure is one `ParseError` whose message can be sent back to the model; nothing else is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.api import split_thinking
from visagent.core.actions import Action
from visagent.core.errors import ParseError
from visagent.loop.parsing.arguments import action_from_arguments, show
from visagent.loop.parsing.toolcalls import RawCall, find_tool_calls, has_tool_call_tags, openai_calls
from visagent.loop.parsing.uitars import looks_like_uitars, parse_uitars, split_uitars

FORMATS: tuple[str, ...] = ("auto", "qwen35", "nous", "uitars", "openai")
PARSE_SPACES: tuple[str, ...] = ("norm1000", "resized", "absolute")
_HINT = {
    "qwen35": "no tool call found: answer with <tool_call><function=computer_use><parameter=action>left_click"
              "</parameter><parameter=coordinate>[x, y]</parameter></function></tool_call>",
    "nous": 'no tool call found: answer with <tool_call>{"name": "computer_use", "arguments": '
            '{"action": "left_click", "coordinate": [x, y]}}</tool_call>',
    "openai": "no tool call found: call the computer_use (or mobile_use) tool",
}


@dataclass
class ParsedOutput:
    """What one model turn said: `thinking` (split off), `actions` (validated, in the model's coordinate
    space, in the order written), `format` (the one found), `text` (prose outside the calls)."""

    thinking: str
    actions: list[Action] = field(default_factory=list)
    format: str = "qwen35"
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"thinking": self.thinking, "actions": [a.to_dict() for a in self.actions],
                "format": self.format, "text": self.text}


def parse_output(
    text: str,
    *,
    fmt: str = "auto",
    space: str = "norm1000",
    tool_calls: list[dict[str, Any]] | None = None,
    platform: str | None = None,
) -> ParsedOutput:
    """Parse one assistant turn into actions in the model's coordinate `space`.

    `tool_calls`: structured calls from an OpenAI-compatible server (used when given and non-empty, or
    when fmt="openai"). `platform` ("desktop" / "phone"): what UI-TARS `click`/`drag` mean (default
    desktop) and, for tool calls, rejects the other platform's tool. At least one action is returned.
    Raises ParseError only — for bad arguments too.
    """
    if fmt not in FORMATS:
        raise ParseError(f"unknown output format {show(fmt)}; expected one of: {', '.join(FORMATS)}")
    if space not in PARSE_SPACES:
        raise ParseError(f"unknown coordinate space {show(space)}; expected one of: {', '.join(PARSE_SPACES)}")
    if platform not in (None, "desktop", "phone"):
        raise ParseError(f"unknown platform {show(platform)}; expected 'desktop' or 'phone'")
    if not isinstance(text, str):
        raise ParseError(f"model output must be text, got {type(text).__name__}")
    thinking, answer = split_thinking(text)

    if fmt == "openai" or (fmt == "auto" and tool_calls):
        calls = openai_calls(tool_calls if tool_calls is not None else [])
        if not calls:
            raise ParseError(_HINT["openai"])
        return _build(thinking, calls, "openai", answer, space, platform)

    if fmt == "uitars" or (fmt == "auto" and not has_tool_call_tags(answer) and looks_like_uitars(answer)):
        thought, section = split_uitars(answer)
        actions = parse_uitars(section, space, platform or "desktop")
        return ParsedOutput(_join(thinking, thought), actions, "uitars", "")

    calls, prose = find_tool_calls(answer, fmt)
    if not calls:
        raise ParseError(_HINT["nous" if fmt == "nous" else "qwen35"])
    return _build(thinking, calls, calls[0].format, prose, space, platform)


def _build(thinking: str, calls: list[RawCall], fmt: str, prose: str, space: str,
           platform: str | None) -> ParsedOutput:
    actions = []
    for n, call in enumerate(calls, 1):
        try:
            actions.append(action_from_arguments(call.tool, call.arguments, space, platform=platform))
        except ParseError as exc:
            if len(calls) == 1:
                raise
            raise ParseError(f"tool call {n} of {len(calls)}: {exc}") from None
    return ParsedOutput(thinking, actions, fmt, prose)


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)
