"""Training examples: a record (messages + tools + target) as the exact tensors the model sees at inference.

The prompt goes through the engine's own `LocalEngine.prepare` (chat template with tools, thinking off,
screenshots through the checkpoint's preprocessor, image pads expanded, M-RoPE positions), so training and
inference see the same tokens; the target (`record["target"]` + `<|im_end|>`) is appended with the text
positions decoding would give it. Labels are -100 on every prompt token: loss only on the assistant turn.

Shared prefix: every record of one platform and prompt profile starts with the same system turn (system
prompt + tool schema: ~480 of a compact desktop grounding record's ~770 tokens). `Example.prefix_length` marks
it; `prefix_cache` runs it once (no gradient) and `example_loss(..., prefix=...)` continues from a copy of
that cache, so a batch pays for the system turn once instead of once per example (fwd + bwd). The loss is the
same (tested within 1e-4); the gradient lacks only the path through the system turn's own activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visagent.core.errors import ConfigError
from visagent.loop.prompting import with_images
from visagent.training.pointer import PointerHead, PointerTarget, pointer_target

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
    prefix_length: int = 0  # tokens of the leading system turn (no images), shared by records alike; 0: none
    pointer: PointerTarget | None = None  # where the auxiliary pointer loss applies (grounding records)

    def prefix_key(self) -> tuple[int, ...] | None:
        """The prefix's token ids (examples with equal keys can share one prefix cache); None without one."""
        return tuple(self.input_ids[0, : self.prefix_length].tolist()) if self.prefix_length else None

    @property
    def target_length(self) -> int:
        return int(self.input_ids.shape[1]) - self.prompt_length


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
    position_ids = torch.cat([prompt.position_ids, new_pos], dim=2)
    return Example(input_ids=input_ids, labels=labels, mm_token_type_ids=mm, position_ids=position_ids,
                   pixel_values=prompt.pixel_values, image_grid_thw=prompt.image_grid_thw, prompt_length=start,
                   prefix_length=_system_turn_length(engine, prompt.input_ids, prompt.mm_token_type_ids),
                   pointer=pointer_target(engine.tokenizer, record, record["target"] + END_OF_TURN, start, mm,
                                          position_ids))


def _system_turn_length(engine: Any, input_ids: torch.Tensor, mm: torch.Tensor) -> int:
    """Tokens up to the second `<|im_start|>` (the system turn) when the prompt starts with a text-only system
    turn followed by another turn; else 0."""
    start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    where = (input_ids[0] == start).nonzero().flatten().tolist()
    if len(where) < 2 or where[0] != 0 or int(mm[0, : where[1]].sum()):
        return 0
    return int(where[1])


def _trainable_copy(cache: Any) -> Any:
    """A copy of a prefix cache that a forward with gradients may continue from. transformers updates a Gated
    DeltaNet layer's recurrent state in place (`copy_`, for CUDA graphs), which would overwrite the initial
    state autograd saved for the backward pass; in this copy each update replaces the tensor instead."""
    import copy

    out = copy.deepcopy(cache)
    for layer in out.layers:
        if not hasattr(layer, "recurrent_states"):
            continue

        def update(recurrent_states: torch.Tensor, state_idx: int = 0, _layer: Any = layer, **_: Any) -> torch.Tensor:
            if not _layer.is_recurrent_states_initialized[state_idx]:
                _layer.lazy_initialization(recurrent_states=recurrent_states, state_idx=state_idx)
            _layer.recurrent_states[state_idx] = recurrent_states
            return recurrent_states

        layer.update_recurrent_state = update
    return out


def _cache_kwarg(model: Any) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefix_cache(model: Any, example: Example, device: str) -> Any:
    """The model's cache after `example`'s shared prefix, computed without gradient (its current weights)."""
    from engine import cache_of

    p = example.prefix_length
    if not p:
        raise ValueError("this example has no shared prefix")
    with torch.no_grad():
        out = model(input_ids=example.input_ids[:, :p].to(device), position_ids=example.position_ids[:, :, :p].to(device),
                    use_cache=True, logits_to_keep=1)
    return cache_of(out)


def example_loss(model: Any, example: Example, device: str, dtype: torch.dtype | None = None,
                 prefix: Any = None) -> torch.Tensor:
    """Mean cross-entropy over the target tokens (next-token prediction; prompt positions carry no loss).
    `prefix`: a cache from `prefix_cache` for this example's prefix (copied, not changed): only the tokens after
    it are run."""
    return example_losses(model, example, device, dtype, prefix)[0]


def example_losses(model: Any, example: Example, device: str, dtype: torch.dtype | None = None,
                   prefix: Any = None, pointer_head: PointerHead | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(target cross-entropy as in `example_loss`, pointer loss or None). The pointer loss
    (visagent.training.pointer) is computed when `pointer_head` is given and the example has a pointer target."""
    terms = example_terms(model, example, device, dtype, prefix, pointer_head)
    return terms["lm"], terms.get("pointer")


def example_terms(model: Any, example: Example, device: str, dtype: torch.dtype | None = None,
                  prefix: Any = None, pointer_head: PointerHead | None = None, pointer: bool = True,
                  readout: bool = False) -> dict[str, torch.Tensor]:
    """The loss terms of one example: "lm" (target cross-entropy), and where `pointer_head` is given and the
    example has a pointer target, "pointer" (when `pointer`) and "readout" (when `readout`; the model must run
    its language layers with eager attention, which returns attention weights)."""
    n = example.target_length
    s = example.prefix_length if prefix is not None else 0
    aux = pointer_head is not None and example.pointer is not None and (pointer or readout)
    kwargs: dict[str, Any] = {
        "input_ids": example.input_ids[:, s:].to(device),
        "position_ids": example.position_ids[:, :, s:].to(device),
        "logits_to_keep": n + 1,  # positions L-n-1 .. L-1: the first n predict the n target tokens
        "use_cache": prefix is not None,
    }
    if aux:
        kwargs["output_hidden_states"] = True
        kwargs["output_attentions"] = readout
    if prefix is not None:
        kwargs[_cache_kwarg(model)] = _trainable_copy(prefix)
    if example.pixel_values is not None:
        kwargs["pixel_values"] = example.pixel_values.to(device, dtype or example.pixel_values.dtype)
        kwargs["image_grid_thw"] = example.image_grid_thw.to(device)
        kwargs["mm_token_type_ids"] = example.mm_token_type_ids[:, s:].to(device)
    out = model(**kwargs)
    logits = out.logits[0, :n].float()
    targets = example.labels[0, -n:].to(device)
    terms = {"lm": torch.nn.functional.cross_entropy(logits, targets)}
    if not aux:
        return terms
    if pointer:
        terms["pointer"] = pointer_head.loss(out.hidden_states[-1][0], example.pointer, offset=s)
    if readout:
        layer = readout_layer(model)
        if not out.attentions or out.attentions[-1] is None:
            raise ConfigError("the readout loss needs attention weights: load the model with eager attention")
        terms["readout"] = pointer_head.readout_loss(out.attentions[-1][0], out.hidden_states[layer][0],
                                                     example.pointer, out.hidden_states[-1][0], offset=s)
    return terms


def readout_layer(model: Any) -> int:
    """Index of the last full-attention layer of the language model (whose weights the readout loss shapes)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    types = list(getattr(config, "layer_types", None) or ["full_attention"] * int(config.num_hidden_layers))
    return max(i for i, t in enumerate(types) if t == "full_attention")


def batch_losses(model: Any, examples: list[Example], device: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The target cross-entropy of each example (as `example_loss` gives it) from ONE forward over all of them:
    sequences right-padded to the longest (attention mask 0, labels -100 on the padding), their screenshots
    concatenated in order. Each sequence keeps its own positions, the padding sits after its last token, the
    vision tower attends within each image and routing is per token, so no example sees another. A GPU runs a
    batch of tiny-model examples in about the time of one; on a CPU it saves little."""
    if not examples:
        raise ValueError("batch_losses needs at least one example")
    lengths = [int(e.input_ids.shape[1]) for e in examples]
    width, rows = max(lengths), len(examples)
    input_ids = torch.zeros((rows, width), dtype=examples[0].input_ids.dtype)
    labels = torch.full((rows, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    mm = torch.zeros((rows, width), dtype=examples[0].mm_token_type_ids.dtype)
    positions = torch.zeros((4, rows, width), dtype=examples[0].position_ids.dtype)
    for i, (e, n) in enumerate(zip(examples, lengths)):
        input_ids[i, :n] = e.input_ids[0]
        labels[i, :n] = e.labels[0]
        mask[i, :n] = 1
        mm[i, :n] = e.mm_token_type_ids[0]
        positions[:, i, :n] = e.position_ids[:, 0]
        if n < width:  # the padding continues each row's positions (it is masked; this keeps them increasing)
            positions[:, i, n:] = e.position_ids[:, 0, -1:] + torch.arange(1, width - n + 1)
    kwargs: dict[str, Any] = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device),
                              "position_ids": positions.to(device), "use_cache": False}
    images = [e for e in examples if e.pixel_values is not None]
    if images:
        pixels = torch.cat([e.pixel_values for e in images])
        kwargs["pixel_values"] = pixels.to(device, dtype or pixels.dtype)
        kwargs["image_grid_thw"] = torch.cat([e.image_grid_thw for e in images]).to(device)
        kwargs["mm_token_type_ids"] = mm.to(device)
    logits = model(**kwargs).logits[:, :-1].float()  # position t predicts token t + 1
    targets = labels[:, 1:].to(device)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           ignore_index=IGNORE, reduction="none").view(rows, width - 1)
    counted = (targets != IGNORE).to(ce.dtype)
    return (ce * counted).sum(dim=1) / counted.sum(dim=1).clamp(min=1)
