"""Provider profiles: what each OpenAI-compatible server wants in a request, and how to tell which one answers.

Each server speaks the OpenAI chat API with its own extras. What differs, from each server's documentation
and source:

| provider | thinking switch | extra sampling fields | says who it is |
|---|---|---|---|
| vllm | `chat_template_kwargs: {"enable_thinking": b}` | top_k, min_p, repetition_penalty | /v1/models `owned_by: "vllm"` |
| sglang | `chat_template_kwargs: {"enable_thinking": b}` | top_k, min_p, repetition_penalty | /v1/models `owned_by: "sglang"` |
| llamacpp | `chat_template_kwargs: {"enable_thinking": b}` | top_k, min_p, repeat_penalty | /v1/models `owned_by: "llamacpp"`; /props |
| ollama | `reasoning_effort: "none"` (off) / `"medium"` (on) | none (top_k, min_p not on its OpenAI wire) | /v1/models `owned_by: "library"`; /api/version |
| modelstudio | top-level `enable_thinking: b` (+ `thinking_budget`) | top_k | host `dashscope*.aliyuncs.com` |
| visagent | `chat_template_kwargs: {"enable_thinking": b}` | top_k, repetition_penalty | /v1/models `owned_by: "visagent"` |
| openai | none (standard fields only) | none | — (only when chosen) |
| generic | `chat_template_kwargs` | top_k, min_p, repetition_penalty | any other server |

`presence_penalty`, `temperature`, `top_p`, `max_tokens`, `seed`, `stop` are standard OpenAI fields and go to
every provider. Fields at their neutral value (top_k 0, min_p 0, repetition_penalty 1) are never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from engine.api import GenerationConfig
from engine.errors import EngineError

ThinkingSwitch = Literal["chat_template_kwargs", "enable_thinking", "reasoning_effort", "none"]


@dataclass(frozen=True)
class ProviderProfile:
    """How one server family takes a request. `images_in_tool`: where screenshots answering a tool call go by
    default ("tool": in the tool message, Qwen3.5's native format; "auto": there, moved to a user message the
    first time the server refuses it). `image_limit_hint`: how to raise the server's per-request image limit."""

    name: str
    thinking: ThinkingSwitch
    sampling_fields: tuple[str, ...]  # of top_k, min_p, repetition_penalty (GenerationConfig names)
    images_in_tool: Literal["auto", "tool", "user"] = "auto"
    image_limit_hint: str = ""
    field_names: tuple[tuple[str, str], ...] = ()  # GenerationConfig name -> the server's own name
    thinking_budget_field: str | None = None  # a native cap on thinking tokens, sent with thinking on

    def wire_name(self, field: str) -> str:
        return dict(self.field_names).get(field, field)


PROFILES: dict[str, ProviderProfile] = {p.name: p for p in (
    ProviderProfile("vllm", "chat_template_kwargs", ("top_k", "min_p", "repetition_penalty"),
                    image_limit_hint="vllm serve ... --limit-mm-per-prompt '{\"image\": N}'"),
    ProviderProfile("sglang", "chat_template_kwargs", ("top_k", "min_p", "repetition_penalty"),
                    image_limit_hint="python -m sglang.launch_server ... --limit-mm-data-per-request '{\"image\": N}'"),
    ProviderProfile("llamacpp", "chat_template_kwargs", ("top_k", "min_p", "repetition_penalty"),
                    field_names=(("repetition_penalty", "repeat_penalty"),),
                    image_limit_hint="llama-server needs --mmproj for images at all"),
    ProviderProfile("ollama", "reasoning_effort", ()),
    ProviderProfile("modelstudio", "enable_thinking", ("top_k",), thinking_budget_field="thinking_budget"),
    ProviderProfile("visagent", "chat_template_kwargs", ("top_k", "repetition_penalty"), images_in_tool="tool",
                    image_limit_hint="visagent serve ... --max-images N"),
    ProviderProfile("openai", "none", ()),
    ProviderProfile("generic", "chat_template_kwargs", ("top_k", "min_p", "repetition_penalty")),
)}
#: What `provider` may be set to: a profile name, or "auto" (detect it from the server).
PROVIDER_CHOICES = ("auto", *PROFILES)

_OWNED_BY = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llamacpp", "visagent": "visagent", "library": "ollama"}


def get_profile(name: str) -> ProviderProfile:
    """The profile called `name`. Raises EngineError naming the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise EngineError(f"provider must be one of {', '.join(PROVIDER_CHOICES)}, got {name!r}") from None


def from_host(base_url: str) -> str | None:
    """The provider a URL's host names on its own: Alibaba Cloud Model Studio (`dashscope*.aliyuncs.com`)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host.startswith("dashscope") and host.endswith(".aliyuncs.com"):
        return "modelstudio"
    return None


def detect(base_url: str, models: Sequence[Any] | None) -> tuple[str, str]:
    """(provider name, the evidence) from the URL and a /v1/models `data` list (None when it could not be read).
    Unknown servers get "generic" (today's request shape for Qwen-serving servers)."""
    host = from_host(base_url)
    if host is not None:
        return host, f"host {urlsplit(base_url).hostname}"
    owners = {str(m.get("owned_by")) for m in models or () if isinstance(m, dict) and m.get("owned_by")}
    for owner in sorted(owners):
        if owner in _OWNED_BY:
            return _OWNED_BY[owner], f"/v1/models owned_by={owner!r}"
    if models is None:
        return "generic", "no /v1/models list"
    return "generic", f"/v1/models owned_by={', '.join(sorted(owners)) or 'none'} (not a known server)"


def request_fields(profile: ProviderProfile, cfg: GenerationConfig, *,
                   thinking_budget: int | None = None) -> dict[str, Any]:
    """The thinking switch and the non-standard sampling fields for one request (standard fields are the caller's).
    `thinking_budget` (tokens) goes where the provider has a native cap on thinking."""
    out: dict[str, Any] = {}
    if profile.thinking == "chat_template_kwargs":
        out["chat_template_kwargs"] = {"enable_thinking": cfg.enable_thinking}
    elif profile.thinking == "enable_thinking":
        out["enable_thinking"] = cfg.enable_thinking
    elif profile.thinking == "reasoning_effort":
        out["reasoning_effort"] = "medium" if cfg.enable_thinking else "none"
    if cfg.enable_thinking and thinking_budget and profile.thinking_budget_field:
        out[profile.thinking_budget_field] = int(thinking_budget)
    values = {"top_k": cfg.top_k if cfg.top_k > 0 else None,
              "min_p": cfg.min_p if cfg.min_p > 0 else None,
              "repetition_penalty": cfg.repetition_penalty if cfg.repetition_penalty != 1.0 else None}
    if cfg.temperature > 0:  # greedy: no sampling knobs (a server may refuse top_k with temperature 0)
        for name in profile.sampling_fields:
            if values.get(name) is not None:
                out[profile.wire_name(name)] = values[name]
    elif values["repetition_penalty"] is not None and "repetition_penalty" in profile.sampling_fields:
        out[profile.wire_name("repetition_penalty")] = values["repetition_penalty"]
    return out
