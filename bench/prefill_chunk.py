"""Prefill time against chunk size: what chunking (engine/prefill.py) costs for Stop to be honoured sooner.

A chunked prefill runs the prompt in forwards of about N tokens on top of the cache of the previous ones;
Stop and timeout_s are checked between them, so the wait after Stop is at most one chunk's time. Smaller
chunks wait less but pay per-forward overhead and re-read the growing KV cache more often. This times one
prefill of an agent prompt with several screenshots (system + task turn, then answer / tool response turns,
one screenshot each) on the shipped tiny qwen3_5_moe checkpoint for each chunk size, rounds interleaved so
machine load drifts hit every size alike, and reports the median, the overhead over one forward and the
longest single chunk (the worst wait after Stop). The logits of every chunked run are compared to the
one-forward ones.

    .venv/bin/python bench/prefill_chunk.py [--screens 4] [--screen 1280x800] [--chunks 128,256,512,1024]
        [--rounds 3] [--device cpu] [--threads 1]

1280x800 is 1000 visual tokens on Qwen3.5 (32x32 pixels a token). Prints a table, then one JSON line:
{"bench": "prefill_chunk", "prompt_tokens", "visual_tokens", "rows": [{"chunk", "median_s", "overhead",
"max_chunk_s", "chunks", "max_abs_diff"}], ...}; chunk 0 is one forward.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import load_engine  # noqa: E402
from engine.prefill import PrefillControl  # noqa: E402


def screenshot(seed: int, size: tuple[int, int]) -> Image.Image:
    """A screen-like image: flat panels with some noise (random pixels everywhere would be unrealistic)."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.full((h, w, 3), 235, dtype=np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 20))
        img[y : y + int(rng.integers(20, h // 3)), x : x + int(rng.integers(40, w // 3))] = rng.integers(0, 256, 3)
    img[rng.random((h, w)) < 0.02] = 0
    return Image.fromarray(img)


def agent_prompt(screens: int, size: tuple[int, int]) -> list[dict]:
    messages: list[dict] = [
        {"role": "system", "content": "You operate a computer through the computer_use tool."},
        {"role": "user", "content": [{"type": "text", "text": "Turn Wi-Fi off."}, {"type": "image", "image": screenshot(0, size)}]},
    ]
    for step in range(1, screens):
        messages += [
            {"role": "assistant", "content": f"I click the control at step {step}."},
            {"role": "user", "content": [{"type": "text", "text": f"<tool_response>step {step} done</tool_response>"},
                                         {"type": "image", "image": screenshot(step, size)}]},
        ]
    return messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=4)
    parser.add_argument("--screen", default="1280x800", help="WxH of each screenshot")
    parser.add_argument("--chunks", default="128,256,512,1024", help="chunk sizes in tokens (one forward is always added)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    args = parser.parse_args()
    w, h = (int(v) for v in args.screen.lower().split("x"))
    chunks = [0] + [int(c) for c in args.chunks.split(",")]
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    engine = load_engine("tiny", device=args.device, dtype="fp32")
    prompt = engine.prepare(agent_prompt(args.screens, (w, h)))
    sync = torch.cuda.synchronize if engine.model.device.type == "cuda" else (lambda: None)
    engine.prefill(prompt, control=PrefillControl(chunk_tokens=256))  # warm-up (allocator, kernels)
    reference, _ = engine.prefill(prompt)
    times: dict[int, list[float]] = {c: [] for c in chunks}
    longest: dict[int, float] = {c: 0.0 for c in chunks}
    counts: dict[int, int] = {}
    diffs: dict[int, float] = {}
    for _ in range(args.rounds):
        for chunk in chunks:
            marks: list[float] = []
            control = PrefillControl(chunk_tokens=chunk, on_chunk=lambda s, e: (sync(), marks.append(time.perf_counter())))
            sync()
            t0 = time.perf_counter()
            logits, _ = engine.prefill(prompt, control=control)
            sync()
            times[chunk].append(time.perf_counter() - t0)
            steps = np.diff([t0, *marks])
            longest[chunk] = max(longest[chunk], float(steps.max()))
            counts[chunk] = len(marks)
            diffs[chunk] = max(diffs.get(chunk, 0.0), float((logits - reference).abs().max()))
    base = statistics.median(times[0])
    rows = []
    print(f"tiny qwen3_5_moe, {args.device}, {prompt.length} prompt tokens ({prompt.visual_tokens} visual, "
          f"{args.screens} x {w}x{h}), median of {args.rounds}")
    print(f"{'chunk':>8} {'chunks':>7} {'median s':>9} {'overhead':>9} {'max chunk s':>12} {'max |dlogit|':>13}")
    for chunk in chunks:
        med = statistics.median(times[chunk])
        row = {"chunk": chunk, "chunks": counts[chunk], "median_s": round(med, 3), "overhead": round(med / base - 1, 3),
               "max_chunk_s": round(longest[chunk], 3), "max_abs_diff": diffs[chunk]}
        rows.append(row)
        label = "one-shot" if chunk == 0 else str(chunk)
        print(f"{label:>8} {counts[chunk]:>7} {med:>9.2f} {row['overhead']:>+9.1%} {longest[chunk]:>12.2f} {diffs[chunk]:>13.2e}")
    print(json.dumps({"bench": "prefill_chunk", "device": args.device, "threads": args.threads,
                      "prompt_tokens": prompt.length, "visual_tokens": prompt.visual_tokens, "screens": args.screens,
                      "screen": args.screen, "rounds": args.rounds, "rows": rows}))
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
