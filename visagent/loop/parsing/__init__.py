"""Model output ⇄ actions: `parse_output` reads Qwen3.5 XML, Nous JSON, OpenAI tool_calls and UI-TARS text;
`render_action` / `render_tool_call` write actions back in those forms. See the submodules for details."""

from visagent.loop.parsing.output import FORMATS, PARSE_SPACES, ParsedOutput, parse_output
from visagent.loop.parsing.render import RENDER_FORMATS, render_action, render_tool_call, tool_for_action
from visagent.loop.parsing.uitars import UITARS_SCROLL_PIXELS, UITARS_WAIT_SECONDS, uitars_platform

__all__ = [
    "FORMATS", "PARSE_SPACES", "RENDER_FORMATS", "UITARS_SCROLL_PIXELS", "UITARS_WAIT_SECONDS", "ParsedOutput",
    "parse_output", "render_action", "render_tool_call", "tool_for_action", "uitars_platform",
]
