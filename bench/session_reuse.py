"""Per-step prompt latency of an agent conversation: engine sessions against a full re-prefill.

Each step appends the model's answer and a tool response with a new screenshot, as the agent loop does,
and the whole conversation is sent again. Per step it times the work up to the first token's logits,
as LocalEngine.generate does it:

- full: `prepare` (chat template, every screenshot → patches, M-RoPE positions) + one forward over the
  whole prompt (what an engine without sessions does every step);
- session: `prepare(pixels=False)` (token layout from image sizes) + `engine.session.session_prefill`
  (reuse the cached prefix, preprocess and run only the new tokens).

Decoding is left out: it costs the same per token on both paths.

Two models of the `qwen3_5_moe` architecture: the shipped tiny checkpoint and a random-weight
larger configuration (`large`: the tiny layout of 4 layers, hidden 512, 32 experts) saved to a temporary checkpoint and
loaded through the same LocalEngine path. fp32 on CPU, one intra-op thread (on a shared 2-core machine
threads only add hand-off stalls). The logits of both paths are compared at every measured step.

    .venv/bin/python bench/session_reuse.py [--steps 30] [--screen 640x400] [--models tiny,large]
        [--full-every 1]

Prints a table per model, then one JSON line: {"bench": "session_reuse", "models": {name: {"ratio_step20",
"prefill_ratio_step20", "cache_mb_per_step", "steps": [...]}}}. Ratios are full / session latency
(prepare + prefill); cache MB is the session's KV + linear states + snapshots after each step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import load_engine, tiny_checkpoint_path  # noqa: E402
from engine.local import _collect_images  # noqa: E402
from engine.hybrid_cache import cache_bytes  # noqa: E402
from engine.session import SessionStore, session_prefill  # noqa: E402

LARGE_TEXT = {
    "hidden_size": 512,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "linear_num_key_heads": 8,
    "linear_num_value_heads": 16,
    "linear_key_head_dim": 64,
    "linear_value_head_dim": 64,
    "num_experts": 32,
    "num_experts_per_tok": 4,
    "moe_intermediate_size": 256,
    "shared_expert_intermediate_size": 512,
}
LARGE_VISION = {"hidden_size": 256, "intermediate_size": 1024, "num_heads": 4, "depth": 4, "out_hidden_size": 512}


def build_large_checkpoint(directory: Path) -> Path:
    """The tiny checkpoint's tokenizer/template/preprocessor with a larger random qwen3_5_moe model.

    The tiny checkpoint's weights and pointing head (`pointer_head.safetensors`, sized to its hidden width) stay
    behind: the larger model has neither, so it prompts and prefills exactly as a checkpoint without a head does.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    tiny = tiny_checkpoint_path()
    for item in tiny.iterdir():
        if item.is_file() and item.name not in ("model.safetensors", "config.json", "pointer_head.safetensors"):
            shutil.copy(item, directory / item.name)
    config = AutoConfig.from_pretrained(str(tiny))
    for key, value in LARGE_TEXT.items():
        setattr(config.text_config, key, value)
    for key, value in LARGE_VISION.items():
        setattr(config.vision_config, key, value)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.save_pretrained(str(directory))
    return directory


def screenshot(step: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(step)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def conversation(steps: int, size: tuple[int, int]) -> list[list[dict]]:
    """messages sent at step 1..steps: a task with a screenshot, then answer + tool response + screenshot."""
    messages: list[dict] = [
        {"role": "system", "content": "You operate a computer through the computer_use tool."},
        {"role": "user", "content": [{"type": "text", "text": "Turn Wi-Fi off."}, {"type": "image", "image": screenshot(0, size)}]},
    ]
    out = [messages]
    for step in range(1, steps):
        answer = f'<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n[{100 + step}, {200 + step}]\n</parameter>\n</function>\n</tool_call>'
        messages = messages + [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": [{"type": "text", "text": f"<tool_response>clicked ({step})</tool_response>"}, {"type": "image", "image": screenshot(step, size)}]},
        ]
        out.append(messages)
    return out


def run_model(name: str, engine, steps: int, size: tuple[int, int], full_every: int) -> dict:
    store = SessionStore()
    rows = []
    print(f"\n== {name}: {sum(p.numel() for p in engine.model.parameters()) / 1e6:.1f}M parameters, screen {size[0]}x{size[1]}")
    print(
        f"{'step':>4} {'tokens':>7} {'new':>5} {'full s':>8} {'(prepare':>9} {'prefill)':>9} {'session s':>9}"
        f" {'(prepare':>9} {'prefill)':>9} {'ratio':>6} {'max|dlogit|':>11} {'cache MB':>9}"
    )
    for step, messages in enumerate(conversation(steps, size), start=1):
        t0 = time.perf_counter()
        lazy = engine.prepare(messages, pixels=False)
        t1 = time.perf_counter()
        result = session_prefill(engine, store, "bench", lazy, _collect_images(messages))
        t2 = time.perf_counter()
        store.commit("bench", result.cache, [], lazy.rope_delta)
        row = {
            "step": step,
            "prompt_tokens": lazy.length,
            "prefilled_tokens": result.prefilled_tokens,
            "session_prepare_s": round(t1 - t0, 4),
            "session_prefill_s": round(t2 - t1, 4),
            "session_s": round(t2 - t0, 4),
            "cache_bytes": cache_bytes(result.cache),
            "session_bytes": store.memory()["bytes"],
        }
        if step == 1 or step % full_every == 0 or step == 20:
            t0 = time.perf_counter()
            prompt = engine.prepare(messages)
            t1 = time.perf_counter()
            logits, _ = engine.prefill(prompt)
            t2 = time.perf_counter()
            row.update(full_prepare_s=round(t1 - t0, 4), full_prefill_s=round(t2 - t1, 4), full_s=round(t2 - t0, 4))
            row["max_abs_logit_diff"] = float((logits - result.logits).abs().max())
            row["ratio"] = round(row["full_s"] / row["session_s"], 2)
            row["prefill_ratio"] = round(row["full_prefill_s"] / row["session_prefill_s"], 2)
        rows.append(row)
        if "full_s" in row:
            full = f"{row['full_s']:8.3f} {row['full_prepare_s']:9.3f} {row['full_prefill_s']:9.3f}"
            tail = f"{row['ratio']:6.1f} {row['max_abs_logit_diff']:11.1e}"
        else:
            full, tail = f"{'-':>8} {'-':>9} {'-':>9}", f"{'-':>6} {'-':>11}"
        print(
            f"{step:>4} {lazy.length:>7} {result.prefilled_tokens:>5} {full} {row['session_s']:9.3f}"
            f" {row['session_prepare_s']:9.3f} {row['session_prefill_s']:9.3f} {tail} {row['session_bytes'] / 2**20:9.2f}",
            flush=True,
        )
    at20 = next((r for r in rows if r["step"] == 20 and "ratio" in r), None)
    return {
        "parameters": sum(p.numel() for p in engine.model.parameters()),
        "ratio_step20": at20["ratio"] if at20 else None,
        "prefill_ratio_step20": at20["prefill_ratio"] if at20 else None,
        "max_abs_logit_diff": max(r.get("max_abs_logit_diff", 0.0) for r in rows),
        "median_session_s": statistics.median(r["session_s"] for r in rows),
        "cache_mb_per_step": [round(r["session_bytes"] / 2**20, 2) for r in rows],
        "steps": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--screen", default="640x400", help="screenshot WxH (640x400 → 240 visual tokens a step)")
    parser.add_argument("--models", default="tiny,large")
    parser.add_argument(
        "--full-every",
        default="tiny:1,large:5",
        help="time the full re-prefill every N steps per model (always at steps 1 and 20); 'N' for all models",
    )
    args = parser.parse_args()
    size = tuple(int(v) for v in args.screen.lower().split("x"))
    torch.set_num_threads(1)
    every = {}
    for part in args.full_every.split(","):
        name, _, n = part.rpartition(":")
        every[name or "*"] = int(n)
    results = {}
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            spec = "tiny" if name == "tiny" else str(build_large_checkpoint(Path(tmp)))
            engine = load_engine(spec, device="cpu", dtype="fp32")
            full_every = every.get(name, every.get("*", 1))
            results[name] = run_model(name, engine, args.steps, size, full_every)  # type: ignore[arg-type]
            engine.close()
    print(json.dumps({"bench": "session_reuse", "screen": args.screen, "threads": 1, "models": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
