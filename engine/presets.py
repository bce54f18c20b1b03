"""Recommended sampling per model and mode: the values a model's authors publish, and a checkpoint's own file.

- Qwen3.5 / Qwen3.6 (the "Best Practices" section of the Qwen/Qwen3.5-35B-A3B and -122B-A10B model cards):
  thinking mode, general tasks: temperature 1.0, top_p 0.95, top_k 20, min_p 0, presence_penalty 1.5,
  repetition_penalty 1.0; non-thinking (instruct) mode, general tasks: temperature 0.7, top_p 0.8, top_k 20,
  min_p 0, presence_penalty 1.5, repetition_penalty 1.0. The cards advise against greedy decoding.
- A local checkpoint: its `generation_config.json` (`do_sample`, `temperature`, `top_p`, `top_k`, `min_p`,
  `repetition_penalty`, `presence_penalty`) is the checkpoint's default mode's recommendation. A Qwen3.5 release
  thinks by default, so the file sets the thinking mode and the card's instruct values the non-thinking mode;
  for any other family the file sets both. A checkpoint may declare `"decoding": "greedy"` in visagent.json
  (the project's tiny demo model does: it was trained and measured greedy).
- Qwen2.5-VL / UI-TARS behind a server: greedy (their published evaluations decode greedily; not checked
  against every card).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.api import RecommendedSampling, SamplingPreset
from engine.errors import CheckpointError

QWEN35_CARD = "Qwen3.5 model card (Best Practices)"
QWEN35_THINKING = SamplingPreset(temperature=1.0, top_p=0.95, top_k=20, min_p=0.0, presence_penalty=1.5,
                                 repetition_penalty=1.0, source=f"{QWEN35_CARD}: thinking mode, general tasks")
QWEN35_NON_THINKING = SamplingPreset(temperature=0.7, top_p=0.8, top_k=20, min_p=0.0, presence_penalty=1.5,
                                     repetition_penalty=1.0, source=f"{QWEN35_CARD}: non-thinking mode, general tasks")
QWEN35 = RecommendedSampling(thinking=QWEN35_THINKING, non_thinking=QWEN35_NON_THINKING)
GREEDY = SamplingPreset(temperature=0.0, source="greedy")
GREEDY_BOTH = RecommendedSampling(thinking=GREEDY, non_thinking=GREEDY)

#: model_type values of the Qwen3.5 / Qwen3.6 family (config.json), whose cards publish per-mode values.
QWEN35_MODEL_TYPES = ("qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text")


def for_served_model(coord_space: str) -> RecommendedSampling:
    """Recommended sampling for a model behind a server, from its coordinate family: Qwen3.5's card values for
    0..1000-grid models (Qwen3-VL / Qwen3.5 / Qwen3.6), greedy for resized-pixel ones (Qwen2.5-VL, UI-TARS)."""
    return QWEN35 if coord_space == "norm1000" else GREEDY_BOTH


def for_checkpoint(root: Path, model_type: str, *, decoding: str | None = None) -> RecommendedSampling | None:
    """Recommended sampling for a local checkpoint directory (see the module docstring); None when it says
    nothing (no generation_config.json and not a Qwen3.5 release). `decoding` is visagent.json's value.
    Raises CheckpointError for a generation_config.json that is not JSON or holds values out of range."""
    if decoding == "greedy":
        return RecommendedSampling(thinking=GREEDY, non_thinking=GREEDY)
    own = _from_generation_config(root / "generation_config.json")
    if model_type in QWEN35_MODEL_TYPES:
        return RecommendedSampling(thinking=own or QWEN35_THINKING, non_thinking=QWEN35_NON_THINKING)
    if own is None:
        return None
    return RecommendedSampling(thinking=own, non_thinking=own)


def _from_generation_config(path: Path) -> SamplingPreset | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc}); fix or remove the file") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: must hold a JSON object")
    keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty")
    if not any(k in data for k in keys) and "do_sample" not in data:
        return None
    source = f"{path.parent.name}/generation_config.json"
    if data.get("do_sample") is False:
        return SamplingPreset(temperature=0.0, source=f"{source} (do_sample false: greedy)")
    values: dict[str, float] = {}
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckpointError(f"{path}: {key} must be a number, got {value!r}")
        values[key] = value
    preset = SamplingPreset(
        temperature=float(values.get("temperature", 1.0)),  # transformers' own default when do_sample is on
        top_p=float(values.get("top_p", 1.0)),
        top_k=int(values.get("top_k", 0)),
        min_p=float(values.get("min_p", 0.0)),
        presence_penalty=float(values.get("presence_penalty", 0.0)),
        repetition_penalty=float(values.get("repetition_penalty", 1.0)),
        source=source,
    )
    if preset.temperature < 0 or not 0 < preset.top_p <= 1 or preset.top_k < 0 or not 0 <= preset.min_p <= 1 \
            or preset.repetition_penalty <= 0:
        raise CheckpointError(f"{path}: sampling values out of range ({values}); fix the file")
    return preset
