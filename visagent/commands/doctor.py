"""`visagent doctor --model URL`: check that a live OpenAI-compatible server can drive the agent.

One line per check, `ok` or `FAIL` plus what to do: the model list, the provider profile, a screenshot
accepted, a tool call parsed, the thinking switch honoured (off and on), and as many screenshots per request as
the agent sends. Exit 0 when every check passes, 1 when one fails, 2 for bad input (nothing checked).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from visagent.core.errors import ConfigError

_TASK = "Click the OK button in the middle of the screen."


def register(sub) -> None:
    from visagent.commands.run import add_sampling_args

    p = sub.add_parser("doctor", help="check a model server: models, images, tool calls, thinking switch, image limit",
                       description="Send a few small requests to an OpenAI-compatible server and say, one line per "
                       "check, whether the agent can use it. Exit 0: all checks pass; 1: a check failed; 2: bad input.")
    p.add_argument("--model", help="the server's URL (http(s)://host:port/v1)")
    p.add_argument("--model-name", help="model to check (default: the single model /v1/models lists)")
    p.add_argument("--api-key", help="API key (default: $VISAGENT_API_KEY, $OPENAI_API_KEY)")
    p.add_argument("--history-images", type=int, help="screenshots per request to check for (default: the "
                   "history_images setting, 4)")
    add_sampling_args(p)
    p.set_defaults(handler=run)


class Checks:
    """Prints one line per check and remembers whether any failed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False

    def ok(self, name: str, text: str) -> None:
        self.out.write(f"ok    {name}: {text}\n")

    def fail(self, name: str, text: str) -> None:
        self.failed = True
        self.out.write(f"FAIL  {name}: {text}\n")

    def run(self, name: str, check: Callable[[], str]) -> bool:
        """Run `check` (returns the ok text, raises for a problem); True when it passed."""
        from engine.errors import EngineError

        try:
            self.ok(name, check())
            return True
        except (EngineError, _Problem) as exc:
            self.fail(name, " ".join(str(exc).split()))
            return False


class _Problem(Exception):
    """A check's finding, worded for the user (what is wrong; what to do)."""


def run(args, out: TextIO | None = None) -> int:
    from engine.errors import EngineError, RemoteError
    from engine import RemoteEngine

    out = out or sys.stdout
    settings = args.settings
    url = settings.model
    if not url.startswith(("http://", "https://")):
        raise ConfigError("doctor checks a server: pass --model http(s)://host:port/v1 (or set model to that URL)")
    window = args.history_images or settings.history_images
    if window < 1:
        raise ConfigError(f"--history-images {window} must be at least 1")
    checks = Checks(out)
    try:
        engine = RemoteEngine(url, model_name=settings.model_name, api_key=settings.api_key, provider=settings.provider,
                              retries=0, tool_images="tool")
    except RemoteError as exc:
        checks.fail("models", f"{' '.join(str(exc).split())}")
        return 1
    except EngineError as exc:
        if "is not an http" in str(exc) or "not a valid server URL" in str(exc):
            raise
        checks.fail("models", " ".join(str(exc).split()))
        return 1
    try:
        if not checks.run("models", lambda: _models(engine)):
            return 1
        profile = engine.profile
        hint = _probe_kind(engine) if profile.name == "generic" else None
        checks.ok("provider", f"{profile.name} ({engine.provider_evidence}); thinking switch: {_switch(profile)}; "
                              f"sampling fields beyond OpenAI's: {', '.join(profile.sampling_fields) or 'none'}"
                              + (f"; {hint}" if hint else " (set provider = ... to choose another)"))
        if not checks.run("image", lambda: _image(engine)):
            return 1
        checks.run("tool call", lambda: _tool_call(engine, settings))
        checks.run("thinking", lambda: _thinking(engine, settings))
        checks.run("image limit", lambda: _image_limit(engine, window))
    finally:
        engine.close()
    return 1 if checks.failed else 0


def _probe_kind(engine: Any) -> str | None:
    """For a server that does not name itself in /v1/models: llama.cpp answers GET /props, Ollama GET
    /api/version (both at the server's root). Returns advice naming the provider setting, or None."""
    import httpx

    root = engine.base_url[: -len("/v1")] if engine.base_url.endswith("/v1") else engine.base_url
    for path, kind, key in (("/props", "llamacpp", "total_slots"), ("/api/version", "ollama", "version")):
        try:
            response = httpx.get(root + path, headers=engine._headers(None), timeout=5.0)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            continue
        if isinstance(data, dict) and key in data:
            return f"but {path} answers like {kind}: set provider = \"{kind}\" (or --provider {kind})"
    return None


def _switch(profile: Any) -> str:
    return {"chat_template_kwargs": 'chat_template_kwargs {"enable_thinking": ...}',
            "enable_thinking": "top-level enable_thinking", "reasoning_effort": 'reasoning_effort "none" / "medium"',
            "none": "none"}[profile.thinking]


def _screen(size: tuple[int, int] = (1280, 800)):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (236, 239, 244))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((w // 2 - 60, h // 2 - 22, w // 2 + 60, h // 2 + 22), fill=(40, 110, 220), outline=(20, 60, 140))
    draw.text((w // 2 - 10, h // 2 - 6), "OK", fill=(255, 255, 255))
    return image


def _config(engine: Any, settings: Any, *, thinking: bool, max_tokens: int):
    from engine.api import GenerationConfig
    from visagent.loop.sampling import SamplingChoice, resolve

    cfg, _ = resolve(GenerationConfig(max_new_tokens=max_tokens), engine.info, SamplingChoice.from_settings(settings),
                     thinking)
    return cfg


def _models(engine: Any) -> str:
    engine.verify_model()
    ctx = f", context {engine.info.context_length} tokens" if engine.info.context_length else ""
    return f"serves {engine.model_name!r}{ctx}"


def _image(engine: Any) -> str:
    from engine.api import GenerationConfig

    from engine.errors import EngineError

    image = _screen()
    try:
        engine.generate([{"role": "user", "content": [{"type": "image", "image": image},
                                                      {"type": "text", "text": "Reply with one word."}]}],
                        config=GenerationConfig(max_new_tokens=8, temperature=0.0))
    except EngineError as exc:
        text = " ".join(str(exc).split())
        fix = ("start llama-server with the model's --mmproj projector" if "mmproj" in text else
               "serve a vision-language checkpoint (Qwen3.5 is one) with its vision tower enabled")
        raise _Problem(f"a screenshot was refused ({text[:300]}); {fix}") from None
    return f"a {image.width}x{image.height} screenshot was accepted"


def _agent_messages(engine: Any):
    from engine.api import smart_resize
    from visagent.loop.prompting import build_messages
    from visagent.core.schemas import tool_for

    info = engine.info
    image = _screen()
    resized = smart_resize(image.width, image.height, info.vision)
    tools = [tool_for("desktop", info.coord_space, resized[0], resized[1], info.prompt_profile)]
    messages = build_messages(_TASK, [], image, platform="desktop", space=info.coord_space, profile=info.prompt_profile)
    return messages, tools


def _tool_call(engine: Any, settings: Any) -> str:
    from visagent.core.errors import VisagentError
    from visagent.loop.parsing import parse_output

    messages, tools = _agent_messages(engine)
    result = engine.generate(messages, tools=tools, config=_config(engine, settings, thinking=False, max_tokens=256))
    structured = bool(result.tool_calls)
    try:
        parsed = parse_output(result.text, space=engine.info.coord_space, tool_calls=result.tool_calls)
    except VisagentError as exc:
        raise _Problem(f"the answer holds no usable call ({exc}); start the server with its Qwen tool parser "
                       "(vLLM/SGLang: --tool-call-parser qwen3_coder) and check the model name") from None
    if not parsed.actions:
        raise _Problem(f"no tool call in the answer ({result.text[:80]!r}); start the server with its Qwen tool "
                       "parser (vLLM/SGLang: --tool-call-parser qwen3_coder) or check the model")
    how = "structured tool_calls (server-side parser)" if structured else \
        "Qwen3.5 XML in the text (no server tool parser; visagent parses it)"
    return f"{parsed.actions[0].action} parsed from {how}"


def _thinking(engine: Any, settings: Any) -> str:
    if engine.profile.thinking == "none":
        return f"provider {engine.profile.name} has no thinking switch; --thinking sends nothing"
    messages, tools = _agent_messages(engine)
    off = engine.generate(messages, tools=tools, config=_config(engine, settings, thinking=False, max_tokens=256))
    if off.thinking.strip():
        raise _Problem("the model thought although thinking was switched off; the server ignores "
                       f"{_switch(engine.profile)} (wrong provider? set provider = ...; a template without the flag?)")
    budget = min(settings.thinking_budget, 2048)
    on = engine.generate(messages, tools=tools,
                         config=_config(engine, settings, thinking=True, max_tokens=budget + settings.answer_tokens))
    if not on.thinking.strip():
        raise _Problem("no thought came back with thinking on; the server ignores the switch or drops the "
                       "reasoning (vLLM/SGLang: --reasoning-parser qwen3)")
    cut = "; the thought hit the token cap (raise thinking_budget)" if on.finish_reason == "length" else ""
    return f"off: no thought; on: a {len(on.thinking.split())}-word thought{cut}"


def _image_limit(engine: Any, window: int) -> str:
    from engine.api import GenerationConfig
    from engine.errors import EngineError

    content: list[dict[str, Any]] = [{"type": "image", "image": _screen((320, 200))} for _ in range(window)]
    content.append({"type": "text", "text": "How many images? Reply with a number."})
    try:
        engine.generate([{"role": "user", "content": content}], config=GenerationConfig(max_new_tokens=8, temperature=0.0))
    except EngineError as exc:
        hint = engine.profile.image_limit_hint
        raise _Problem(f"{window} screenshots in one request were refused ({' '.join(str(exc).split())[:300]})"
                       + (f"; {hint.replace('N', str(window))}" if hint else "")
                       + f"; or set history_images = {max(1, window - 1)} or less") from None
    return f"{window} screenshots in one request accepted (the agent sends up to {window})"
