"""Running a prepared multimodal prompt in segments: tokens [start, end) on top of a cache of [0, start).

Sessions (engine/session.py: prefill only what a new turn adds) and chunked prefill (engine/prefill.py: Stop
honoured between chunks) both feed the model this way. Each segment gets its slice of the M-RoPE
`position_ids` and `mm_token_type_ids` and the `pixel_values` rows of the images inside it; a segment never
cuts through an image (`image_spans` says where each image's tokens and patch rows are).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: Runs prompt tokens [start, end) on top of `cache` (None: an empty one); returns (last-position logits,
#: the cache now holding tokens [0, end)). Built by `segment_runner`.
SegmentRunner = Callable[[int, int, Any], tuple[torch.Tensor, Any]]


def segment_runner(
    model: Any,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    pixel_values: torch.Tensor | None,
    image_grid_thw: torch.Tensor | None,
    *,
    merge_size: int,
    device: torch.device | str,
    dtype: torch.dtype,
    pixels_for: Callable[[int, int], torch.Tensor] | None = None,
    keep_hidden: Callable[[int, int, torch.Tensor], None] | None = None,
) -> SegmentRunner:
    """A SegmentRunner over one prepared prompt for a transformers Qwen VL model.

    `position_ids` (4, 1, L): text row + 3 M-RoPE rows computed for the whole prompt; each segment gets its
    slice. A segment gets the patches of the images whose tokens lie in it (images never straddle a cut:
    cuts are at `<|im_start|>`): rows of `pixel_values`, or, when that is None, `pixels_for(first, stop)`
    preprocessing images first..stop-1 on demand (images already in the cache are never preprocessed).
    `keep_hidden(start, end, hidden)`, when given, gets each segment's last hidden states (1, end - start, H),
    the language model's final-norm output (engine/pointer.py reads a screenshot's tokens from it).
    """
    spans = image_spans(mm_token_type_ids, image_grid_thw, merge_size)
    cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def run(start: int, end: int, cache: Any) -> tuple[torch.Tensor, Any]:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids[:, start:end].to(device),
            "position_ids": position_ids[:, :, start:end].to(device),
            "use_cache": True,
            "logits_to_keep": 1,
            cache_kwarg: cache,
        }
        inside = [s for s in spans if start <= s.token_start < end]
        if any(s.token_end > end for s in inside) or any(s.token_start < start < s.token_end for s in spans):
            raise ValueError(f"segment [{start}, {end}) cuts through an image; cut at turn boundaries only")
        if inside:
            assert image_grid_thw is not None
            first, last = inside[0].index, inside[-1].index + 1
            if pixel_values is not None:
                rows = pixel_values[inside[0].row_start : inside[-1].row_end]
            elif pixels_for is not None:
                rows = pixels_for(first, last)
            else:
                raise ValueError("the segment holds images but neither pixel_values nor pixels_for was given")
            kwargs["pixel_values"] = rows.to(device, dtype)
            kwargs["image_grid_thw"] = image_grid_thw[first:last].to(device)
            kwargs["mm_token_type_ids"] = mm_token_type_ids[:, start:end].to(device)
        hook = None
        if keep_hidden is not None:
            hook = final_norm(model).register_forward_hook(
                lambda _module, _args, output: keep_hidden(start, end, output))
        try:
            with torch.inference_mode():
                out = model(**kwargs)
        finally:
            if hook is not None:
                hook.remove()
        return out.logits[0, -1].float(), cache_of(out)

    return run


def final_norm(model: Any) -> torch.nn.Module:
    """The language model's final norm (its output is the last hidden state the LM head reads)."""
    inner = getattr(model, "model", model)
    language = getattr(inner, "language_model", inner)
    norm = getattr(language, "norm", None)
    if not isinstance(norm, torch.nn.Module):
        raise ValueError(f"{type(model).__name__} has no language_model.norm to read hidden states from")
    return norm


@dataclass(frozen=True)
class ImageSpan:
    """Image `index`: tokens [token_start, token_end) of the prompt, rows [row_start, row_end) of pixel_values."""

    index: int
    token_start: int
    token_end: int
    row_start: int
    row_end: int


def image_spans(mm_token_type_ids: torch.Tensor, image_grid_thw: torch.Tensor | None, merge_size: int) -> list[ImageSpan]:
    """Where each image sits in the token sequence and in pixel_values (images in prompt order)."""
    if image_grid_thw is None or not int(mm_token_type_ids.sum()):
        return []
    flags = mm_token_type_ids[0].tolist()
    spans: list[ImageSpan] = []
    token = row = 0
    for index, (t, h, w) in enumerate(image_grid_thw.tolist()):
        while token < len(flags) and flags[token] != 1:
            token += 1
        count = t * h * w // merge_size**2
        if token + count > len(flags) or not all(flags[token : token + count]):
            raise ValueError(f"image {index}: {count} visual tokens expected at position {token}, not found")
        spans.append(ImageSpan(index, token, token + count, row, row + t * h * w))
        token += count
        row += t * h * w
    return spans


def cache_of(out: Any) -> Any:
    """The cache a transformers forward returned: `out.cache` (newer Qwen classes) or `out.past_key_values`."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)
