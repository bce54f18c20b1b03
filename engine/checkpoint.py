"""Inspect and validate a Hugging Face checkpoint directory before anything heavy is loaded.

Every problem a user can fix gets one `CheckpointError` line naming the file and what to do: a missing
directory or `config.json`, an unsupported `model_type`, missing or truncated safetensors shards, no
tokenizer, no chat template. Only file headers are read here, never the weights.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api import CoordSpaceName, VisionSpec
from engine.errors import CheckpointError
from engine.pointer import POINTER_FILE


@dataclass(frozen=True)
class ModelFamily:
    """What differs between the supported model types: how they write coordinates and see images."""

    model_type: str
    label: str
    coord_space: CoordSpaceName  # norm1000: 0..1000 grid over the image; resized: pixels of the resized image
    patch_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

    def default_vision(self) -> VisionSpec:
        """The screen budget visagent uses by default: 64..2560 visual tokens per image."""
        factor = self.patch_size * 2
        return VisionSpec(
            patch_size=self.patch_size,
            merge_size=2,
            temporal_patch_size=2,
            min_pixels=64 * factor * factor,
            max_pixels=2560 * factor * factor,
            image_mean=self.image_mean,
            image_std=self.image_std,
        )


_HALF = (0.5, 0.5, 0.5)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: model_type → family. Qwen3.5 and Qwen3-VL: patch 16, merge 2 (32 px per token), 0..1000 grid;
#: Qwen2.5-VL: patch 14, merge 2 (28 px per token), absolute pixels of the resized image.
FAMILIES: dict[str, ModelFamily] = {
    f.model_type: f
    for f in (
        ModelFamily("qwen3_5_moe", "Qwen3.5 MoE", "norm1000", 16, _HALF, _HALF),
        ModelFamily("qwen3_5", "Qwen3.5", "norm1000", 16, _HALF, _HALF),
        ModelFamily("qwen3_vl_moe", "Qwen3-VL MoE", "norm1000", 16, _HALF, _HALF),
        ModelFamily("qwen3_vl", "Qwen3-VL", "norm1000", 16, _HALF, _HALF),
        ModelFamily("qwen2_5_vl", "Qwen2.5-VL", "resized", 14, _CLIP_MEAN, _CLIP_STD),
    )
}


@dataclass(frozen=True)
class CheckpointInfo:
    """A validated checkpoint directory."""

    path: Path
    model_type: str
    family: ModelFamily
    config: dict[str, Any]  # config.json as parsed
    vision: VisionSpec
    context_length: int | None
    weight_files: tuple[Path, ...]
    weight_bytes: int
    chat_template: Path  # the file that holds the chat template
    prompt_profile: str = "full"  # from visagent.json (PROFILE_FILE), "full" when absent
    history_images: int | None = None  # from visagent.json: the screenshot window it was trained with, if declared
    decoding: str | None = None  # from visagent.json: "greedy" for a checkpoint measured with greedy decoding


#: Optional file of a checkpoint directory: {"prompt_profile": "compact"} for a model trained on the compact
#: agent prompt (visagent.core.schemas), and {"history_images": N} for one trained on prompts showing at most N
#: screenshots (older steps as one line each), and {"decoding": "greedy"} for one whose recommended decoding is
#: greedy (engine/presets.py). Released checkpoints have none and get the full prompt.
PROFILE_FILE = "visagent.json"
PROMPT_PROFILES = ("full", "compact", "compact-task-first")  # = visagent.core.schemas.PROMPT_PROFILES (engine does not import visagent)


def _profile_data(root: Path) -> dict[str, Any]:
    path = root / PROFILE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); fix it or delete it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}; fix it or delete it")
    return data


def read_prompt_profile(root: Path) -> str:
    """The prompt profile a checkpoint declares in `visagent.json`; "full" without the file. Raises CheckpointError."""
    profile = _profile_data(root).get("prompt_profile", "full")
    if profile not in PROMPT_PROFILES:
        raise CheckpointError(f"{root / PROFILE_FILE}: prompt_profile must be one of {', '.join(PROMPT_PROFILES)}, "
                              f"got {profile!r}")
    return str(profile)


def read_history_images(root: Path) -> int | None:
    """The screenshot window a checkpoint declares in `visagent.json` (None: not declared). Raises CheckpointError."""
    value = _profile_data(root).get("history_images")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CheckpointError(f"{root / PROFILE_FILE}: history_images must be a whole number >= 1, got {value!r}")
    return value


def read_decoding(root: Path) -> str | None:
    """The decoding a checkpoint declares in `visagent.json` ("greedy"; None: not declared). Raises CheckpointError."""
    value = _profile_data(root).get("decoding")
    if value not in (None, "greedy"):
        raise CheckpointError(f"{root / PROFILE_FILE}: decoding must be \"greedy\" when given, got {value!r}")
    return value


def read_config(path: str | Path) -> tuple[dict[str, Any], ModelFamily]:
    """Read `config.json` of a checkpoint directory and its supported family. Raises CheckpointError."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CheckpointError(f"checkpoint directory {root} does not exist; pass a Hugging Face checkpoint directory")
    if not root.is_dir():
        raise CheckpointError(f"{root} is a file; pass the checkpoint directory that holds config.json")
    config_file = root / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no config.json in {root}: not a Hugging Face checkpoint directory")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file} is not valid JSON ({exc}); restore it from the model release") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} must hold a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise CheckpointError(
            f"model_type {model_type!r} in {config_file} is not supported; supported: {', '.join(FAMILIES)}"
        )
    return config, FAMILIES[model_type]


def inspect_checkpoint(path: str | Path, *, min_pixels: int | None = None, max_pixels: int | None = None) -> CheckpointInfo:
    """Validate a checkpoint directory (config, weights, tokenizer, chat template) without loading weights.

    `min_pixels` / `max_pixels` override the per-image pixel budget; by default the checkpoint's own budget,
    capped at 2560 visual tokens so a 4K screenshot does not cost 16k tokens.
    Raises CheckpointError with one line naming the problem and the fix.
    """
    root = Path(path).expanduser()
    config, family = read_config(root)
    weight_files, weight_bytes = check_weights(root)
    if not (root / "tokenizer.json").is_file() and not (
        (root / "vocab.json").is_file() and (root / "merges.txt").is_file()
    ):
        raise CheckpointError(f"no tokenizer in {root}: tokenizer.json (or vocab.json + merges.txt) is missing")
    return CheckpointInfo(
        path=root,
        model_type=family.model_type,
        family=family,
        config=config,
        vision=vision_spec(root, config, family, min_pixels=min_pixels, max_pixels=max_pixels),
        context_length=context_length(config),
        weight_files=weight_files,
        weight_bytes=weight_bytes,
        chat_template=find_chat_template(root),
        prompt_profile=read_prompt_profile(root),
        history_images=read_history_images(root),
        decoding=read_decoding(root),
    )


def check_weights(root: Path) -> tuple[tuple[Path, ...], int]:
    """Check that every safetensors shard exists and is as long as its header says. Returns (files, bytes)."""
    index_file = root / "model.safetensors.index.json"
    if index_file.is_file():
        try:
            weight_map = json.loads(index_file.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index_file} is damaged ({exc!r}); restore it from the model release") from None
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise CheckpointError(
                f"{len(missing)} of {len(names)} weight shards listed in {index_file.name} are missing from {root}: "
                f"{shown}; download them again"
            )
        files = [root / n for n in names]
    else:
        files = sorted(p for p in root.glob("*.safetensors") if p.name != POINTER_FILE)  # a side head, not weights
        if not files:
            other = sorted(p.name for p in root.glob("*.bin"))
            hint = f" (found {other[0]}: convert it to safetensors)" if other else ""
            raise CheckpointError(f"no weights in {root}: no model.safetensors or safetensors shards{hint}")
    total = 0
    for file in files:
        total += _check_shard(file)
    return tuple(files), total


def _check_shard(file: Path) -> int:
    """Read one safetensors header and compare the data size it promises with the file size."""
    size = file.stat().st_size
    try:
        with file.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > 100_000_000:
                raise ValueError(f"implausible header length {header_len}")
            if header_len > size - 8:
                raise CheckpointError(
                    f"weight shard {file} is truncated: {size} bytes on disk, its header alone needs "
                    f"{8 + header_len}; download it again"
                )
            header = json.loads(fh.read(header_len))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"weight shard {file} is damaged ({exc}); download it again") from None
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise CheckpointError(
            f"weight shard {file} is truncated: {size} bytes on disk, its header needs {expected}; download it again"
        )
    return size


def find_chat_template(root: Path) -> Path:
    """The file holding the chat template: chat_template.jinja, chat_template.json or tokenizer_config.json."""
    for name in ("chat_template.jinja", "chat_template.json"):
        if (root / name).is_file():
            return root / name
    tokenizer_config = root / "tokenizer_config.json"
    if tokenizer_config.is_file():
        try:
            if json.loads(tokenizer_config.read_text(encoding="utf-8")).get("chat_template"):
                return tokenizer_config
        except (OSError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{tokenizer_config} is not valid JSON ({exc})") from None
    raise CheckpointError(
        f"no chat template in {root}: add the model's chat_template.jinja (prompts are only built from it)"
    )


def context_length(config: dict[str, Any]) -> int | None:
    """max_position_embeddings of the text model (nested text_config or top level)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    value = text.get("max_position_embeddings", config.get("max_position_embeddings"))
    return int(value) if value else None


def vision_spec(
    root: Path | None,
    config: dict[str, Any],
    family: ModelFamily,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> VisionSpec:
    """The VisionSpec of a checkpoint: preprocessor_config.json, else config.json's vision_config, else the family.

    The pixel budget is the checkpoint's, capped at the family's screen default (2560 tokens), unless
    `min_pixels` / `max_pixels` are given.
    """
    default = family.default_vision()
    pre: dict[str, Any] = {}
    if root is not None and (root / "preprocessor_config.json").is_file():
        try:
            pre = json.loads((root / "preprocessor_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{root / 'preprocessor_config.json'} is not valid JSON ({exc})") from None
    vis = config.get("vision_config") if isinstance(config.get("vision_config"), dict) else {}
    patch = int(pre.get("patch_size") or vis.get("patch_size") or default.patch_size)
    merge = int(pre.get("merge_size") or vis.get("spatial_merge_size") or default.merge_size)
    temporal = int(pre.get("temporal_patch_size") or vis.get("temporal_patch_size") or default.temporal_patch_size)
    size = pre.get("size") if isinstance(pre.get("size"), dict) else {}
    lo = min_pixels or size.get("shortest_edge") or pre.get("min_pixels") or default.min_pixels
    hi = size.get("longest_edge") or pre.get("max_pixels") or default.max_pixels
    hi = max_pixels or min(int(hi), 2560 * (patch * merge) ** 2)
    if int(lo) > int(hi):
        raise CheckpointError(f"min_pixels {lo} exceeds max_pixels {hi}; lower min_pixels or raise max_pixels")
    return VisionSpec(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=temporal,
        min_pixels=int(lo),
        max_pixels=int(hi),
        image_mean=tuple(float(v) for v in pre.get("image_mean", family.image_mean)),
        image_std=tuple(float(v) for v in pre.get("image_std", family.image_std)),
    )
