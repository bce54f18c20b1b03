"""Snapshots of transformers' hybrid cache for Qwen3.5 (Gated DeltaNet + full attention layers).

`DynamicCache(config=...)` holds, per layer, either key/value tensors (full attention: they grow with the
sequence and a prefix of them is exactly the cache of that prefix) or a fixed-size convolution state and
recurrent state (linear attention: a running summary that cannot be rewound). So a snapshot at token
`length` copies only the linear-attention states; restoring it copies them back and cuts every KV tensor
to `length`. Its size does not grow with the context: Qwen3.5-35B-A3B has 30 linear layers, each with
a 32x128x128 recurrent state (kept in fp32 by transformers' PyTorch rule) and a 32768x4 conv state,
≈ 64 MB a snapshot, while its 10 full-attention layers add 20 KB of bf16 KV per token (40 MB per 1080p
screenshot). The tiny checkpoint's snapshot is ~0.1 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Snapshot:
    """Linear-attention state after the first `length` tokens: {layer: (conv state, recurrent state)}."""

    length: int
    states: dict[int, tuple[torch.Tensor, torch.Tensor]]

    @property
    def nbytes(self) -> int:
        return sum(_bytes(t) for pair in self.states.values() for t in pair)


def _linear_layers(cache: Any) -> list[tuple[int, Any]]:
    return [(i, layer) for i, layer in enumerate(cache.layers) if hasattr(layer, "recurrent_states")]


def _kv_layers(cache: Any) -> list[Any]:
    return [layer for layer in cache.layers if not hasattr(layer, "recurrent_states")]


def take_snapshot(cache: Any, length: int) -> Snapshot:
    """Copies of every linear-attention layer's conv and recurrent state (the cache holds `length` tokens)."""
    states = {}
    for index, layer in _linear_layers(cache):  # clones of inference tensors are ordinary tensors
        conv, recurrent = layer.conv_states[0], layer.recurrent_states[0]
        if conv is None or recurrent is None:
            raise RuntimeError(f"linear-attention layer {index} has no state yet; snapshot after a forward pass")
        states[index] = (conv.detach().clone(), recurrent.detach().clone())
    return Snapshot(length, states)


def restore_snapshot(cache: Any, snapshot: Snapshot) -> None:
    """Put `cache` back to the state after `snapshot.length` tokens: KV cut, linear states copied in."""
    with torch.inference_mode():  # the cache's tensors were made under inference mode
        for index, layer in _linear_layers(cache):
            conv, recurrent = snapshot.states[index]
            layer.conv_states[0].copy_(conv)  # in place: the cache marked these addresses static
            layer.recurrent_states[0].copy_(recurrent)
        for layer in _kv_layers(cache):
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys = layer.keys[..., : snapshot.length, :].clone()
                layer.values = layer.values[..., : snapshot.length, :].clone()


def cache_bytes(cache: Any) -> int:
    """Bytes held by a transformers cache: KV of full-attention layers, conv + recurrent of linear ones."""
    if cache is None:
        return 0
    total = 0
    for layer in cache.layers:
        if hasattr(layer, "recurrent_states"):
            total += sum(_bytes(t) for t in layer.conv_states.values())
            total += sum(_bytes(t) for t in layer.recurrent_states.values())
        else:
            total += _bytes(getattr(layer, "keys", None)) + _bytes(getattr(layer, "values", None))
    return total


def _bytes(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel() * tensor.element_size()
