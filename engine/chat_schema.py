"""Pydantic models of the OpenAI chat-completions request, as `visagent serve` accepts it.

Strict types (no "5" for 5, no 1.5 for an integer), unknown fields ignored (clients send fields this server does
not use), and every validation failure turned into one OpenAI-style error: `param` is the field's dotted path
(`messages[0].content[1].type`), `code` is `invalid_type` or `invalid_value`. Engine semantics (image decoding,
limits, the served model's name) are engine.chat_protocol's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic_core import PydanticCustomError

ROLES = ("system", "developer", "user", "assistant", "tool")
_TAG = "~"  # prefix of this module's union tags; pydantic puts the tag into an error's location, param drops it


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


# ---------------------------------------------------------------- content

def _image_url_spec(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value  # some clients send the URL bare


class ImageURL(_Strict):
    url: str
    detail: str | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: Annotated[ImageURL, BeforeValidator(_image_url_spec)]


def _part_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return _TAG + kind if kind in ("text", "image_url") else None


ContentPart = Annotated[Union[Annotated[TextPart, Tag(_TAG + "text")], Annotated[ImagePart, Tag(_TAG + "image_url")]],
                        Discriminator(_part_kind, custom_error_type="unknown_part",
                                      custom_error_message="expected a part of type 'text' or 'image_url'")]


def _content_kind(value: Any) -> str | None:
    return _TAG + "str" if isinstance(value, str) else _TAG + "parts" if isinstance(value, list) else None


Content = Annotated[Union[Annotated[str, Tag(_TAG + "str")], Annotated[list[ContentPart], Tag(_TAG + "parts")]],
                    Discriminator(_content_kind, custom_error_type="invalid_type",
                                  custom_error_message="must be a string or a list of content parts")]


# ---------------------------------------------------------------- messages and tools

def _arguments(value: Any) -> dict[str, Any]:
    """Tool-call arguments: a JSON string (the wire form) or an object, decoded to a dict."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            raise PydanticCustomError("invalid_value", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise PydanticCustomError("invalid_type", "must encode a JSON object")
    return value


class ToolCallFunction(_Strict):
    name: str
    arguments: Annotated[dict[str, Any], BeforeValidator(_arguments)] = Field(default_factory=dict)


class ToolCall(_Strict):
    id: str | None = None
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(_Strict):
    role: Literal[ROLES]  # type: ignore[valid-type]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # past thinking as newer vLLM clients name it


class FunctionDef(_Strict):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Strict):
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"] = "function"
    function: NamedFunction


def _choice_kind(value: Any) -> str | None:
    return _TAG + "mode" if isinstance(value, str) else _TAG + "named" if isinstance(value, dict) else None


ToolChoice = Annotated[Union[Annotated[Literal["auto", "none", "required"], Tag(_TAG + "mode")],
                             Annotated[NamedToolChoice, Tag(_TAG + "named")]],
                       Discriminator(_choice_kind, custom_error_type="invalid_type",
                                     custom_error_message="use 'auto', 'none', 'required' or a function object")]


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise PydanticCustomError("invalid_type", "must be a string or a list of strings")


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatTemplateKwargs(_Strict):
    enable_thinking: bool = False


class ChatCompletionRequest(_Strict):
    """POST /v1/chat/completions. Sampling fields left out are None (the engine's defaults apply)."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice = "auto"
    n: int | None = Field(None, ge=1, le=1)  # one choice per request
    max_tokens: int | None = Field(None, ge=1, le=1 << 20)
    max_completion_tokens: int | None = Field(None, ge=1, le=1 << 20)
    temperature: float | None = Field(None, ge=0.0, le=10.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1, le=1 << 20)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=-(1 << 63), le=(1 << 64) - 1)
    stop: Annotated[tuple[str, ...], BeforeValidator(_stop)] = ()
    stream: bool = False
    stream_options: StreamOptions | None = None
    chat_template_kwargs: ChatTemplateKwargs | None = None
    session_id: str | None = None
    user: str | None = None


# ---------------------------------------------------------------- errors

class SchemaError(ValueError):
    """The first validation failure of a request: message, param (dotted path or None), code."""

    def __init__(self, message: str, *, param: str | None, code: str) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def validate_request(body: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body. Raises SchemaError naming the first bad field."""
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise schema_error(exc.errors(include_url=False)[0]) from None
    except RecursionError:
        raise SchemaError("request body is nested too deeply", param=None, code="invalid_value") from None


def schema_error(error: dict[str, Any]) -> SchemaError:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith(_TAG))]
    kind = error["type"]
    if kind == "missing" and len(loc) > 1:
        # a required field of a nested object: the object is malformed ("tools[0] has no function")
        message = f"{param_path(loc[:-1])} has no '{loc[-1]}'"
        return SchemaError(message, param=param_path(loc[:-1]), code="invalid_type")
    if kind == "unknown_part":
        if isinstance(error.get("input"), dict):
            loc.append("type")
            kind = "invalid_value"
        else:
            kind = "invalid_type"
    param = param_path(loc)
    code = "invalid_type" if kind in ("missing", "invalid_type") or kind.endswith("_type") else "invalid_value"
    where = param or "request body"
    message = f"{where}: {error['msg']}"
    if kind != "missing" and "input" in error:
        message += f" (got {_shown(error['input'])})"
    return SchemaError(message, param=param, code=code)


def param_path(loc: list[Any]) -> str | None:
    """('messages', 0, 'content') -> 'messages[0].content'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
