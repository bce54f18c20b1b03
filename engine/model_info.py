"""What a checkpoint is, from its config.json alone: the model is built on the meta device, no weight is read.

Answers: which layers are linear (Gated DeltaNet) and which full attention, how many experts (total /
routed per token / shared), total and active parameters, the context length, and what a 1920x1080
screenshot costs in visual tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.api import VisionSpec, smart_resize, visual_tokens
from engine.checkpoint import read_config, read_history_images, read_prompt_profile, vision_spec
from engine.errors import CheckpointError
from engine.pointer import describe as describe_pointer_head

SCREEN = (1920, 1080)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    model_type: str
    family: str
    coord_space: str
    layer_types: tuple[str, ...]
    experts_total: int  # routed experts per MoE layer (0 for a dense model)
    experts_per_token: int  # routed experts each token uses
    shared_experts: int  # always-on experts per MoE layer
    total_params: int  # everything transformers builds (vision tower included, MTP head not)
    active_params: int  # per token: total minus the routed experts a token does not use
    vision_params: int
    embedding_params: int  # input embeddings + output head (counted in total and active)
    mtp_layers: int  # multi-token-prediction layers in config.json (transformers does not build them)
    context_length: int | None
    vision: VisionSpec
    screen: tuple[int, int]
    screen_resized: tuple[int, int]
    screen_visual_tokens: int
    pointer_head: dict[str, Any] | None = None  # engine/pointer.py: {"file", "trained_steps"} when it has one
    prompt_profile: str = "full"  # the agent prompt it was trained on (visagent.json; "full" without one)
    history_images: int | None = None  # screenshots per prompt it was trained with (visagent.json), if declared

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_types"] = list(self.layer_types)
        return data


def model_info(path: str | Path) -> ModelInfo:
    """Describe the checkpoint directory at `path` from config.json (and preprocessor_config.json if present).

    Raises CheckpointError for a missing/invalid config.json or an unsupported model_type.
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    root = Path(path).expanduser()
    raw, family = read_config(root)
    try:
        config = AutoConfig.from_pretrained(str(root))
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
    except Exception as exc:  # a config transformers cannot build: one line, not its traceback
        raise CheckpointError(f"cannot build the model described by {root / 'config.json'}: {exc}") from exc
    text = getattr(config, "text_config", config)
    total = routed = vision = 0
    embedding = sum(p.numel() for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
                    for p in m.parameters())
    for name, param in model.named_parameters():
        n = param.numel()
        total += n
        if ".mlp.experts." in name:
            routed += n
        if ".visual." in f".{name}":
            vision += n
    experts = int(getattr(text, "num_experts", 0) or 0)
    per_token = int(getattr(text, "num_experts_per_tok", 0) or 0)
    active = total - routed + (routed * per_token // experts if experts else 0)
    shared = 1 if experts and getattr(text, "shared_expert_intermediate_size", 0) else 0
    layers = int(text.num_hidden_layers)
    layer_types = tuple(getattr(text, "layer_types", None) or ["full_attention"] * layers)
    spec = vision_spec(root, raw, family)
    raw_text = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw
    context = getattr(text, "max_position_embeddings", None)
    return ModelInfo(
        path=str(root),
        model_type=family.model_type,
        family=family.label,
        coord_space=family.coord_space,
        layer_types=layer_types,
        experts_total=experts,
        experts_per_token=per_token,
        shared_experts=shared,
        total_params=total,
        active_params=active,
        vision_params=vision,
        embedding_params=embedding,
        mtp_layers=int(raw_text.get("mtp_num_hidden_layers", 0) or 0),
        context_length=int(context) if context else None,
        vision=spec,
        screen=SCREEN,
        screen_resized=smart_resize(*SCREEN, spec),
        screen_visual_tokens=visual_tokens(*SCREEN, spec),
        pointer_head=describe_pointer_head(root),
        prompt_profile=read_prompt_profile(root),
        history_images=read_history_images(root),
    )


def format_model_info(info: ModelInfo) -> str:
    """A human-readable summary, one fact per line."""
    linear = sum(1 for t in info.layer_types if t == "linear_attention")
    full = sum(1 for t in info.layer_types if t == "full_attention")
    pattern = "".join("L" if t == "linear_attention" else "F" for t in info.layer_types)
    lines = [
        f"checkpoint:      {info.path}",
        f"model:           {info.family} ({info.model_type}), coordinates {info.coord_space}",
        f"layers:          {len(info.layer_types)} = {linear} linear_attention (Gated DeltaNet) + {full} full_attention",
        f"layer pattern:   {pattern}  (L linear, F full)",
    ]
    if info.experts_total:
        lines.append(
            f"experts:         {info.experts_total} routed per layer, {info.experts_per_token} per token, "
            f"{info.shared_experts} shared"
        )
    else:
        lines.append("experts:         none (dense MLP)")
    lines += [
        f"parameters:      {_human(info.total_params)} total, {_human(info.active_params)} active per token "
        f"(both include embeddings + output head {_human(info.embedding_params)} "
        f"and the vision tower {_human(info.vision_params)})",
    ]
    if info.mtp_layers:
        lines.append(f"mtp layers:      {info.mtp_layers} in config.json (not built by transformers, not counted)")
    lines += [
        f"context length:  {info.context_length if info.context_length else 'unknown'} tokens",
        f"vision:          patch {info.vision.patch_size}, merge {info.vision.merge_size} "
        f"({info.vision.factor} px per visual token), {info.vision.min_pixels}..{info.vision.max_pixels} px per image",
        f"screenshot:      {info.screen[0]}x{info.screen[1]} → {info.screen_resized[0]}x{info.screen_resized[1]} "
        f"= {info.screen_visual_tokens} visual tokens",
    ]
    if info.prompt_profile != "full" or info.history_images is not None:
        lines.append(f"agent prompt:    {info.prompt_profile} profile (visagent.json)"
                     + (f", at most {info.history_images} screenshot{'s' if info.history_images > 1 else ''} per "
                        "prompt (older steps as one line each)" if info.history_images is not None else ""))
    if info.pointer_head is not None:
        steps = info.pointer_head.get("trained_steps")
        lines.append(f"pointing head:   {info.pointer_head['file']}"
                     + (f" (trained {steps} steps)" if steps is not None else f" ({info.pointer_head.get('error')})")
                     + ": clicks go where it points unless --point-from text")
    return "\n".join(lines)


def _human(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
