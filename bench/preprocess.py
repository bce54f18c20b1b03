"""Screenshot preprocessing: transformers' Qwen2-VL image processor against engine.preprocess.

Both get the same synthetic screenshot (PIL RGB: windows, text, a photo-like gradient) and the same
VisionSpec (Qwen3.5: patch 16, merge 2, mean/std 0.5, the default screen budget); runs are interleaved and
the best (min) and the median of `--rounds` are reported, with the largest difference of the outputs. The
headline speedup uses the best run of each (what the code costs when the shared CPU is not busy with
something else, as `timeit` recommends); the median speedup is printed beside it.

    .venv/bin/python bench/preprocess.py [--rounds 15]

Prints a table, then one JSON line: {"bench": "preprocess", "results": [...], "min_speedup": x}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from engine.preprocess import QWEN3_VISION, preprocess_images

SIZES = ((1920, 1080), (2560, 1440))
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def synthetic_screenshot(width: int, height: int, seed: int = 0) -> Image.Image:
    """A desktop-like RGB image: flat panels, 1-px borders, text lines and one smooth gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 180)], axis=-1)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype(FONT, 14)
    except OSError:
        font = ImageFont.load_default()
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 400)), int(rng.integers(0, height - 300))
        x1, y1 = x0 + int(rng.integers(200, 400)), y0 + int(rng.integers(120, 300))
        draw.rectangle((x0, y0, x1, y1), fill=(245, 245, 245), outline=(60, 60, 60))
        for line in range(y0 + 8, y1 - 16, 18):
            draw.text((x0 + 8, line), "File  Edit  View  Search  Terminal  Help 0123", fill=(20, 20, 20), font=font)
    return image


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per processor and size")
    args = parser.parse_args()

    vision = QWEN3_VISION
    reference = Qwen2VLImageProcessorPil(
        patch_size=vision.patch_size,
        merge_size=vision.merge_size,
        temporal_patch_size=vision.temporal_patch_size,
        image_mean=list(vision.image_mean),
        image_std=list(vision.image_std),
        size={"shortest_edge": vision.min_pixels, "longest_edge": vision.max_pixels},
    )
    results = []
    print(f"{'':>18} {'---- best of rounds ----':>25} {'-------- median --------':>27}")
    print(
        f"{'size':>10} {'tokens':>7} {'hf ms':>9} {'ours ms':>7} {'speedup':>7} {'hf ms':>10} {'ours ms':>8}"
        f" {'speedup':>7} {'max |diff|':>10}"
    )
    for width, height in SIZES:
        image = synthetic_screenshot(width, height)
        theirs = reference(images=[image], return_tensors="pt")
        ours, grid = preprocess_images([image], vision)
        assert ours.shape == theirs["pixel_values"].shape and grid.tolist() == theirs["image_grid_thw"].tolist()
        max_diff = float((ours - theirs["pixel_values"]).abs().max())
        t_ref: list[float] = []
        t_ours: list[float] = []
        for _ in range(args.rounds):  # interleaved so machine load hits both alike
            t_ref.append(_timed(lambda: reference(images=[image], return_tensors="pt")))
            t_ours.append(_timed(lambda: preprocess_images([image], vision)))
        tokens = int(grid.prod(dim=1).sum()) // vision.merge_size**2
        row = {
            "size": f"{width}x{height}",
            "visual_tokens": tokens,
            "transformers_ms": round(min(t_ref) * 1000, 2),
            "ours_ms": round(min(t_ours) * 1000, 2),
            "speedup": round(min(t_ref) / min(t_ours), 2),
            "transformers_median_ms": round(statistics.median(t_ref) * 1000, 2),
            "ours_median_ms": round(statistics.median(t_ours) * 1000, 2),
            "median_speedup": round(statistics.median(t_ref) / statistics.median(t_ours), 2),
            "max_abs_diff": max_diff,
        }
        results.append(row)
        print(
            f"{row['size']:>10} {tokens:>7} {row['transformers_ms']:>9.1f} {row['ours_ms']:>7.1f}"
            f" {row['speedup']:>6.1f}x {row['transformers_median_ms']:>10.1f} {row['ours_median_ms']:>8.1f}"
            f" {row['median_speedup']:>6.1f}x {max_diff:>10.4f}"
        )
    print(json.dumps({"bench": "preprocess", "results": results, "min_speedup": min(r["speedup"] for r in results)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
