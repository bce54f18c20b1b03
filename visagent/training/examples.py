"""Training examples: a record (messages + tools + target) as the exact tensors the model sees at inference.

The prompt goes through the engine's own `LocalEngine.prepare` (chat template with tools, thinking off,
screenshots through the checkpoint's preprocessor, image pads expanded, M-RoPE positions), so training and
inference see the same tokens; the target (`record["target"]` + `<|im_end|>`) is appended with the text
positions decoding would give it. Labels are -100 on every prompt token: loss only on the assistant turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visagent.errors import ConfigError

END_OF_TURN = "<|im_end|>"
IGNORE = -100


@dataclass
class Example:
    """One training sequence. Shapes: input_ids/labels/mm (1, L); position_ids (4, 1, L)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    mm_token_type_ids: torch.Tensor
    position_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    prompt_length: int

    @property
    def target_length(self) -> int:
        return int(self.input_ids.shape[1]) - self.prompt_length


def with_images(messages: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Copies of `messages` whose image parts hold PIL images loaded from paths (relative to `root`).
    Raises ConfigError naming a missing image."""
    from PIL import Image

    out: list[dict[str, Any]] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image" and isinstance(part.get("image"), str):
                    path = Path(part["image"])
                    path = path if path.is_absolute() else root / path
                    if not path.is_file():
                        raise ConfigError(f"training record image {path} is missing; rebuild the data directory")
                    with Image.open(path) as img:
                        part = {**part, "image": img.convert("RGB")}
                parts.append(part)
            msg = {**msg, "content": parts}
        out.append(msg)
    return out


def build_example(engine: Any, record: dict[str, Any], root: Path) -> Example:
    """The tensors of one record on `engine` (a LocalEngine: its tokenizer, template and preprocessor)."""
    prompt = engine.prepare(with_images(record["messages"], root), tools=record.get("tools") or None,
                            enable_thinking=False)
    target = engine.tokenizer(record["target"] + END_OF_TURN, add_special_tokens=False,
                              return_tensors="pt")["input_ids"]
    n = int(target.shape[1])
    start = prompt.length
    text_pos = torch.arange(start, start + n, dtype=torch.long)
    new_pos = torch.stack([text_pos] + [text_pos + prompt.rope_delta] * 3).view(4, 1, n)
    input_ids = torch.cat([prompt.input_ids, target], dim=1)
    labels = torch.cat([torch.full_like(prompt.input_ids, IGNORE), target], dim=1)
    mm = torch.cat([prompt.mm_token_type_ids, torch.zeros((1, n), dtype=prompt.mm_token_type_ids.dtype)], dim=1)
    return Example(input_ids=input_ids, labels=labels, mm_token_type_ids=mm,
                   position_ids=torch.cat([prompt.position_ids, new_pos], dim=2),
                   pixel_values=prompt.pixel_values, image_grid_thw=prompt.image_grid_thw, prompt_length=start)


def example_loss(model: Any, example: Example, device: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Mean cross-entropy over the target tokens (next-token prediction; prompt positions carry no loss)."""
    n = example.target_length
    kwargs: dict[str, Any] = {
        "input_ids": example.input_ids.to(device),
        "position_ids": example.position_ids.to(device),
        "logits_to_keep": n + 1,  # positions L-n-1 .. L-1: the first n predict the n target tokens
        "use_cache": False,
    }
    if example.pixel_values is not None:
        kwargs["pixel_values"] = example.pixel_values.to(device, dtype or example.pixel_values.dtype)
        kwargs["image_grid_thw"] = example.image_grid_thw.to(device)
        kwargs["mm_token_type_ids"] = example.mm_token_type_ids.to(device)
    logits = model(**kwargs).logits[0, :n].float()
    targets = example.labels[0, -n:].to(device)
    return torch.nn.functional.cross_entropy(logits, targets)
