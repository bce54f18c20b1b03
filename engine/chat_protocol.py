"""The OpenAI chat-completions protocol as `visagent serve` speaks it: request validation and response shapes.

Kept apart from the HTTP plumbing (engine.server) so each reads in one sitting. Every bad field raises
`RequestError` with an HTTP status and an OpenAI-style error body naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from engine.api import GenerationConfig, GenerationResult, Message, ToolSchema
from engine.openai_wire import WireError, count_images, messages_from_wire
from engine.toolcall_text import ParsedToolCall, parse_tool_calls

_FINISH = {"stop": "stop", "stop_string": "stop", "length": "length", "cancelled": "abort"}


class RequestError(Exception):
    """A request the server refuses: `status` (4xx/5xx) plus the OpenAI error fields."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(str(self), type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The OpenAI error object: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass
class ChatRequest:
    """A validated /v1/chat/completions request, in engine terms."""

    messages: list[Message]
    tools: list[ToolSchema] | None
    parse_tools: bool  # tools given and tool_choice is not "none": tool-call text becomes `tool_calls`
    config: GenerationConfig
    stream: bool
    include_usage: bool
    session_id: str | None
    n_images: int


def parse_chat_request(body: Any, *, served_model: str, max_images: int | None,
                       session_header: str | None = None) -> ChatRequest:
    """Validate a decoded JSON body. Raises RequestError (400 bad field, 404 unknown model)."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", code="invalid_type")
    model = body.get("model")
    if model is not None and model != served_model:
        raise RequestError(404, f"model {model!r} is not served here; this server serves {served_model!r}",
                           param="model", code="model_not_found")
    raw_messages = body.get("messages")
    # Counted before decoding, so a request with too many images costs no decoding work.
    n_images = count_images(raw_messages) if isinstance(raw_messages, list) else 0
    if max_images is not None and n_images > max_images:
        raise RequestError(400, f"request has {n_images} images but at most {max_images} image(s) may be sent per "
                           "request; send fewer or restart the server with a higher --max-images",
                           param="messages", code="too_many_images")
    try:
        messages = messages_from_wire(raw_messages)
    except WireError as exc:
        raise RequestError(400, str(exc), param=exc.param, code=exc.code) from None
    tools = _tools(body.get("tools"))
    choice = body.get("tool_choice", "auto")
    if not (choice in ("auto", "none", "required") or isinstance(choice, dict)):
        raise RequestError(400, f"tool_choice is {choice!r}; use 'auto', 'none', 'required' or a function object",
                           param="tool_choice", code="invalid_value")
    if _int(body, "n", 1, 1, 1 << 10) != 1:
        raise RequestError(400, f"n is {body['n']}; this server returns one choice per request (n=1)", param="n",
                           code="invalid_value")
    if _num(body, "frequency_penalty", 0.0, -2.0, 2.0) != 0.0:
        raise RequestError(400, "frequency_penalty is not supported; use presence_penalty or repetition_penalty",
                           param="frequency_penalty", code="unsupported_parameter")
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise RequestError(400, "chat_template_kwargs must be an object", param="chat_template_kwargs",
                           code="invalid_type")
    thinking = kwargs.get("enable_thinking", False)
    if not isinstance(thinking, bool):
        raise RequestError(400, "chat_template_kwargs.enable_thinking must be true or false",
                           param="chat_template_kwargs.enable_thinking", code="invalid_type")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    default = GenerationConfig()
    config = GenerationConfig(
        max_new_tokens=_int({"max_tokens": max_tokens}, "max_tokens", default.max_new_tokens, 1, 1 << 20),
        temperature=_num(body, "temperature", default.temperature, 0.0, 10.0),
        top_p=_num(body, "top_p", default.top_p, 0.0, 1.0, low_open=True),
        top_k=max(0, _int(body, "top_k", default.top_k, -1, 1 << 20)),
        repetition_penalty=_num(body, "repetition_penalty", default.repetition_penalty, 0.0, 10.0, low_open=True),
        presence_penalty=_num(body, "presence_penalty", default.presence_penalty, -2.0, 2.0),
        seed=_int(body, "seed", None, -(1 << 63), (1 << 64) - 1),
        stop=_stop(body.get("stop")),
        enable_thinking=thinking,
    )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "stream must be true or false", param="stream", code="invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "stream_options must be an object", param="stream_options", code="invalid_type")
    session = body.get("session_id") or session_header or body.get("user")
    if session is not None and not isinstance(session, str):
        raise RequestError(400, "session_id / user must be a string", param="session_id", code="invalid_type")
    return ChatRequest(messages=messages, tools=tools, parse_tools=bool(tools) and choice != "none", config=config,
                       stream=stream, include_usage=bool(options.get("include_usage")), session_id=session or None,
                       n_images=n_images)


def _tools(tools: Any) -> list[ToolSchema] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise RequestError(400, "tools must be a list of {'type': 'function', 'function': {...}}", param="tools",
                           code="invalid_type")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise RequestError(400, f"tools[{i}] must be {{'type': 'function', 'function': {{'name': str, "
                               "'parameters': {...}}}}", param=f"tools[{i}]", code="invalid_type")
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise RequestError(400, f"tools[{i}].function.parameters must be a JSON schema object",
                               param=f"tools[{i}].function.parameters", code="invalid_type")
    return tools or None


def _num(body: dict[str, Any], key: str, default: float, lo: float, hi: float, *, low_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"{key} must be a number, got {json.dumps(value)[:40]}", param=key, code="invalid_type")
    if not (lo < value <= hi if low_open else lo <= value <= hi):
        raise RequestError(400, f"{key} is {value}; it must be within {'(' if low_open else '['}{lo}, {hi}]",
                           param=key, code="invalid_value")
    return float(value)


def _int(body: dict[str, Any], key: str, default: int | None, lo: int, hi: int) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, f"{key} must be an integer, got {json.dumps(value)[:40]}", param=key,
                           code="invalid_type")
    if not lo <= value <= hi:
        raise RequestError(400, f"{key} is {value}; it must be within [{lo}, {hi}]", param=key, code="invalid_value")
    return value


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise RequestError(400, "stop must be a string or a list of strings", param="stop", code="invalid_type")


# ---------------------------------------------------------------- responses

def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def split_answer(result: GenerationResult, req: ChatRequest) -> tuple[str, list[ParsedToolCall]]:
    """The answer's content and tool calls (parsed from text when the request has tools)."""
    if not req.parse_tools:
        return result.answer, []
    content, calls = parse_tool_calls(result.answer, req.tools)
    if result.tool_calls:  # an engine that already had them structured (e.g. a RemoteEngine behind us)
        calls = [ParsedToolCall(c["function"]["name"], c["function"]["arguments"])
                 for c in result.tool_calls if isinstance(c["function"].get("arguments"), dict)]
    return content, calls


def wire_tool_calls(calls: list[ParsedToolCall], *, with_index: bool = False) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        item: dict[str, Any] = {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
        if with_index:
            item = {"index": i, **item}
        out.append(item)
    return out


def finish_reason(result: GenerationResult, calls: list[ParsedToolCall]) -> str:
    return "tool_calls" if calls and result.finish_reason != "length" else _FINISH.get(result.finish_reason, "stop")


def usage_body(result: GenerationResult) -> dict[str, Any]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.generated_tokens,
            "total_tokens": result.prompt_tokens + result.generated_tokens,
            "prompt_tokens_details": {"cached_tokens": result.cached_tokens}}


def completion_body(result: GenerationResult, req: ChatRequest, *, completion_id: str, model: str) -> dict[str, Any]:
    """The non-streaming response: content, reasoning_content, parsed tool_calls, usage (and the `visagent`
    extension with the pointing head's answer when the model has one)."""
    content, calls = split_answer(result, req)
    message: dict[str, Any] = {"role": "assistant", "content": content if content or not calls else None}
    if result.thinking:
        message["reasoning_content"] = result.thinking
    if calls:
        message["tool_calls"] = wire_tool_calls(calls)
    body = {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(result, calls),
                         "logprobs": None}],
            "usage": usage_body(result)}
    body.update(extension_body(result))
    return body


def extension_body(result: GenerationResult) -> dict[str, Any]:
    """{"visagent": {"pointer": ...}} for an answer with a pointing head's point (engine/pointer.py), else {}:
    a visagent client clicks there as a local engine would (engine.remote_result.pointer_from_wire)."""
    pointer = getattr(result, "pointer", None)
    return {} if pointer is None else {"visagent": {"pointer": pointer.to_dict()}}


def chunk_body(completion_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One streamed chunk (object chat.completion.chunk) with a single choice."""
    return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
