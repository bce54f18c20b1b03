"""Which engine a dashboard run uses, and a cache so a model is loaded once and shared by later runs.

Model choices: the embedded tiny checkpoint, a local checkpoint directory, an OpenAI-compatible server URL
(+ model name), or the scripted oracle (no model; plays a sim or real-desktop scenario's known solution).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from engine import is_server_spec
from visagent.core.errors import ConfigError

MODEL_KINDS = ("tiny", "checkpoint", "server", "oracle")
MODEL_LABELS = {
    "tiny": "Embedded tiny model",
    "checkpoint": "Local checkpoint",
    "server": "OpenAI-compatible server",
    "oracle": "Scripted oracle (scenarios only, no model)",
}
#: What each choice is, for a newcomer (the Run view shows it under the picker).
MODEL_NOTES = {
    "tiny": "A demo model built and trained here on the sim (a few MB, runs on CPU): it runs the whole path — "
            "screenshot, prompt, generation, parsing, action, trace — but it does **not** solve tasks. To get work "
            "done connect a real Qwen3.5 / Qwen3.6 model (a server URL or a checkpoint); to watch this scenario "
            "solved, pick the scripted oracle.",
    "checkpoint": "A Hugging Face checkpoint directory (Qwen3.5 / Qwen3.6 or a fine-tune) loaded in this process "
                  "with transformers; the first run waits for the load.",
    "server": "An OpenAI-compatible server (vLLM, SGLang, llama.cpp, `visagent serve`…): its `/v1` URL and, when "
              "it serves several, the model name. A preset fills the URL, model name and provider of a common "
              "server; the API key (left empty: `VISAGENT_API_KEY` / `OPENAI_API_KEY`) goes to the server only, "
              "never into a trace, settings file or log. **Test connection** runs `visagent doctor`'s checks.",
    "oracle": "No model: plays the scenario's known solution (sim or real-desktop), step by step, through the same "
              "loop and trace. Only the scenario's own task.",
}


@dataclass(frozen=True)
class Preset:
    """A server the Model section can fill in: its usual /v1 URL, model name and provider profile."""

    label: str
    url: str
    model_name: str
    provider: str


#: Provider presets, from the README's serving section (the ports and names its commands use) and
#: engine/providers.py (the profile each server gets). "auto" lets the engine detect the server.
PROVIDER_PRESETS: dict[str, Preset] = {
    "vllm": Preset("vLLM", "http://127.0.0.1:8000/v1", "qwen3.5-35b", "vllm"),
    "sglang": Preset("SGLang", "http://127.0.0.1:8000/v1", "qwen3.5-35b", "sglang"),
    "llamacpp": Preset("llama.cpp (llama-server)", "http://127.0.0.1:8000/v1", "", "llamacpp"),
    "ollama": Preset("Ollama", "http://127.0.0.1:11434/v1", "qwen3.5:35b-a3b", "ollama"),
    "modelstudio": Preset("Alibaba Cloud Model Studio", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
                          "qwen3.5-plus", "modelstudio"),
    "openai-compatible": Preset("Other OpenAI-compatible server", "http://127.0.0.1:8000/v1", "", "auto"),
}


def _provider(value: str | None) -> str | None:
    from engine import PROVIDER_CHOICES

    value = (value or "").strip()
    if not value:
        return None
    if value not in PROVIDER_CHOICES:
        raise ConfigError(f"unknown provider {value!r}; choose one of {', '.join(PROVIDER_CHOICES)}")
    return value


@dataclass(frozen=True)
class ModelChoice:
    """What the model picker says. `spec`: the load_engine spec ("tiny", a directory, a URL; "" for oracle).
    `provider` (None: the settings' own) and `api_key` (None: the settings' own, from the environment) are for
    a server only; the key is kept out of repr and of every label, so it reaches the engine and nothing else."""

    kind: str
    spec: str
    model_name: str | None = None
    provider: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_form(cls, kind: str, checkpoint: str = "", url: str = "", model_name: str = "", provider: str = "",
                  api_key: str = "") -> ModelChoice:
        """Validate the picker's fields. Raises ConfigError naming the empty or bad field."""
        if kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        if kind == "tiny":
            return cls("tiny", "tiny")
        if kind == "oracle":
            return cls("oracle", "")
        if kind == "checkpoint":
            path = (checkpoint or "").strip()
            if not path:
                raise ConfigError("the checkpoint path is empty; enter a local Hugging Face checkpoint directory")
            return cls("checkpoint", path)
        url = (url or "").strip()
        if not is_server_spec(url):
            raise ConfigError(f"server URL {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        return cls("server", url, (model_name or "").strip() or None, _provider(provider),
                   (api_key or "").strip() or None)

    @classmethod
    def from_spec(cls, spec: str, model_name: str | None = None) -> ModelChoice:
        """The choice a settings `model` value stands for."""
        spec = spec.strip()
        if spec == "tiny":
            return cls("tiny", "tiny")
        if is_server_spec(spec):
            return cls("server", spec, model_name)
        return cls("checkpoint", spec)

    @property
    def label(self) -> str:
        return {"tiny": "tiny", "oracle": "oracle"}.get(self.kind, self.spec)


def engine_loader(settings: Any) -> Callable[..., Any]:
    """An EngineCache loader opening a picked model with everything else from `settings` (visagent.Settings:
    device, dtype, device_map, api_key, session limits, prefill chunk) through visagent.loop.engines.open_engine."""

    def load(spec: str, model_name: str | None = None, *, api_key: str | None = None,
             provider: str | None = None) -> Any:
        from visagent.loop.engines import open_engine

        return open_engine(with_server(settings, provider=provider, api_key=api_key), model=spec,
                           model_name=model_name)

    return load


def with_server(settings: Any, *, provider: str | None = None, api_key: str | None = None) -> Any:
    """`settings` with the picker's provider and API key in place of their own (None: keep them). The copy lives
    only in memory (Settings' own dump masks the key)."""
    changes = {k: v for k, v in (("provider", provider), ("api_key", api_key)) if v}
    return dataclasses.replace(settings, **changes) if changes else settings


class EngineCache:
    """Loads each (spec, model_name) once and hands the same engine to later runs (engines serialise their
    own generate calls). `loader(spec, model_name=..., provider=..., api_key=...)` opens one (`engine_loader`)."""

    def __init__(self, loader: Callable[..., Any]) -> None:
        self._loader = loader
        self._engines: dict[tuple[str, str | None, str | None, str | None], Any] = {}
        self._locks: dict[tuple[str, str | None, str | None, str | None], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, choice: ModelChoice) -> Any:
        """The engine for a model choice (loading it on first use). Raises EngineError / CheckpointError."""
        if choice.kind == "oracle":
            raise ConfigError("the oracle is not a model; the run builds it from the sim world")
        key = self._key(choice)
        with self._guard:
            if key in self._engines:
                return self._engines[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per key, other keys load in parallel
            with self._guard:
                if key in self._engines:
                    return self._engines[key]
            extra = {k: v for k, v in (("provider", choice.provider), ("api_key", choice.api_key)) if v}
            engine = self._loader(choice.spec, model_name=choice.model_name, **extra)
            with self._guard:
                self._engines[key] = engine
            return engine

    def loaded(self, choice: ModelChoice) -> bool:
        with self._guard:
            return self._key(choice) in self._engines

    @staticmethod
    def _key(choice: ModelChoice) -> tuple[str, str | None, str | None, str | None]:
        return (choice.spec, choice.model_name, choice.provider, choice.api_key)

    def close(self) -> None:
        """Close every loaded engine."""
        with self._guard:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()
