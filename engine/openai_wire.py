"""Conversion between engine messages (Hugging Face chat format, PIL images) and the OpenAI wire format.

Engine side (see engine.api): content parts `{"type": "image", "image": PIL.Image}`; assistant `tool_calls`
with `arguments` as a dict; `{"role": "tool", "content": ...}` results.
Wire side: content parts `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`;
`tool_calls` with `id` and `arguments` as a JSON string; tool results carry `tool_call_id`.

The server's side (untrusted input) is engine.chat_schema (validation) and engine.chat_protocol (limits,
conversion); the image helpers here raise `WireError` naming the offending field (`param`) and what to send.
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

from engine import image_codec
from engine.api import Message

ROLES = ("system", "developer", "user", "assistant", "tool")
# Decompression-bomb guard for images received by the server: a 4K screenshot is 8.3 MP, a 5K one 14.7 MP.
MAX_IMAGE_PIXELS = 1 << 24
# Formats a screenshot comes in; anything else is refused before any decoder runs.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class WireError(ValueError):
    """A request field that is not valid OpenAI chat input. `param` names the field, `code` the class."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


# ---------------------------------------------------------------- images

def image_to_data_url(image: Image.Image) -> str:
    """PNG-encode a PIL image as a base64 data URL (lossless, so the server sees exactly our pixels). An image
    registered with engine.image_codec.keep_encoding is encoded once and its URL reused (same string)."""
    return image_codec.data_url(image)


def data_url_bytes(url: Any, *, param: str = "image_url") -> bytes:
    """The encoded image inside a `data:image/...;base64,` URL. Raises WireError (code invalid_image)."""
    if not isinstance(url, str) or not url.startswith("data:"):
        shown = url[:40] + "..." if isinstance(url, str) and len(url) > 40 else url
        raise WireError(f"{param}: only base64 data URLs (data:image/png;base64,...) are accepted, got {shown!r}; "
                        "this server does not fetch remote URLs", param=param, code="invalid_image")
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise WireError(f"{param}: data URL must be base64-encoded (data:image/png;base64,...)",
                        param=param, code="invalid_image")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{param}: image data is not valid base64", param=param, code="invalid_image") from None


def image_size(raw: bytes, *, param: str = "image_url") -> tuple[int, int]:
    """Width and height from the image's header alone (PNG IHDR, JPEG SOF...): no pixel is decoded."""
    with _open(raw, param) as img:
        return img.size


def decode_image(raw: bytes, *, param: str = "image_url") -> Image.Image:
    """Decode encoded image bytes into an RGB PIL image. Check `image_size` first: this allocates the pixels."""
    with _open(raw, param) as img:
        try:
            return img.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise WireError(f"{param}: image data cannot be decoded ({type(exc).__name__}); send a PNG or JPEG",
                            param=param, code="invalid_image") from None


def data_url_to_image(url: str, *, param: str = "image_url", max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode a `data:image/...;base64,` URL into an RGB PIL image, refusing more than `max_pixels` from the
    header before decoding. Raises WireError (code invalid_image or image_too_large)."""
    raw = data_url_bytes(url, param=param)
    width, height = image_size(raw, param=param)
    if width * height > max_pixels:
        raise WireError(f"{param}: image is {width}x{height}, above the {max_pixels} pixel limit",
                        param=param, code="image_too_large")
    return decode_image(raw, param=param)


def _open(raw: bytes, param: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
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
