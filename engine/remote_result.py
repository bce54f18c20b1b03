"""An OpenAI chat-completion answer (JSON or accumulated stream) → GenerationResult, for the remote engine.

Structured `tool_calls` get their JSON arguments decoded and are also written back into the answer as
Qwen3.5 XML, so text-only parsers see them too (the result's `content` keeps only the prose, which is what a
later prompt sends back beside the structured calls); thinking comes from `reasoning_content` plus any
`<think>` left in the content.
"""

from __future__ import annotations

import json
import time
from typing import Any

from engine.api import GenerationResult, Pointer, split_thinking
from engine.toolcall_text import render_tool_call_xml

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop", "abort": "cancelled"}


#: The extension field visagent's own server adds (engine/server.py): {"pointer": {...}} on an answer of a model
#: with a pointing head, and {"prompt_profile", "history_images", "points", "coord_space"} on its /v1/models
#: entry. Other OpenAI-compatible servers send none; clients that do not know it ignore it.
EXTENSION = "visagent"


def pointer_from_wire(extension: Any) -> Pointer | None:
    """The pointing head's answer from a response's `visagent` field; None when absent or malformed."""
    if not isinstance(extension, dict) or not isinstance(extension.get("pointer"), dict):
        return None
    p = extension["pointer"]
    try:
        x, y, score, tokens = float(p["x"]), float(p["y"]), float(p.get("score", 0.0)), int(p.get("tokens", 0))
    except (KeyError, TypeError, ValueError):
        return None
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        return None
    return Pointer(x=x, y=y, score=score, tokens=tokens)


def calls_from_wire(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wire tool calls → GenerationResult.tool_calls: arguments decoded to a dict (raw string if invalid JSON)."""
    out = []
    for call in calls:
        fn = call.get("function") or {}
        args: Any = fn.get("arguments") or "{}"
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass  # kept as the raw string so the caller's parser can report it to the model
        out.append({"id": call.get("id"), "type": "function", "function": {"name": fn.get("name", ""), "arguments": args}})
    return out


def render_calls(calls: list[dict[str, Any]]) -> str:
    """Calls as the Qwen3.5 XML text the model itself would have written."""
    return "\n".join(render_tool_call_xml(c["function"]["name"], c["function"]["arguments"]) for c in calls)


def assemble_result(reasoning: str, content: str, calls: list[dict[str, Any]], choice: dict[str, Any],
                    started: float, *, thinking_open: bool = False) -> GenerationResult:
    """One GenerationResult from the answer's parts; `started` is the perf_counter() at the call's start.
    `thinking_open`: thinking was on (the prompt opened `<think>`); content cut by the token limit with no
    reasoning field and no `</think>` is then a thought cut off before its end, not an answer."""
    if thinking_open and choice.get("finish_reason") == "length" and not reasoning and not calls \
            and "</think>" not in content and "<think>" not in content:
        thinking, answer = content.strip(), ""
    else:
        thinking, answer = split_thinking(content)
    thinking = "\n".join(t for t in (reasoning.strip(), thinking) if t)
    prose = answer
    if calls:  # structured calls are also written back as text, so text-only parsers see them
        answer = "\n".join(t for t in (answer, render_calls(calls)) if t)
    text = f"<think>\n{thinking}\n</think>\n\n{answer}" if thinking else answer
    finish = _FINISH.get(choice.get("finish_reason") or "stop", "stop")
    if finish == "stop" and isinstance(choice.get("stop_reason"), str):
        finish = "stop_string"
    result = make_result(text, answer, finish, started, thinking=thinking)
    result.tool_calls = calls or None
    if calls:  # the turn as produced: the prose as content, the calls as tool_calls (never also as text)
        result.content = prose
    return result


def make_result(text: str, answer: str, finish: Any, started: float, *, thinking: str = "") -> GenerationResult:
    return GenerationResult(text=text, thinking=thinking, answer=answer, finish_reason=finish,
                            timings={"total": time.perf_counter() - started})


def apply_usage(result: GenerationResult, usage: Any) -> None:
    """Copy the server's token counts (prompt, completion, cached prompt tokens) onto the result."""
    if not isinstance(usage, dict):
        return
    result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    result.generated_tokens = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        result.cached_tokens = int(details.get("cached_tokens") or 0)


def error_message(body: bytes, fallback: str) -> str:
    """The human part of an error body: OpenAI {"error": {"message"}}, vLLM {"message"}, or the text."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:300] or fallback
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if data.get("detail"):
            return str(data["detail"])
    return str(data)[:300]
