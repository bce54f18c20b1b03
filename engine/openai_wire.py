"""Conversion between engine messages (Hugging Face chat format, PIL images) and the OpenAI wire format.

Engine side (see engine.api): content parts `{"type": "image", "image": PIL.Image}`; assistant `tool_calls`
with `arguments` as a dict; `{"role": "tool", "content": ...}` results.
Wire side: content parts `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`;
`tool_calls` with `id` and `arguments` as a JSON string; tool results carry `tool_call_id`.

`messages_from_wire` validates untrusted input (it is what the server receives) and raises `WireError`
naming the offending field (`param`, OpenAI-style dotted path) and what to send instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from engine.api import Message

ROLES = ("system", "developer", "user", "assistant", "tool")
# Decompression-bomb guard for images received by the server: a 4K screenshot is 8.3 MP.
MAX_IMAGE_PIXELS = 64_000_000


class WireError(ValueError):
    """A request field that is not valid OpenAI chat input. `param` names the field, `code` the class."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


# ---------------------------------------------------------------- images

def image_to_data_url(image: Image.Image) -> str:
    """PNG-encode a PIL image as a base64 data URL (lossless, so the server sees exactly our pixels)."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # level 1: ~5x faster than the default, slightly larger
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def data_url_to_image(url: str, *, param: str = "image_url") -> Image.Image:
    """Decode a `data:image/...;base64,` URL into an RGB PIL image. Raises WireError (code invalid_image)."""
    if not isinstance(url, str) or not url.startswith("data:"):
        shown = url[:40] + "..." if isinstance(url, str) and len(url) > 40 else url
        raise WireError(f"{param}: only base64 data URLs (data:image/png;base64,...) are accepted, got {shown!r}; "
                        "this server does not fetch remote URLs", param=param, code="invalid_image")
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise WireError(f"{param}: data URL must be base64-encoded (data:image/png;base64,...)",
                        param=param, code="invalid_image")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{param}: image data is not valid base64", param=param, code="invalid_image") from None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise WireError(f"{param}: image is {img.width}x{img.height}, above the {MAX_IMAGE_PIXELS} pixel limit",
                                param=param, code="invalid_image")
            return img.convert("RGB")
    except WireError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise WireError(f"{param}: image data cannot be decoded ({type(exc).__name__}); send a PNG or JPEG",
                        param=param, code="invalid_image") from None


def count_images(messages: Sequence[Message]) -> int:
    """Number of image parts in engine or wire messages."""
    n = 0
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            n += sum(1 for p in content if isinstance(p, dict) and p.get("type") in ("image", "image_url"))
    return n


# ---------------------------------------------------------------- engine → wire (the remote engine)

def messages_to_wire(messages: Sequence[Message], *, images_in_tool: bool = True) -> list[dict[str, Any]]:
    """Engine messages → OpenAI messages: images as PNG data URLs, tool-call arguments as JSON strings.

    Tool results get the `tool_call_id` of the call they answer (matched in order), which OpenAI-style
    servers require. With `images_in_tool=False` a tool result keeps only its text and its images move to a
    user message right after the run of tool results, for servers that accept only text in tool messages
    (the OpenAI spec's shape; some vLLM model families enforce it). Raises ValueError for an image part that
    holds no image.
    """
    out: list[dict[str, Any]] = []
    pending_ids: list[str] = []
    moved: list[dict[str, Any]] = []  # image parts taken out of the current run of tool messages
    for msg in messages:
        role = msg.get("role")
        if moved and role != "tool":
            out.append({"role": "user", "content": moved})
            moved = []
        wire: dict[str, Any] = {"role": role, "content": _content_to_wire(msg.get("content"))}
        if role == "tool" and not images_in_tool and isinstance(wire["content"], list):
            moved += [p for p in wire["content"] if p.get("type") == "image_url"]
            wire["content"] = "\n".join(p["text"] for p in wire["content"] if p.get("type") == "text")
        if role == "assistant" and msg.get("tool_calls"):
            calls = tool_calls_to_wire(msg["tool_calls"])
            wire["tool_calls"] = calls
            pending_ids = [c["id"] for c in calls]
            if wire["content"] in ("", None):
                wire["content"] = None
        if role == "assistant" and isinstance(msg.get("reasoning_content"), str) and msg["reasoning_content"]:
            # Past thinking, which Qwen3.5's template prints as <think>…</think> for the turns after the last user
            # query. Under both names: vLLM up to 0.10, SGLang, llama.cpp and Model Studio read
            # `reasoning_content`; newer vLLM reads `reasoning` (and hands it to the template as reasoning_content).
            wire["reasoning_content"] = wire["reasoning"] = msg["reasoning_content"]
        if role == "tool":
            wire["tool_call_id"] = msg.get("tool_call_id") or (pending_ids.pop(0) if pending_ids else _call_id())
            if isinstance(msg.get("name"), str):
                wire["name"] = msg["name"]
        out.append(wire)
    if moved:
        out.append({"role": "user", "content": moved})
    return out


def images_in_tool_messages(wire: Sequence[dict[str, Any]]) -> int:
    """Image parts that sit in tool messages of OpenAI `wire` messages."""
    return sum(1 for m in wire if m.get("role") == "tool" and isinstance(m.get("content"), list)
               for p in m["content"] if isinstance(p, dict) and p.get("type") == "image_url")


def _content_to_wire(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image":
            image = part.get("image")
            if isinstance(image, Image.Image):
                url = image_to_data_url(image)
            elif isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
                url = image
            else:
                raise ValueError(f"image part holds {type(image).__name__}, expected a PIL image or a URL")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "image_url":
            parts.append(part)
        else:
            raise ValueError(f"unknown content part type {kind!r}; use 'text' or 'image'")
    return parts


def tool_calls_to_wire(calls: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Engine/HF tool calls (arguments dict) → OpenAI tool calls (id, arguments JSON string)."""
    out = []
    for call in calls:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        out.append({
            "id": call.get("id") or _call_id(),
            "type": "function",
            "function": {"name": fn.get("name", ""),
                         "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)},
        })
    return out


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------- wire → engine (the server)

def tool_calls_from_wire(calls: Any, *, param: str = "tool_calls") -> list[dict[str, Any]]:
    """OpenAI tool calls → engine tool calls (arguments decoded to a dict). Raises WireError."""
    if not isinstance(calls, list):
        raise WireError(f"{param} must be a list of tool calls", param=param, code="invalid_type")
    out = []
    for i, call in enumerate(calls):
        where = f"{param}[{i}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise WireError(f"{where} must be {{'type': 'function', 'function': {{'name': str, 'arguments': str}}}}",
                            param=where, code="invalid_type")
        args = fn.get("arguments", "{}")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                raise WireError(f"{where}.function.arguments is not valid JSON", param=f"{where}.function.arguments",
                                code="invalid_value") from None
        if not isinstance(args, dict):
            raise WireError(f"{where}.function.arguments must encode a JSON object",
                            param=f"{where}.function.arguments", code="invalid_type")
        out.append({"id": call.get("id"), "type": "function", "function": {"name": fn["name"], "arguments": args}})
    return out


def messages_from_wire(messages: Any) -> list[Message]:
    """Validate OpenAI messages and turn them into engine messages (images decoded to PIL). Raises WireError."""
    if not isinstance(messages, list) or not messages:
        raise WireError("messages must be a non-empty list", param="messages", code="invalid_type")
    out: list[Message] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise WireError(f"{where} must be an object with 'role' and 'content'", param=where, code="invalid_type")
        role = msg.get("role")
        if role not in ROLES:
            raise WireError(f"{where}.role is {role!r}; expected one of {', '.join(ROLES)}",
                            param=f"{where}.role", code="invalid_value")
        engine_msg: Message = {"role": "system" if role == "developer" else role,
                               "content": _content_from_wire(msg.get("content"), f"{where}.content")}
        if role == "assistant" and msg.get("tool_calls") is not None:
            engine_msg["tool_calls"] = tool_calls_from_wire(msg["tool_calls"], param=f"{where}.tool_calls")
        if role == "assistant":  # past thinking: `reasoning_content`, or `reasoning` as newer vLLM clients send it
            reasoning = msg.get("reasoning_content")
            reasoning = reasoning if isinstance(reasoning, str) else msg.get("reasoning")
            if isinstance(reasoning, str):
                engine_msg["reasoning_content"] = reasoning
        if engine_msg["content"] is None:
            if role != "assistant" or "tool_calls" not in engine_msg:
                raise WireError(f"{where}.content is missing", param=f"{where}.content", code="invalid_type")
            engine_msg["content"] = ""
        if role == "tool" and isinstance(msg.get("name"), str):
            engine_msg["name"] = msg["name"]
        out.append(engine_msg)
    return out


def _content_from_wire(content: Any, where: str) -> Any:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise WireError(f"{where} must be a string or a list of content parts", param=where, code="invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pwhere = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise WireError(f"{pwhere}.text must be a string", param=f"{pwhere}.text", code="invalid_type")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            parts.append({"type": "image", "image": data_url_to_image(url, param=f"{pwhere}.image_url")})
        else:
            raise WireError(f"{pwhere}.type is {kind!r}; expected 'text' or 'image_url'",
                            param=f"{pwhere}.type", code="invalid_value")
    return parts
