"""An Engine backed by an OpenAI-compatible server: vLLM, SGLang, or `visagent serve`.

Screenshots travel as base64 PNG data URLs, tools as OpenAI tool schemas; the thinking switch and the sampling
fields beyond OpenAI's follow the server's provider profile (engine/providers.py: detected from the server, or
chosen). Structured `tool_calls`
(vLLM `--tool-call-parser qwen3_coder`) and tool calls left as text in `content` are both accepted;
`reasoning_content` (or `reasoning`) deltas become Delta("thinking"), `<think>` inside content is split too.
Past assistant turns go out as given (prose + `tool_calls`, or the text with its call) and their
`reasoning_content` under that name and as `reasoning` (engine.openai_wire). For models answering in pixels of
the resized image (coord_space "resized": Qwen2.5-VL, UI-TARS) screenshots are smart-resized with `info.vision`
before sending, so the server's own resize is the identity and answers are in the pixels the caller converts from.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx

from engine.api import (CoordSpaceName, Delta, EngineInfo, GenerationConfig, GenerationResult, Message,
                        ThinkingSplitter, ToolSchema, VisionSpec, smart_resize, visual_tokens)
from engine import image_codec, presets, providers
from engine.errors import EngineError, RemoteError
from engine.openai_wire import count_images, images_in_tool_messages, messages_to_wire
from engine.remote_result import (EXTENSION, apply_usage, assemble_result, calls_from_wire, error_message,
                                  make_result, pointer_from_wire, render_calls)
from engine.remote_target import infer_model_family, normalize_base_url  # re-exported: callers import them here

log = logging.getLogger(__name__)

_IMAGE_LIMIT_RE = re.compile(
    r"at most \d+ image|image count \d+ exceeds|too many images|(image|multimodal).{0,40}limit|limit.{0,40}image",
    re.IGNORECASE)
# How servers word "tool messages take text only" (vLLM for some model families: "... only supports text").
_TOOL_TEXT_ONLY_RE = re.compile(r"tool.{0,80}(text|image)|image.{0,80}tool", re.IGNORECASE | re.DOTALL)
ToolImages = Literal["auto", "tool", "user"]


class _ClientError(RemoteError):
    """A 4xx answer (not 429): the explained message, plus the HTTP status and the server's own words."""

    def __init__(self, message: str, *, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class RemoteEngine:
    """Engine over HTTP. Thread-safe (one pooled httpx client); each call is one chat completion request.

    `base_url` is the server's OpenAI base URL (`http://host:8000/v1`; a bare `http://host:8000` gets `/v1`).
    `model_name` defaults to the single model `/v1/models` lists. `api_key` defaults to $VISAGENT_API_KEY,
    then $OPENAI_API_KEY. Connection errors, 429 and 5xx are retried `retries` times with exponential
    backoff from `backoff_s` seconds (a Retry-After header is honoured up to 30 s); other 4xx raise
    RemoteError at once. `max_images` (per request) is checked before sending and reported in `info`.
    `coord_space` / `vision` default to what the model name implies (see `infer_model_family`).
    `tool_images`: where screenshots that answer a tool call travel. "tool" keeps them in the tool message
    (Qwen3.5's native format, what its chat template renders); "user" moves them to a user message right
    after it (for servers that take only text in tool messages); "auto" (default) sends "tool" and, the first
    time a server refuses that with a 400 about tool content, logs a warning and switches to "user" for good.
    `provider`: the server's profile (engine/providers.py: vllm, sglang, llamacpp, ollama, modelstudio,
    openai, visagent, generic), or "auto" (default): from the host name, else from /v1/models `owned_by`
    (read once, at construction or before the first request). It decides how thinking is switched and which
    sampling fields are sent.
    `sleep`: waits the backoff delay between attempts (seconds); None (default) waits for real, cut short by the
    request's cancel event. Tests pass a recorder, to check the schedule without sitting through it.
    Raises EngineError from the constructor when the model name cannot be determined or `provider` is unknown.
    """

    def __init__(self, base_url: str, *, model_name: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120, retries: int = 3, backoff_s: float = 0.5, max_images: int | None = None,
                 coord_space: CoordSpaceName | None = None, vision: VisionSpec | None = None,
                 tool_images: ToolImages = "auto", provider: str = "auto",
                 sleep: Callable[[float], None] | None = None) -> None:
        self.base_url = normalize_base_url(base_url)
        if provider != "auto":
            providers.get_profile(provider)  # EngineError naming the choices
        self._profile: providers.ProviderProfile | None = None
        self._profile_lock = threading.Lock()  # eval workers share one engine: one /v1/models read
        self.provider_evidence = ""
        if tool_images not in ("auto", "tool", "user"):
            raise EngineError(f"tool_images must be 'auto', 'tool' or 'user', got {tool_images!r}")
        self.tool_images = tool_images
        self._images_in_tool = tool_images != "user"
        self.api_key = api_key or os.environ.get("VISAGENT_API_KEY") or os.environ.get("OPENAI_API_KEY") or None
        if timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise EngineError(f"timeout_s must be > 0, retries and backoff_s >= 0 (got {timeout_s}, {retries}, {backoff_s})")
        if max_images is not None and max_images < 1:
            raise EngineError(f"max_images must be at least 1, got {max_images}")
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        # No keep-alive: every request gets its own connection, so cancelling one can shut its socket down
        # without touching another request's stream (a screenshot upload dwarfs the handshake anyway).
        self._client = httpx.Client(timeout=self._timeout(self.timeout_s),
                                    limits=httpx.Limits(max_keepalive_connections=0))
        if provider != "auto":
            self._set_profile((provider, "chosen"))
        elif providers.from_host(self.base_url):
            self._set_profile(providers.detect(self.base_url, None))
        context_length = None
        entry: dict[str, Any] = {}
        if model_name is None:
            model_name, context_length, entry = self._discover_model()
        self.model_name = model_name
        self._coord_space_given = coord_space is not None
        family_space, family_vision = infer_model_family(model_name)
        space = coord_space or family_space
        self.info = EngineInfo(spec=base_url, model_type="remote", coord_space=space,
                               vision=vision or family_vision, supports_thinking=True,
                               context_length=context_length, max_images=max_images,
                               sampling=presets.for_served_model(space),
                               provider=self._profile.name if self._profile else None)
        self._apply_extension(entry)

    # ------------------------------------------------------------ public

    def generate(self, messages: Sequence[Message], *, tools: Sequence[ToolSchema] | None = None,
                 config: GenerationConfig = GenerationConfig(), on_delta: Callable[[Delta], None] | None = None,
                 cancel: threading.Event | None = None, session_id: str | None = None) -> GenerationResult:
        """One chat completion. Streams (SSE) when `on_delta` or `cancel` is given. See engine.api.Engine."""
        started = time.perf_counter()
        n_images = count_images(messages)
        if self.info.max_images is not None and n_images > self.info.max_images:
            raise EngineError(f"request has {n_images} images but max_images is {self.info.max_images}; "
                              "keep fewer screenshots in the prompt or raise max_images")
        if cancel is not None and cancel.is_set():
            return make_result("", "", "cancelled", started)
        if self.info.coord_space == "resized":
            messages = sized_for_server(messages, self.info.vision)
        stream = on_delta is not None or cancel is not None
        self.profile  # noqa: B018 - resolves the provider (one /v1/models read) before the first request
        wire = self._wire(messages, self._images_in_tool)
        payload = self._payload(wire, tools, config, stream, session_id)
        deadline = time.monotonic() + config.timeout_s if config.timeout_s else None
        grab = _SocketGrab()
        done = threading.Event()
        watcher = None
        if cancel is not None:
            watcher = threading.Thread(target=_watch_cancel, args=(cancel, done, grab), daemon=True)
            watcher.start()
        try:
            send = dict(n_images=n_images, deadline=deadline, cancel=cancel, grab=grab, session_id=session_id)
            try:
                response = self._send("POST", "/chat/completions", payload, **send)
            except _ClientError as exc:
                if not self._refuses_tool_images(exc, wire):
                    raise
                log.warning("%s refuses images in tool messages (HTTP %d: %s); sending screenshots in user "
                            "messages from now on", self.base_url, exc.status, exc.server_message)
                self._images_in_tool = False
                payload = self._payload(self._wire(messages, False), tools, config, stream, session_id)
                response = self._send("POST", "/chat/completions", payload, **send)
            if response is None:
                return make_result("", "", "cancelled", started)
            try:
                if stream:
                    result = self._read_stream(response, config, on_delta, cancel, deadline, started)
                else:
                    result = self._read_json(response, started, thinking_open=config.enable_thinking)
            finally:
                response.close()
        finally:
            done.set()
        result.visual_tokens = sum(visual_tokens(*part["image"].size, self.info.vision)
                                   for msg in messages if isinstance(msg.get("content"), list)
                                   for part in msg["content"] if part.get("type") == "image"
                                   and hasattr(part.get("image"), "size"))
        return result

    def close(self) -> None:
        self._client.close()

    @property
    def profile(self) -> providers.ProviderProfile:
        """The server's provider profile; "auto" reads /v1/models once (a server without one is "generic")."""
        with self._profile_lock:
            if self._profile is None:
                self._resolve_profile()
        assert self._profile is not None
        return self._profile

    def _resolve_profile(self) -> None:
        """Read /v1/models once (one attempt: the request that follows retries) and pick the profile."""
        models: list[Any] | None = None
        try:
            response = self._send("GET", "/models", None, startup=True, retries=0)  # the request retries
            if response is not None:
                try:
                    data = json.loads(response.read())
                    models = data["data"] if isinstance(data, dict) and isinstance(data.get("data"), list) else None
                except ValueError:
                    models = None
                finally:
                    response.close()
        except (EngineError, RemoteError) as exc:
            log.info("%s/models unreadable (%s); provider taken as generic", self.base_url, exc)
        self._set_profile(providers.detect(self.base_url, models))

    def _set_profile(self, detected: tuple[str, str]) -> None:
        name, evidence = detected
        self._profile, self.provider_evidence = providers.get_profile(name), evidence
        log.info("%s: provider %s (%s)", self.base_url, name, evidence)
        if self.tool_images == "auto" and self._profile.images_in_tool == "user":
            self._images_in_tool = False
        if hasattr(self, "info"):
            self.info = dataclasses.replace(self.info, provider=name)

    # ------------------------------------------------------------ request

    @staticmethod
    def _timeout(seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(seconds, 10.0))

    @staticmethod
    def _wire(messages: Sequence[Message], images_in_tool: bool) -> list[dict[str, Any]]:
        try:
            return messages_to_wire(messages, images_in_tool=images_in_tool)
        except ValueError as exc:
            raise EngineError(f"cannot send messages: {exc}") from None

    def _refuses_tool_images(self, exc: _ClientError, wire: list[dict[str, Any]]) -> bool:
        """True when a 400 most likely says "no images in tool messages" and moving them may help."""
        return (self.tool_images == "auto" and self._images_in_tool and exc.status in (400, 422)
                and images_in_tool_messages(wire) > 0 and bool(_TOOL_TEXT_ONLY_RE.search(exc.server_message)))

    def _headers(self, session_id: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if session_id:
            headers["X-Session-Id"] = session_id
        return headers

    def _payload(self, wire: list[dict[str, Any]], tools: Sequence[ToolSchema] | None, cfg: GenerationConfig,
                 stream: bool, session_id: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model_name, "messages": wire, "max_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature, "top_p": cfg.top_p, "stream": stream,
        }
        payload.update(providers.request_fields(self.profile, cfg, thinking_budget=cfg.thinking_budget))
        if cfg.presence_penalty:
            payload["presence_penalty"] = cfg.presence_penalty
        if cfg.seed is not None:
            payload["seed"] = cfg.seed
        if cfg.stop:
            payload["stop"] = list(cfg.stop)
        if tools:
            payload["tools"] = [t if t.get("type") == "function" and "function" in t else
                                {"type": "function", "function": t} for t in tools]
            payload["tool_choice"] = "auto"
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if session_id:
            payload["user"] = session_id
        return payload

    def _send(self, method: str, path: str, payload: dict[str, Any] | None, *, n_images: int = 0,
              deadline: float | None = None, cancel: threading.Event | None = None, grab: _SocketGrab | None = None,
              session_id: str | None = None, startup: bool = False,
              retries: int | None = None) -> httpx.Response | None:
        """Send with retries; returns the open (streaming) response with a 2xx status, None when cancelled.
        `startup` logs the retries at info level: before anything runs, the final error line says it all."""
        url = self.base_url + path
        attempt = 0
        while True:
            timeout = self.timeout_s
            retry_after: float | None = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise EngineError(f"no answer from {url} within the generation timeout; raise timeout_s")
            request = self._client.build_request(method, url, json=payload, headers=self._headers(session_id),
                                                 timeout=self._timeout(min(timeout, self.timeout_s)),
                                                 extensions={"trace": grab.trace} if grab else None)
            try:
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if cancel is not None and cancel.is_set():
                    return None
                if not isinstance(exc, httpx.ConnectTimeout):
                    raise EngineError(f"{url} sent no answer within {timeout:.0f} s; raise timeout_s "
                                      "(or check the server's load)") from None
                problem = f"connection timed out ({exc})"
            except httpx.TransportError as exc:
                if cancel is not None and cancel.is_set():
                    return None
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                body = response.read()
                response.close()
                message = error_message(body, response.reason_phrase)
                if response.status_code != 429 and response.status_code < 500:
                    raise _ClientError(self._explain_client_error(response.status_code, message, url, n_images),
                                       status=response.status_code, server_message=message)
                problem = f"HTTP {response.status_code}: {message}"
                retry_after = _retry_after(response)
            if attempt >= (self.retries if retries is None else retries):
                raise RemoteError(f"{url} failed after {attempt + 1} attempts ({problem}); "
                                  "check that the server is up and not overloaded")
            delay = self.backoff_s * (2 ** attempt)
            if retry_after is not None:
                delay = min(max(delay, retry_after), 30.0)
            log.log(logging.INFO if startup else logging.WARNING, "%s: %s; retrying in %.2f s (attempt %d of %d)",
                    url, problem, delay, attempt + 2, self.retries + 1)
            if self._sleep is not None:
                self._sleep(delay)
                if cancel is not None and cancel.is_set():
                    return None
            elif cancel is not None:
                if cancel.wait(delay):
                    return None
            else:
                time.sleep(delay)
            attempt += 1

    def _explain_client_error(self, status: int, message: str, url: str, n_images: int) -> str:
        if status in (401, 403):
            return (f"{url} refused the API key (HTTP {status}: {message}); set VISAGENT_API_KEY or --api-key "
                    "to the key the server was started with")
        if n_images and _IMAGE_LIMIT_RE.search(message):
            return (f"the server refused a request with {n_images} images (HTTP {status}: {message}); raise its "
                    f"per-request image limit to at least {n_images} — vLLM: --limit-mm-per-prompt "
                    f"'{{\"image\": {n_images}}}', SGLang: --limit-mm-data-per-request '{{\"image\": {n_images}}}', "
                    f"visagent serve: --max-images {n_images} — or keep fewer screenshots in the prompt "
                    "(history_images)")
        if status == 404 and "model" in message.lower():
            return (f"{url}: model {self.model_name!r} is not served there (HTTP 404: {message}); pass --model-name "
                    "with a name that /v1/models lists")
        return f"{url} rejected the request (HTTP {status}): {message}"

    def verify_model(self) -> None:
        """Check that the server lists `model_name`, so a misspelt --model-name fails before a run starts
        rather than at its first step. A server without a usable /models list is given the benefit of the
        doubt (logged). Raises EngineError naming the served models; RemoteError when unreachable."""
        try:
            response = self._send("GET", "/models", None, startup=True)
        except _ClientError as exc:
            log.info("%s/models unavailable (%s); not checking model %r", self.base_url, exc, self.model_name)
            return
        assert response is not None
        try:
            data = json.loads(response.read())
            names = [m["id"] for m in data["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (ValueError, KeyError, TypeError):
            log.info("%s/models is not an OpenAI model list; not checking model %r", self.base_url, self.model_name)
            return
        finally:
            response.close()
        if self._profile is None:
            self._set_profile(providers.detect(self.base_url, data["data"]))
        if names and self.model_name not in names:
            raise EngineError(f"{self.base_url} does not serve model {self.model_name!r} (it serves: "
                              f"{', '.join(names)}); pass --model-name with one of those")
        self._apply_extension(next(m for m in data["data"] if isinstance(m, dict) and m.get("id") == self.model_name)
                              if names else {})

    def _apply_extension(self, entry: dict[str, Any]) -> None:
        """What visagent's own server says about the model it serves (its /v1/models entry's `visagent` field):
        the prompt profile and screenshot window the checkpoint was trained with, whether answers carry a pointing
        head's point, and its coordinate space (unless the caller chose one). Other servers say nothing: nothing
        changes."""
        from engine.checkpoint import PROMPT_PROFILES  # here: the checkpoint module pulls in torch

        ext = entry.get(EXTENSION) if isinstance(entry, dict) else None
        if not isinstance(ext, dict):
            return
        changes: dict[str, Any] = {}
        if ext.get("prompt_profile") in PROMPT_PROFILES:
            changes["prompt_profile"] = ext["prompt_profile"]
        window = ext.get("history_images")
        if isinstance(window, int) and not isinstance(window, bool) and window >= 1:
            changes["history_images"] = window
        if isinstance(ext.get("points"), bool):
            changes["points"] = ext["points"]
        if ext.get("coord_space") in ("norm1000", "resized") and not self._coord_space_given:
            changes["coord_space"] = ext["coord_space"]
        self.info = dataclasses.replace(self.info, **changes)

    def _discover_model(self) -> tuple[str, int | None, dict[str, Any]]:
        response = self._send("GET", "/models", None, startup=True)
        assert response is not None
        try:
            try:
                data = json.loads(response.read())
                models = [m for m in data["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
            except (ValueError, KeyError, TypeError):
                raise EngineError(f"{self.base_url}/models did not return an OpenAI model list; is this an "
                                  "OpenAI-compatible /v1 URL?") from None
        finally:
            response.close()
        if self._profile is None:
            self._set_profile(providers.detect(self.base_url, data["data"]))
        if len(models) != 1:
            names = ", ".join(m["id"] for m in models) or "none"
            raise EngineError(f"{self.base_url} serves {len(models)} models ({names}); choose one with --model-name")
        ctx = models[0].get("max_model_len") or models[0].get("context_length")
        return models[0]["id"], ctx if isinstance(ctx, int) else None, models[0]

    # ------------------------------------------------------------ response

    def _read_json(self, response: httpx.Response, started: float, *, thinking_open: bool = False) -> GenerationResult:
        try:
            data = json.loads(response.read())
            choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RemoteError(f"{self.base_url}/chat/completions answered something that is not a chat "
                              "completion; is this an OpenAI-compatible /v1 URL?") from None
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        calls = calls_from_wire(message.get("tool_calls") or [])
        result = assemble_result(reasoning, message.get("content") or "", calls, choice, started,
                                 thinking_open=thinking_open)
        apply_usage(result, data.get("usage"))
        result.pointer = pointer_from_wire(data.get(EXTENSION))
        return result

    def _read_stream(self, response: httpx.Response, cfg: GenerationConfig, on_delta: Callable[[Delta], None] | None,
                     cancel: threading.Event | None, deadline: float | None, started: float) -> GenerationResult:
        reasoning: list[str] = []
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        splitter: ThinkingSplitter | None = None
        choice: dict[str, Any] = {}
        usage = None
        extension = None
        first_token_s = None
        try:
            for line in response.iter_lines():
                if cancel is not None and cancel.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise EngineError("generation exceeded its timeout_s; raise it or lower max_new_tokens")
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise RemoteError(f"{self.base_url} sent a stream line that is not JSON: {data[:80]!r}") from None
                if "error" in chunk:
                    err = chunk["error"]
                    raise RemoteError(f"{self.base_url} failed mid-stream: "
                                      f"{err.get('message', err) if isinstance(err, dict) else err}")
                usage = chunk.get("usage") or usage
                extension = chunk.get(EXTENSION) or extension
                for ch in chunk.get("choices") or []:
                    delta = ch.get("delta") or {}
                    if ch.get("finish_reason"):
                        choice = ch
                    think = delta.get("reasoning_content") or delta.get("reasoning")
                    if think:
                        reasoning.append(think)
                        _emit(on_delta, [Delta("thinking", think)])
                    if delta.get("content"):
                        if splitter is None:  # no reasoning parser on the server: content holds the thinking
                            splitter = ThinkingSplitter(cfg.enable_thinking and not reasoning)
                        content.append(delta["content"])
                        _emit(on_delta, splitter.feed(delta["content"]))
                    for tc in delta.get("tool_calls") or []:
                        slot = calls.setdefault(tc.get("index", len(calls)), {"id": None, "name": "", "arguments": ""})
                        fn = tc.get("function") or {}
                        slot["id"] = tc.get("id") or slot["id"]
                        slot["name"] += fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
                    if first_token_s is None and (think or delta.get("content") or delta.get("tool_calls")):
                        first_token_s = time.perf_counter() - started
        except httpx.TimeoutException:
            if cancel is None or not cancel.is_set():
                raise EngineError(f"{self.base_url} stopped sending mid-stream for longer than the timeout; raise "
                                  "timeout_s or check the server") from None
        except httpx.TransportError as exc:
            if cancel is None or not cancel.is_set():
                raise RemoteError(f"{self.base_url} broke off the stream ({type(exc).__name__}: {exc})") from None
        if splitter is not None:
            _emit(on_delta, splitter.flush())
        parsed = calls_from_wire([{"id": s["id"], "function": {"name": s["name"], "arguments": s["arguments"]}}
                                   for _, s in sorted(calls.items())])
        cancelled = cancel is not None and cancel.is_set()
        if parsed and not cancelled:
            _emit(on_delta, [Delta("answer", "\n" + render_calls(parsed))])
        result = assemble_result("".join(reasoning), "".join(content), parsed, choice, started,
                                 thinking_open=cfg.enable_thinking)
        if cancelled:
            result.finish_reason = "cancelled"
        if first_token_s is not None:
            result.timings["first_token"] = first_token_s
        apply_usage(result, usage)
        result.pointer = pointer_from_wire(extension)
        return result


# ---------------------------------------------------------------- helpers

def sized_for_server(messages: Sequence[Message], vision: VisionSpec) -> list[Message]:
    """Copies of `messages` whose PIL images are smart-resized with `vision` (engine.api.smart_resize).

    For models answering in pixels of the resized image (Qwen2.5-VL, UI-TARS): the caller converts an answer back
    with `vision`'s budget, while a server resizes with its checkpoint's own (larger) one, so a full-size screenshot
    would be seen at another size than the one the answer is converted from. An image already of the smart-resized
    size (sides multiples of the patch factor, pixel count inside the checkpoint's bounds) is left as it is by the
    server's resize, so the model answers in exactly the pixels the caller converts from."""
    from PIL import Image

    out: list[Message] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and isinstance(p.get("image"), Image.Image)
                                             for p in content):
            parts = []
            for part in content:
                image = part.get("image") if isinstance(part, dict) else None
                if isinstance(image, Image.Image):
                    size = smart_resize(image.width, image.height, vision)
                    if size != image.size:  # bicubic, as transformers' Qwen2-VL image processor resizes
                        # made once per screenshot the caller keeps (engine.image_codec), not once per request
                        resized = image_codec.derived(image, ("smart_resize", size), lambda im, size=size: im.convert(
                            "RGB").resize(size, Image.Resampling.BICUBIC))
                        part = {**part, "image": resized}
                parts.append(part)
            msg = {**msg, "content": parts}
        out.append(msg)
    return out


class _SocketGrab:
    """Remembers the request's network stream (httpcore trace hook) so a cancel can shut its socket down."""

    def __init__(self) -> None:
        self.stream: Any = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):
            self.stream = info.get("return_value")

    def abort(self) -> None:
        sock = self.stream.get_extra_info("socket") if self.stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read and tells the server we left
            except OSError:
                pass  # already closed: nothing left to interrupt


def _watch_cancel(cancel: threading.Event, done: threading.Event, grab: _SocketGrab) -> None:
    while not done.is_set():
        if cancel.wait(0.05):
            grab.abort()
            done.wait(0.05)


def _emit(on_delta: Callable[[Delta], None] | None, deltas: list[Delta]) -> None:
    if on_delta is not None:
        for delta in deltas:
            on_delta(delta)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
