"""Speed of in-process generation for a screenshot prompt: load, preprocess, prefill, decode tokens/s.

    .venv/bin/python bench/engine_generate.py [--spec tiny] [--width 1280 --height 800] [--tokens 64] [--threads N]
                                              [--keep-denormals] [--device cuda] [--kernels auto|torch]
                                              [--scaled-35b LAYERS --build-dir DIR [--shape KEY=VALUE ...]]

`--keep-denormals`: do not flush denormal floats to zero on CPU (engine/devices.flush_denormals), to see what
denormal arithmetic costs with trained weights.

`--kernels torch`: hide flash-linear-attention and causal-conv1d from transformers (they are picked at import
time), so the same process measures the PyTorch fallback of the Gated DeltaNet layers; `auto` uses whatever is
installed (`pip install visagent[fast]`). The JSON line names the implementation transformers actually bound.

`--scaled-35b LAYERS`: instead of `--spec`, build (once, into `--build-dir`) a random-weight checkpoint of
Qwen3.5-35B-A3B's shape — transformers' `Qwen3_5MoeConfig` defaults: hidden 2048, 256 experts top-8 of 512, a
shared expert, 16/32 linear-attention heads of 128, 16 query / 2 KV heads of 256, vocabulary 248,320, a 27-block
vision tower of 1152 — with LAYERS layers in the 3:1 pattern (Gated DeltaNet x3, then full attention), weights drawn
on the GPU in bf16, the tiny checkpoint's tokenizer, chat template and preprocessor. `--shape KEY=VALUE` overrides a
text-config key (e.g. num_experts=8 to try the builder on a CPU). It is loaded through the same `load_engine` path.

Prints a table (one row per repeat) and a final JSON line with the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

FAST_KERNEL_PACKAGES = ("fla", "causal_conv1d")
TINY_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
              "special_tokens_map.json", "generation_config.json", "processor_config.json")


def screenshot(width: int, height: int, variant: int = 0) -> Image.Image:
    """A synthetic desktop: title bar, sidebar, text lines and buttons (sharp edges like a real UI)."""
    img = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 32), fill=(40, 44, 52))
    draw.rectangle((0, 32, width // 5, height), fill=(225, 228, 232))
    for i in range(0, height - 80, 28):
        draw.text((width // 5 + 20, 50 + i), f"Line {i // 28 + variant}: settings, files and a Save button", fill=(20, 20, 20))
    for j in range(4):
        draw.rectangle((width - 420 + j * 100, height - 60, width - 340 + j * 100, height - 30), fill=(30, 100, 220))
    return img


def hide_fast_kernels() -> None:
    """Make the fused-kernel packages unimportable for this process (before transformers' Qwen3.5 modules load)."""
    for name in FAST_KERNEL_PACKAGES:
        sys.modules[name] = None  # type: ignore[assignment]


class FallbackLog(logging.Handler):
    """Collects the functions transformers says fall back to PyTorch code ("`NAME` is falling back to its reference
    PyTorch implementation ..."): transformers' own word on which kernels ran, logged at the first call."""

    ENTRY_POINTS = {"chunk_gated_delta_rule": "fla", "fused_recurrent_gated_delta_rule": "fla",
                    "causal_conv1d_fn": "causal_conv1d", "causal_conv1d_update": "causal_conv1d"}

    def __init__(self) -> None:
        super().__init__()
        self.fallbacks: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        match = re.match(r"`(\w+)` is falling back to its reference PyTorch", record.getMessage())
        if match:
            self.fallbacks.add(match.group(1))

    def bound(self) -> dict[str, str]:
        return {name: "torch" if name in self.fallbacks else package for name, package in self.ENTRY_POINTS.items()}


def build_scaled_35b(out: Path, layers: int, shape: dict[str, str], device: str) -> Path:
    """A random-weight checkpoint of the 35B-A3B shape with `layers` layers (see the module docstring)."""
    import torch
    from transformers import Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration

    from engine import tiny_checkpoint_path

    TINY_DIR = tiny_checkpoint_path()
    if (out / "config.json").is_file():
        return out
    tiny = json.loads((TINY_DIR / "config.json").read_text())
    config = Qwen3_5MoeConfig()  # transformers' defaults are Qwen3.5-35B-A3B's sizes
    text = config.text_config
    text.num_hidden_layers = layers
    text.layer_types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(layers)]
    for key, value in shape.items():
        setattr(text, key, type(getattr(text, key))(value) if getattr(text, key, None) is not None else value)
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(config, key, tiny[key])
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(text, key, tiny["text_config"].get(key))
    config.vision_config.out_hidden_size = text.hidden_size
    dtype = torch.bfloat16
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3_5MoeForConditionalGeneration._from_config(config, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TINY_FILES:
        if (TINY_DIR / name).is_file():
            shutil.copy(TINY_DIR / name, out / name)
    # the real checkpoints' pixel budget (Qwen3-VL / Qwen3.5: up to 16,777,216 pixels), so a 1920x1080 screenshot is
    # its 2,040 visual tokens here too, not the tiny model's training budget
    pre = json.loads((out / "preprocessor_config.json").read_text())
    pre["size"] = {"longest_edge": 16777216, "shortest_edge": 65536}
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    print(f"built {out}: {layers} layers ({text.layer_types.count('linear_attention')} Gated DeltaNet), "
          f"{text.num_experts} experts top-{text.num_experts_per_tok}, {params / 1e9:.2f}B parameters")
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--tokens", type=int, default=64, help="max_new_tokens (greedy)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=1,
                        help="screenshots in the prompt (the agent sends up to history_images, default 4)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads while generating (default: LocalEngine's choice, 1 for the tiny model)")
    parser.add_argument("--keep-denormals", action="store_true", help="leave denormal floats on (the engine flushes them)")
    parser.add_argument("--kernels", choices=("auto", "torch"), default="auto",
                        help="torch: hide the fused Gated DeltaNet / conv kernels (default auto: use them if installed)")
    parser.add_argument("--scaled-35b", type=int, default=0, metavar="LAYERS",
                        help="bench a random checkpoint of the 35B-A3B shape with LAYERS layers instead of --spec")
    parser.add_argument("--build-dir", default=None, help="where --scaled-35b builds (and reuses) its checkpoint")
    parser.add_argument("--shape", action="append", default=[], metavar="KEY=VALUE",
                        help="override a text-config key of the --scaled-35b checkpoint (repeatable)")
    args = parser.parse_args()
    if args.kernels == "torch":
        hide_fast_kernels()
    fallback_log = FallbackLog()
    logging.getLogger("transformers").addHandler(fallback_log)
    import torch

    from engine import load_engine
    from engine.api import GenerationConfig

    if args.scaled_35b:
        if not args.build_dir:
            parser.error("--scaled-35b needs --build-dir")
        shape = dict(item.split("=", 1) for item in args.shape)
        device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
        device = "cpu" if device == "auto" else device
        args.spec = str(build_scaled_35b(Path(args.build_dir), args.scaled_35b, shape, device))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_denormals:
        import engine.local as engine_local

        engine_local.flush_denormals = lambda device: contextlib.nullcontext()

    t0 = time.perf_counter()
    engine = load_engine(args.spec, device=args.device)
    load_s = time.perf_counter() - t0
    if args.threads and hasattr(engine, "threads"):
        engine.threads = args.threads  # LocalEngine applies it around each generation
    messages = [
        {"role": "system", "content": "You are a GUI agent."},
        {"role": "user", "content": [*({"type": "image", "image": screenshot(args.width, args.height, i)}
                                       for i in range(args.images)),
                                     {"type": "text", "text": "Click the Save button."}]},
    ]
    config = GenerationConfig(max_new_tokens=args.tokens)
    engine.generate(messages, config=GenerationConfig(max_new_tokens=2))  # warm-up
    rows = []
    print(f"{'run':>3} {'prompt':>7} {'visual':>7} {'gen':>4} {'preproc s':>9} {'prefill s':>9} {'prefill tok/s':>13} "
          f"{'decode s':>8} {'decode tok/s':>12}")
    for i in range(args.repeats):
        r = engine.generate(messages, config=config)
        t = r.timings
        row = {
            "prompt_tokens": r.prompt_tokens, "visual_tokens": r.visual_tokens, "generated_tokens": r.generated_tokens,
            "preprocess_s": t["preprocess"], "prefill_s": t["prefill"], "decode_s": t["decode"],
            "prefill_tok_s": r.prompt_tokens / t["prefill"],
            "decode_tok_s": r.generated_tokens / t["decode"] if t["decode"] > 0 else 0.0,
        }
        rows.append(row)
        print(f"{i:>3} {r.prompt_tokens:>7} {r.visual_tokens:>7} {r.generated_tokens:>4} {t['preprocess']:>9.3f} "
              f"{t['prefill']:>9.3f} {row['prefill_tok_s']:>13.0f} {t['decode']:>8.3f} {row['decode_tok_s']:>12.1f}")
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    summary.update(spec=args.spec, denormals="kept" if args.keep_denormals else "flushed", device=str(engine._input_device) if hasattr(engine, "_input_device") else args.device,
                   threads=getattr(engine, "threads", None) or torch.get_num_threads(), screenshot=f"{args.width}x{args.height}", images=args.images, load_s=load_s,
                   kernels=getattr(engine, "kernels", None), kernels_asked=args.kernels,
                   kernels_bound=fallback_log.bound(),
                   scaled_35b_layers=args.scaled_35b or None,
                   gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                   torch=torch.__version__)
    engine.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
