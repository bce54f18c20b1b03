"""Model side of visagent: checkpoints, preprocessing, generation, sessions, OpenAI-compatible serving.

Knows nothing about GUIs. Two public doors, and nothing outside `engine` imports its other modules (an
import-linter contract in pyproject.toml checks it):

- `engine.api`: the Engine protocol and the value types a run exchanges with it (light, no torch);
- this package: `load_engine(spec)` (returns an `engine.api.Engine`), `tiny_checkpoint_path()`, and the names in
  `_PUBLIC` below — serving, inspecting and building checkpoints, session limits, and what the trainer needs from
  the model side. They load on first use, so `import engine` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.api import Engine
    from engine.session import SessionLimits

# name -> the module that defines it; resolved lazily by __getattr__ below.
_PUBLIC = {
    # serving and remote servers
    "ChatServer": "engine.server", "RemoteEngine": "engine.remote", "PROVIDER_CHOICES": "engine.providers",
    # in-process sessions
    "SessionLimits": "engine.session",
    # inspecting and building checkpoints
    "inspect_checkpoint": "engine.checkpoint", "read_prompt_profile": "engine.checkpoint",
    "read_history_images": "engine.checkpoint", "read_model_info": "engine.model_info:model_info",
    "format_model_info": "engine.model_info", "build_tiny_checkpoint": "engine.tiny", "DEFAULT_SIZES": "engine.tiny",
    "check_sizes": "engine.tiny",
    # what the trainer needs from the model side
    "LocalEngine": "engine.local", "FlagHead": "engine.pointer", "save_pointer_head": "engine.pointer",
    "last_image_positions": "engine.pointer", "token_centres": "engine.pointer", "token_grid": "engine.pointer",
    "cache_of": "engine.segments", "fused_training_problem": "engine.devices", "flush_denormals": "engine.devices",
}

__all__ = ["load_engine", "tiny_checkpoint_path", *_PUBLIC]


def __getattr__(name: str) -> object:
    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    import importlib

    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr or name)


def tiny_checkpoint_path() -> Path:
    """Directory of the tiny qwen3_5_moe checkpoint shipped inside the package (`engine/tiny/`)."""
    return Path(__file__).resolve().parent / "tiny"


def load_engine(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    model_name: str | None = None,
    api_key: str | None = None,
    session_limits: SessionLimits | None = None,
    prefill_chunk: int | None = None,
    provider: str = "auto",
) -> Engine:
    """Open an engine from a model spec.

    - `"tiny"`: the embedded tiny checkpoint (engine/tiny/), run in-process;
    - `http://...` / `https://...`: an OpenAI-compatible server (vLLM, SGLang, `visagent serve`), with
      `model_name`, `api_key` and `provider` (engine/providers.py; "auto": detected) passed to it;
    - anything else: a local Hugging Face checkpoint directory, run in-process on `device` ("auto", "cpu",
      "cuda", "cuda:N") in `dtype` ("auto": bf16 on CUDA, fp32 on CPU), or spread by `device_map="auto"`.

    `session_limits` (engine.session.SessionLimits: sessions, bytes, snapshots per session) and
    `prefill_chunk` (prompt tokens per prefill forward; None: engine.prefill.DEFAULT_PREFILL_CHUNK, 0: one
    forward) apply to an in-process engine only; a server keeps its own.

    Raises engine.errors.CheckpointError / EngineError with one line saying what to fix.
    """
    from engine.errors import CheckpointError

    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        from engine.remote import RemoteEngine

        return RemoteEngine(spec, model_name=model_name, api_key=api_key, provider=provider)
    from engine.local import LocalEngine
    from engine.prefill import DEFAULT_PREFILL_CHUNK

    local = {
        "device": device,
        "dtype": dtype,
        "device_map": device_map,
        "session_limits": session_limits,
        "prefill_chunk": DEFAULT_PREFILL_CHUNK if prefill_chunk is None else prefill_chunk,
    }
    if spec == "tiny":
        path = tiny_checkpoint_path()
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"the embedded tiny checkpoint is missing from {path}; rebuild it with `visagent tiny --out {path}`"
            )
        return LocalEngine(path, spec="tiny", **local)
    if not Path(spec).expanduser().exists():
        raise CheckpointError(
            f"model spec {spec!r} is neither 'tiny', an http(s):// URL nor an existing checkpoint directory"
        )
    return LocalEngine(Path(spec), spec=spec, **local)
