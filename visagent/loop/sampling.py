"""How each model call samples: the model's recommended values for the mode (thinking or not), the user's
overrides on top, or greedy when asked.

The recommended values come with the engine (`EngineInfo.sampling`, see engine/presets.py: Qwen3.5's card per
mode for a served model, a local checkpoint's generation_config.json). Settings `temperature`, `top_p`,
`top_k`, `min_p`, `presence_penalty`, `repetition_penalty` replace single values in both modes; `greedy`
decodes greedily in both (reproducible runs and evals).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.api import EngineInfo, GenerationConfig, SamplingPreset

FIELDS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "repetition_penalty")


@dataclass(frozen=True)
class SamplingChoice:
    """What the settings ask for. Fields left None take the model's recommended value for the mode."""

    greedy: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SamplingChoice:
        return cls(greedy=settings.greedy, **{name: getattr(settings, name) for name in FIELDS})

    def overrides(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}


def resolve(base: GenerationConfig, info: EngineInfo, choice: SamplingChoice, thinking: bool) -> tuple[GenerationConfig, str]:
    """(`base` with the sampling values of this mode, where they came from). Length, seed, stop and timeout of
    `base` are kept; `enable_thinking` is set to `thinking`."""
    cfg = dataclasses.replace(base, enable_thinking=thinking)
    if choice.greedy:
        return dataclasses.replace(cfg, temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, presence_penalty=0.0,
                                   repetition_penalty=1.0), "greedy (asked for)"
    preset: SamplingPreset | None = info.sampling.for_mode(thinking) if info.sampling is not None else None
    source = "the engine's defaults (the model recommends nothing)"
    if preset is not None:
        cfg, source = preset.apply(cfg), preset.source or "the model's recommendation"
    overrides = choice.overrides()
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
        source += "; settings override " + ", ".join(f"{k}={v}" for k, v in overrides.items())
    return cfg, source


def describe(cfg: GenerationConfig, source: str) -> dict[str, Any]:
    """The sampling of one mode as recorded in meta.json."""
    out: dict[str, Any] = {name: getattr(cfg, name) for name in FIELDS}
    out["source"] = source
    return out
