"""Speed of in-process generation for a screenshot prompt: load, preprocess, prefill, decode tokens/s.

    .venv/bin/python bench/engine_generate.py [--spec tiny] [--width 1280 --height 800] [--tokens 64] [--threads N]
                                              [--keep-denormals]

`--keep-denormals`: do not flush denormal floats to zero on CPU (engine/devices.flush_denormals), to see what
denormal arithmetic costs with trained weights.

Prints a table (one row per repeat) and a final JSON line with the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
from PIL import Image, ImageDraw

from engine import load_engine
from engine.api import GenerationConfig


def screenshot(width: int, height: int) -> Image.Image:
    """A synthetic desktop: title bar, sidebar, text lines and buttons (sharp edges like a real UI)."""
    img = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 32), fill=(40, 44, 52))
    draw.rectangle((0, 32, width // 5, height), fill=(225, 228, 232))
    for i in range(0, height - 80, 28):
        draw.text((width // 5 + 20, 50 + i), f"Line {i // 28}: settings, files and a Save button", fill=(20, 20, 20))
    for j in range(4):
        draw.rectangle((width - 420 + j * 100, height - 60, width - 340 + j * 100, height - 30), fill=(30, 100, 220))
    return img


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--tokens", type=int, default=64, help="max_new_tokens (greedy)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads while generating (default: LocalEngine's choice, 1 for the tiny model)")
    parser.add_argument("--keep-denormals", action="store_true", help="leave denormal floats on (the engine flushes them)")
    args = parser.parse_args()
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
        {"role": "user", "content": [{"type": "image", "image": screenshot(args.width, args.height)},
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
                   threads=getattr(engine, "threads", None) or torch.get_num_threads(), screenshot=f"{args.width}x{args.height}", load_s=load_s,
                   kernels=getattr(engine, "kernels", None))
    engine.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
