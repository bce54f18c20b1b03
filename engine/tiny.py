"""Build a tiny `qwen3_5_moe` checkpoint: same architecture, files and loading path as a real Qwen3.5.

Nothing can be downloaded here, so the project makes its own checkpoint: transformers'
`Qwen3_5MoeForConditionalGeneration` (hybrid Gated DeltaNet + gated full attention layers, routed + shared
experts, a vision tower with patch 16 / merge 2) at a few million parameters, saved in bf16 like a real
release, with a byte-level BPE tokenizer trained on the text the agent actually produces and reads, Qwen's
special tokens and a chat template that renders the Qwen3.5 conversation format.

A fresh checkpoint's weights are random (seeded); `visagent train-tiny` trains them (the shipped engine/tiny/ is
such a trained one). Every file is real.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Qwen's pre-tokenizer split: English contractions, letter runs, ONE digit per token, punctuation runs,
#: newlines, spaces (the same expression Qwen2/3/3.5 tokenizers use).
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Control tokens: skipped when decoding with skip_special_tokens (as in Qwen's tokenizer).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Format tokens: single tokens, but kept in decoded text (the parser needs them), as in Qwen's tokenizer.
TEXT_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")

TEMPLATE_PATH = Path(__file__).with_name("tiny_template.jinja")

#: Default sizes, after measurements of tiny qwen3_5_moe models on a 2-core CPU made before the recipe existed
#: (hidden 128, 8 experts top-2 + shared learned there; docs/training.md, Findings); every key can be overridden
#: through `build_tiny_checkpoint(**size_overrides)`.
DEFAULT_SIZES: dict[str, Any] = {
    "vocab_size": 4096,  # BPE target; the trained vocabulary may be smaller on a small corpus
    "hidden_size": 128,
    "num_hidden_layers": 8,
    "full_attention_interval": 4,  # Qwen3.5's 3 x linear_attention + 1 x full_attention
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "linear_num_key_heads": 4,
    "linear_num_value_heads": 8,
    "linear_key_head_dim": 32,
    "linear_value_head_dim": 32,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 128,
    "shared_expert_intermediate_size": 128,
    "max_position_embeddings": 32768,
    "vision_depth": 2,
    "vision_hidden_size": 128,
    "vision_intermediate_size": 256,
    "vision_num_heads": 4,
    "vision_num_position_embeddings": 1024,  # a 32x32 learned grid, interpolated like the real 48x48 one
    # amplitude of the 2-D Fourier code the learned grid starts from (0: plain random init, as transformers draws it).
    # With the random draw (std 0.02, norm ~0.2 against patch features of norm ~5) a screenshot token's column could
    # not be read back linearly from the language model's input (mean error ~230 on the 0..1000 grid, chance ~250),
    # so no answer could copy it into click digits; with the code at 2.0 the error is ~25 (half a token).
    "vision_position_code": 2.0,
    # 0: one digit per token, as Qwen's tokenizer does (a click's x is 3-4 tokens). N > 0: every number 0..N is one
    # token (the way PaliGemma's <loc> or Kosmos-2's location tokens make a coordinate one choice), so a click on
    # the 0..1000 grid is two tokens, x then y, and no digit has to agree with the digits before it.
    "number_tokens": 0,
    # with number_tokens: amplitude of the 1-D Fourier code of n/N added to number n's input embedding and output
    # row (16 frequencies, 33 dimensions), so near numbers start with near rows: an answer that carries roughly the
    # right position scores the numbers around it, not a random one. 0: the plain random draw.
    "number_code": 0.3,
    "max_pixels": 2560 * 32 * 32,  # preprocessor budget written to preprocessor_config.json
    "min_pixels": 64 * 32 * 32,
}


def check_sizes(size_overrides: dict[str, Any]) -> dict[str, Any]:
    """DEFAULT_SIZES with `size_overrides`, checked before anything is built (a bad combination would otherwise
    surface as a shape error in the first forward pass). Raises ValueError saying what to change."""
    unknown = set(size_overrides) - set(DEFAULT_SIZES)
    if unknown:
        raise ValueError(f"unknown tiny checkpoint size option(s) {sorted(unknown)}; known: {sorted(DEFAULT_SIZES)}")
    sizes = {**DEFAULT_SIZES, **size_overrides}
    if int(sizes["number_tokens"]) < 0:
        raise ValueError(f"number_tokens must be 0 (one digit per token) or the largest number to spell as one token, "
                         f"e.g. 1000; got {sizes['number_tokens']}")
    positive = [k for k, v in sizes.items() if k not in ("number_tokens", "number_code", "vision_position_code")
                and not (isinstance(v, (int, float)) and v > 0)]
    if positive:
        raise ValueError(f"size option(s) {positive} must be positive numbers")
    layers, interval = int(sizes["num_hidden_layers"]), int(sizes["full_attention_interval"])
    if interval < 2 or layers < interval:
        raise ValueError(f"{layers} layers with full_attention_interval {interval} is not hybrid; "
                         "use more layers than the interval (e.g. 8 layers, interval 4)")
    width, heads = int(sizes["vision_hidden_size"]), int(sizes["vision_num_heads"])
    if width % heads or (width // heads) % 2:
        raise ValueError(f"vision_hidden_size {width} must split into vision_num_heads {heads} heads of an even "
                         f"width (e.g. {heads * 32})")
    if int(sizes["num_attention_heads"]) % int(sizes["num_key_value_heads"]):
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    if int(sizes["linear_num_value_heads"]) % int(sizes["linear_num_key_heads"]):
        raise ValueError("linear_num_value_heads must be a multiple of linear_num_key_heads")
    if int(sizes["num_experts_per_tok"]) > int(sizes["num_experts"]):
        raise ValueError(f"num_experts_per_tok {sizes['num_experts_per_tok']} exceeds num_experts "
                         f"{sizes['num_experts']}")
    return sizes


def build_tiny_checkpoint(out_dir: str | Path, corpus: Iterable[str], *, seed: int = 0, prompt_profile: str | None = None,
                          **size_overrides: Any) -> Path:
    """Write a complete tiny `qwen3_5_moe` checkpoint directory and return its path.

    `corpus` is the text the tokenizer is trained on (tool schemas, rendered actions, instructions...);
    the chat template's own fixed text is added to it. `seed` fixes the weight draw: the same corpus, seed
    and sizes give byte-identical files.
    `prompt_profile` ("compact"): written to `visagent.json` so the agent prompts the model that way.
    `size_overrides` are keys of DEFAULT_SIZES. Raises ValueError on an unknown size key or empty corpus.
    """
    sizes = check_sizes(size_overrides)
    texts = [t for t in corpus if t]
    if not texts:
        raise ValueError("the tokenizer corpus is empty; pass the text the agent produces and reads")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    numbers = int(sizes["number_tokens"])
    tokenizer = train_tokenizer([*texts, *_template_texts()], vocab_size=int(sizes["vocab_size"]), numbers=numbers)
    tokenizer.save(str(out / "tokenizer.json"))
    ids = {tok: tokenizer.token_to_id(tok) for tok in (*SPECIAL_TOKENS, *TEXT_TOKENS)}
    vocab = _round_up(tokenizer.get_vocab_size(), 64)
    number_ids = [tokenizer.token_to_id(str(n)) for n in range(numbers + 1)] if numbers else []

    _write_model(out, sizes, ids, vocab, seed, number_ids)
    _write_json(out / "tokenizer_config.json", _tokenizer_config())
    (out / "chat_template.jinja").write_text(TEMPLATE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    _write_json(out / "preprocessor_config.json", _preprocessor_config(sizes))
    _write_json(out / "processor_config.json", {"processor_class": "Qwen3VLProcessor"})
    _write_json(
        out / "generation_config.json",
        {
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
            "pad_token_id": ids["<|endoftext|>"],
            "do_sample": True,
            "temperature": 1.0,
            "top_k": 20,
            "top_p": 0.95,
        },
    )
    if prompt_profile is not None:
        _write_json(out / "visagent.json", {"prompt_profile": prompt_profile})
    return out


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, numbers: int = 0):
    """Train a byte-level BPE `tokenizers.Tokenizer` with Qwen's pre-tokenizer, normaliser and tokens.

    `numbers` > 0: 0..numbers are added tokens as well (like `<tool_call>`), so each is one token. Qwen's
    pre-tokenizer splits digits one by one, and transformers' Qwen3.5 tokenizer class rebuilds that pre-tokenizer
    whatever tokenizer.json says; added tokens are matched before it (leftmost, longest: "2026" is "202", "6")."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(
        models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False)
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_without_control_tokens(texts), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TOKENS])
    tok.add_tokens([AddedToken(str(n), special=False, normalized=False) for n in range(numbers + 1) if numbers])
    return tok


def _without_control_tokens(texts: Iterable[str]) -> Iterator[str]:
    """Corpus text with the added tokens removed: they get ids of their own, BPE merges should not learn them."""
    for text in texts:
        for token in (*SPECIAL_TOKENS, *TEXT_TOKENS):
            text = text.replace(token, " ")
        yield text


def _template_texts() -> list[str]:
    """The fixed text the chat template wraps around every prompt (tool instructions and turn markers)."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    template = _compile_jinja_template(TEMPLATE_PATH.read_text(encoding="utf-8"))
    tool = {"type": "function", "function": {"name": "example", "parameters": {"type": "object", "properties": {}}}}
    conv = [
        {"role": "system", "content": "You are a GUI agent."},
        {"role": "user", "content": "Open the settings."},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "example", "arguments": {"a": 1}}}]},
        {"role": "tool", "content": "ok"},
    ]
    return [
        template.render(messages=conv, tools=[tool], add_generation_prompt=True, enable_thinking=thinking)
        for thinking in (True, False)
    ]


def _write_model(out: Path, sizes: dict[str, Any], ids: dict[str, int], vocab: int, seed: int,
                 number_ids: list[int]) -> None:
    import torch
    from transformers import Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration

    layers = int(sizes["num_hidden_layers"])
    interval = int(sizes["full_attention_interval"])
    layer_types = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    head_dim = int(sizes["head_dim"])
    rotary = max(2, head_dim // 4)  # Qwen3.5 rotates a quarter of each head (partial_rotary_factor 0.25)
    base, extra = divmod(rotary // 2, 3)
    section = [base + (1 if i < extra else 0) for i in range(3)]  # t, h, w rotary pairs (real: 11, 11, 10)
    text_config = {
        "model_type": "qwen3_5_moe_text",
        "vocab_size": vocab,
        "hidden_size": sizes["hidden_size"],
        "num_hidden_layers": layers,
        "layer_types": layer_types,
        "num_attention_heads": sizes["num_attention_heads"],
        "num_key_value_heads": sizes["num_key_value_heads"],
        "head_dim": head_dim,
        "linear_conv_kernel_dim": 4,
        "linear_num_key_heads": sizes["linear_num_key_heads"],
        "linear_num_value_heads": sizes["linear_num_value_heads"],
        "linear_key_head_dim": sizes["linear_key_head_dim"],
        "linear_value_head_dim": sizes["linear_value_head_dim"],
        "num_experts": sizes["num_experts"],
        "num_experts_per_tok": sizes["num_experts_per_tok"],
        "moe_intermediate_size": sizes["moe_intermediate_size"],
        "shared_expert_intermediate_size": sizes["shared_expert_intermediate_size"],
        "max_position_embeddings": sizes["max_position_embeddings"],
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000000,
            "partial_rotary_factor": 0.25,
            "mrope_interleaved": True,
            "mrope_section": section,
        },
    }
    vision_config = {
        "model_type": "qwen3_5_moe_vision",
        "depth": sizes["vision_depth"],
        "hidden_size": sizes["vision_hidden_size"],
        "intermediate_size": sizes["vision_intermediate_size"],
        "num_heads": sizes["vision_num_heads"],
        "in_channels": 3,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": sizes["hidden_size"],
        "num_position_embeddings": sizes["vision_num_position_embeddings"],
        "hidden_act": "gelu_pytorch_tanh",
    }
    config = Qwen3_5MoeConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen3_5MoeForConditionalGeneration"]
    torch.manual_seed(seed)
    model = Qwen3_5MoeForConditionalGeneration(config)
    if sizes["vision_position_code"]:
        with torch.no_grad():
            grid = model.model.visual.pos_embed.weight
            grid.copy_(position_code(grid, float(sizes["vision_position_code"])))
    if number_ids and sizes["number_code"]:
        with torch.no_grad():
            code = number_code(len(number_ids), float(sizes["number_code"]))
            index = torch.tensor(number_ids)
            for table in (model.get_input_embeddings().weight, model.lm_head.weight):
                table[index, :code.shape[1]] += code.to(table.dtype)
    model = model.to(torch.bfloat16)  # real releases ship bf16
    model.save_pretrained(str(out))
    (out / "generation_config.json").unlink(missing_ok=True)  # written below with Qwen's eos pair


def position_code(grid: torch.Tensor, amplitude: float, *, frequencies: int = 8) -> torch.Tensor:
    """The vision tower's learned position grid (side*side rows, row-major as transformers interpolates it) with
    its first dimensions replaced by a 2-D Fourier code: for the column u and the row v (0..1 across the grid),
    [2u-1, sin(pi k u), cos(pi k u) for k = 1..frequencies], then the same for v, times `amplitude`; the other
    dimensions keep their random draw. Training goes on learning the whole grid (the ViT sin-cos start)."""
    import torch

    side = math.isqrt(grid.shape[0])
    if side * side != grid.shape[0]:
        raise ValueError(f"position grid of {grid.shape[0]} rows is not square")
    code = _fourier(torch.arange(side, dtype=torch.float32) / max(side - 1, 1), frequencies)  # (side, d)
    d = code.shape[1]
    if 2 * d > grid.shape[1]:
        raise ValueError(f"a {frequencies}-frequency position code needs {2 * d} dimensions; the grid has {grid.shape[1]}")
    out = grid.detach().float().clone().view(side, side, -1)
    out[:, :, :d] = amplitude * code[None, :, :]  # column code, same on every row
    out[:, :, d:2 * d] = amplitude * code[:, None, :]  # row code, same on every column
    return out.view(side * side, -1).to(grid.dtype)


def number_code(count: int, amplitude: float, *, frequencies: int = 16) -> torch.Tensor:
    """(count, 2 * frequencies + 1): for n = 0..count-1 and u = n / (count - 1), [2u-1, sin(pi k u), cos(pi k u) for
    k = 1..frequencies] times `amplitude` — the code the number tokens' embeddings and output rows start from."""
    import torch

    return amplitude * _fourier(torch.arange(count, dtype=torch.float32) / max(count - 1, 1), frequencies)


def _fourier(u: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(len(u), 2 * frequencies + 1): [2u-1, sin(pi k u), cos(pi k u) for k = 1..frequencies] of u in 0..1."""
    import torch

    parts = [2 * u - 1] + [f(math.pi * k * u) for k in range(1, frequencies + 1) for f in (torch.sin, torch.cos)]
    return torch.stack(parts, -1)


def _tokenizer_config() -> dict[str, Any]:
    return {
        "tokenizer_class": "Qwen2Tokenizer",
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "model_max_length": DEFAULT_SIZES["max_position_embeddings"],
    }


def _preprocessor_config(sizes: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": {"longest_edge": int(sizes["max_pixels"]), "shortest_edge": int(sizes["min_pixels"])},
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor",
        "image_processor_type": "Qwen2VLImageProcessorFast",
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
