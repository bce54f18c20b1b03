"""The OpenAI chat-completions protocol as `visagent serve` speaks it: request validation and response shapes.

Kept apart from the HTTP plumbing (engine.server) so each reads in one sitting. The request's shape is checked
by the pydantic models of engine.chat_schema; the limits that bound what a request may cost (RequestLimits)
and the conversion to engine messages are here. Every bad field raises `RequestError` with an HTTP status and an
OpenAI-style error body naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from engine.api import GenerationConfig, GenerationResult, Message, ToolSchema
from engine.chat_schema import ChatMessage, ImagePart, SchemaError, TextPart, validate_request
from engine.openai_wire import MAX_IMAGE_PIXELS, WireError, count_images, data_url_bytes, decode_image, image_size
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


@dataclass(frozen=True)
class RequestLimits:
    """What one request may cost the server before the engine sees it; each refusal is a 4xx naming the flag
    that raises the limit. None: no limit."""

    max_images: int | None = 16
    max_text_chars: int | None = 1 << 20  # characters of text (messages and tools), counted before tokenizing
    max_image_pixels: int = MAX_IMAGE_PIXELS  # width x height of one image, read from its header
    max_request_pixels: int = 1 << 25  # all images of the request together (four 4K screenshots fit)


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
    n_pixels: int = 0  # decoded pixels of all its images


def parse_chat_request(body: Any, *, served_model: str, limits: RequestLimits = RequestLimits(),
                       session_header: str | None = None) -> ChatRequest:
    """Validate a decoded JSON body against the OpenAI schema (engine.chat_schema) and `limits`, then decode its
    images. Raises RequestError (400 bad field or over a limit, 404 unknown model). The limits are checked
    cheapest first: text length and image count on the raw JSON, image sizes from their headers, and only
    then are pixels decoded."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", code="invalid_type")
    raw_messages = body.get("messages")
    chars = text_length(raw_messages) + text_length(body.get("tools"))
    if limits.max_text_chars is not None and chars > limits.max_text_chars:
        raise RequestError(400, f"request text is {chars} characters, above the {limits.max_text_chars} character "
                           "limit; send less text, or restart the server with a higher --max-text-chars",
                           param="messages", code="text_too_long")
    # Counted before decoding, so a request with too many images costs no decoding work.
    n_images = count_images(raw_messages) if isinstance(raw_messages, list) else 0
    if limits.max_images is not None and n_images > limits.max_images:
        raise RequestError(400, f"request has {n_images} images but at most {limits.max_images} image(s) may be "
                           "sent per request; send fewer or restart the server with a higher --max-images",
                           param="messages", code="too_many_images")
    try:
        req = validate_request(body)
    except SchemaError as exc:
        raise RequestError(400, str(exc), param=exc.param, code=exc.code) from None
    if req.model is not None and req.model != served_model:
        raise RequestError(404, f"model {req.model!r} is not served here; this server serves {served_model!r}",
                           param="model", code="model_not_found")
    if req.frequency_penalty:
        raise RequestError(400, "frequency_penalty is not supported; use presence_penalty or repetition_penalty",
                           param="frequency_penalty", code="unsupported_parameter")
    messages, n_pixels = _engine_messages(req.messages, limits)
    tools = body["tools"] if req.tools else None  # as sent (validated): the template renders them verbatim
    default = GenerationConfig()
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    config = GenerationConfig(
        max_new_tokens=default.max_new_tokens if max_tokens is None else max_tokens,
        temperature=default.temperature if req.temperature is None else req.temperature,
        top_p=default.top_p if req.top_p is None else req.top_p,
        top_k=default.top_k if req.top_k is None else max(0, req.top_k),
        repetition_penalty=default.repetition_penalty if req.repetition_penalty is None else req.repetition_penalty,
        presence_penalty=default.presence_penalty if req.presence_penalty is None else req.presence_penalty,
        seed=req.seed,
        stop=req.stop,
        enable_thinking=bool(req.chat_template_kwargs and req.chat_template_kwargs.enable_thinking),
    )
    session = req.session_id or session_header or req.user
    return ChatRequest(messages=messages, tools=tools, parse_tools=bool(tools) and req.tool_choice != "none",
                       config=config, stream=req.stream,
                       include_usage=bool(req.stream_options and req.stream_options.include_usage),
                       session_id=session or None, n_images=n_images, n_pixels=n_pixels)


def text_length(value: Any) -> int:
    """Characters of text in raw JSON messages or tools: every string value, except image parts and the `role`
    and `type` tags (the template renders those as fixed markup)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("type") == "image_url":
                continue
            stack.extend(v for k, v in item.items() if k not in ("role", "type"))
    return total


def _engine_messages(messages: list[ChatMessage], limits: RequestLimits) -> tuple[list[Message], int]:
    """Validated wire messages -> (engine messages, decoded pixels). Image sizes are read from their headers and
    checked against the per-image and per-request pixel limits before any is decoded."""
    encoded: dict[tuple[int, int], bytes] = {}
    total = 0
    for i, msg in enumerate(messages):
        for j, part in enumerate(msg.content if isinstance(msg.content, list) else ()):
            if isinstance(part, ImagePart):
                param = f"messages[{i}].content[{j}].image_url"
                try:
                    raw = data_url_bytes(part.image_url.url, param=param)
                    width, height = image_size(raw, param=param)
                except WireError as exc:
                    raise RequestError(400, str(exc), param=exc.param, code=exc.code) from None
                if width * height > limits.max_image_pixels:
                    raise RequestError(400, f"{param}: image is {width}x{height} = {width * height} pixels, above "
                                       f"the {limits.max_image_pixels} pixel limit per image; send a smaller image "
                                       "or restart the server with a higher --max-image-pixels", param=param,
                                       code="image_too_large")
                total += width * height
                encoded[(i, j)] = raw
    if total > limits.max_request_pixels:
        raise RequestError(400, f"the request's images hold {total} pixels together, above the "
                           f"{limits.max_request_pixels} pixel limit per request; send fewer or smaller images, or "
                           "restart the server with a higher --max-request-pixels", param="messages",
                           code="too_many_pixels")
    out: list[Message] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        content: Any = msg.content
        if isinstance(content, list):
            content = []
            for j, part in enumerate(msg.content):
                if isinstance(part, TextPart):
                    content.append({"type": "text", "text": part.text})
                    continue
                try:
                    image = decode_image(encoded.pop((i, j)), param=f"{where}.content[{j}].image_url")
                except WireError as exc:
                    raise RequestError(400, str(exc), param=exc.param, code=exc.code) from None
                content.append({"type": "image", "image": image})
        engine_msg: Message = {"role": "system" if msg.role == "developer" else msg.role, "content": content}
        if msg.role == "assistant" and msg.tool_calls is not None:
            engine_msg["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.function.name, "arguments": c.function.arguments}} for c in msg.tool_calls]
        reasoning = msg.reasoning_content if msg.reasoning_content is not None else msg.reasoning
        if msg.role == "assistant" and reasoning is not None:  # `reasoning_content`, or `reasoning` (newer vLLM)
            engine_msg["reasoning_content"] = reasoning
        if content is None:
            if "tool_calls" not in engine_msg:
                raise RequestError(400, f"{where}.content is missing", param=f"{where}.content", code="invalid_type")
            engine_msg["content"] = ""
        if msg.role == "tool" and msg.name is not None:
            engine_msg["name"] = msg.name
        out.append(engine_msg)
    return out, total

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
