"""Which engine a dashboard run uses, and a cache so a model is loaded once and shared by later runs.

Model choices: the embedded tiny checkpoint, a local checkpoint directory, an OpenAI-compatible server URL
(+ model name), or the scripted sim oracle (no model; plays the scenario's known solution).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from visagent.errors import ConfigError

MODEL_KINDS = ("tiny", "checkpoint", "server", "oracle")
MODEL_LABELS = {
    "tiny": "Embedded tiny model",
    "checkpoint": "Local checkpoint",
    "server": "OpenAI-compatible server",
    "oracle": "Scripted oracle (sim only, no model)",
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
              "it serves several, the model name. The API key comes from `VISAGENT_API_KEY` / `OPENAI_API_KEY`.",
    "oracle": "No model: plays the sim scenario's known solution, step by step, through the same loop and trace. "
              "Only the scenario's own task.",
}


@dataclass(frozen=True)
class ModelChoice:
    """What the model picker says. `spec`: the load_engine spec ("tiny", a directory, a URL; "" for oracle)."""

    kind: str
    spec: str
    model_name: str | None = None

    @classmethod
    def from_form(cls, kind: str, checkpoint: str = "", url: str = "", model_name: str = "") -> ModelChoice:
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
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"server URL {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        return cls("server", url, (model_name or "").strip() or None)

    @classmethod
    def from_spec(cls, spec: str, model_name: str | None = None) -> ModelChoice:
        """The choice a settings `model` value stands for."""
        spec = spec.strip()
        if spec == "tiny":
            return cls("tiny", "tiny")
        if spec.startswith(("http://", "https://")):
            return cls("server", spec, model_name)
        return cls("checkpoint", spec)

    @property
    def label(self) -> str:
        return {"tiny": "tiny", "oracle": "oracle"}.get(self.kind, self.spec)


def engine_loader(settings: Any) -> Callable[..., Any]:
    """An EngineCache loader opening a picked model with everything else from `settings` (visagent.Settings:
    device, dtype, device_map, api_key, session limits, prefill chunk) through visagent.engines.open_engine."""

    def load(spec: str, model_name: str | None = None) -> Any:
        from visagent.engines import open_engine

        return open_engine(settings, model=spec, model_name=model_name)

    return load


class EngineCache:
    """Loads each (spec, model_name) once and hands the same engine to later runs (engines serialise their
    own generate calls). `loader(spec, model_name=...)` defaults to engine.load_engine with `load_options`."""

    def __init__(self, loader: Callable[..., Any] | None = None, **load_options: Any) -> None:
        self._loader = loader
        self._options = load_options
        self._engines: dict[tuple[str, str | None], Any] = {}
        self._locks: dict[tuple[str, str | None], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, choice: ModelChoice) -> Any:
        """The engine for a model choice (loading it on first use). Raises EngineError / CheckpointError."""
        if choice.kind == "oracle":
            raise ConfigError("the oracle is not a model; the run builds it from the sim world")
        key = (choice.spec, choice.model_name)
        with self._guard:
            if key in self._engines:
                return self._engines[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per key, other keys load in parallel
            with self._guard:
                if key in self._engines:
                    return self._engines[key]
            loader = self._loader
            if loader is None:
                from engine import load_engine as loader
            engine = loader(choice.spec, model_name=choice.model_name, **self._options)
            with self._guard:
                self._engines[key] = engine
            return engine

    def loaded(self, choice: ModelChoice) -> bool:
        with self._guard:
            return (choice.spec, choice.model_name) in self._engines

    def close(self) -> None:
        """Close every loaded engine."""
        with self._guard:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()
