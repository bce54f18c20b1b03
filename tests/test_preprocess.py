"""engine.preprocess against transformers' own Qwen2-VL image processor (the one Qwen3.5 checkpoints use).

Tolerance: values are compared in grey levels (one level = 1 / (255 * std) in normalised units). Both sides
resize with an antialiased bicubic on uint8 (PIL in transformers, torch here); the two round their separable
passes independently, so a pixel may differ by up to 2 levels. One exception is measured and kept as a
case: 15x3000 noise at patch 14 (width up x1.9, height down by 4 px), where PIL runs the passes in the
other order and cubic overshoot on pure noise amplifies the different rounding to ~21 levels on 0.1% of
values. Without a resize (sides already multiples of the factor) the output must equal transformers'
to float rounding (1e-6), which pins the normalisation and the patch order exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from engine.api import VisionSpec, smart_resize
from engine.preprocess import (
    QWEN3_VISION,
    QWEN25_VL_VISION,
    image_grids,
    preprocess_images,
)

SPECS = {"qwen3.5": QWEN3_VISION, "qwen2.5-vl": QWEN25_VL_VISION}


def reference(vision: VisionSpec) -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        patch_size=vision.patch_size,
        merge_size=vision.merge_size,
        temporal_patch_size=vision.temporal_patch_size,
        image_mean=list(vision.image_mean),
        image_std=list(vision.image_std),
        size={"shortest_edge": vision.min_pixels, "longest_edge": vision.max_pixels},
    )


def screenshot(width: int, height: int, seed: int = 0) -> Image.Image:
    """Flat panels with 1-px borders and text-like strokes over a gradient: what a screen looks like."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 200)], axis=-1).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 30))
        draw.rectangle((x0, y0, x0 + 60, y0 + 30), fill=(240, 240, 240), outline=(30, 30, 30))
        draw.text((x0 + 4, y0 + 8), "Save", fill=(0, 0, 0))
    return image


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def grey_levels(diff: torch.Tensor, vision: VisionSpec) -> torch.Tensor:
    return diff.abs() * 255.0 * min(vision.image_std)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("size", [(1920, 1080), (2560, 1440), (1280, 800), (1080, 2400)])
def test_screenshots_match_transformers(spec_name: str, size: tuple[int, int]) -> None:
    vision = SPECS[spec_name]
    image = screenshot(*size)
    theirs = reference(vision)(images=[image], return_tensors="pt")
    ours, grid = preprocess_images([image], vision)
    assert ours.dtype == torch.float32
    assert ours.shape == theirs["pixel_values"].shape
    assert grid.tolist() == theirs["image_grid_thw"].tolist()
    levels = grey_levels(ours - theirs["pixel_values"], vision)
    assert levels.max() <= 2.01
    assert levels.mean() <= 0.05


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("size", [(37, 23), (3, 3), (1, 1), (999, 777), (33, 65), (3000, 15)])
def test_tiny_and_odd_sizes_match_transformers(spec_name: str, size: tuple[int, int]) -> None:
    vision = SPECS[spec_name]
    image = noise(*size)
    theirs = reference(vision)(images=[image], return_tensors="pt")
    ours, grid = preprocess_images([image], vision)
    assert ours.shape == theirs["pixel_values"].shape
    assert grid.tolist() == theirs["image_grid_thw"].tolist()
    assert grey_levels(ours - theirs["pixel_values"], vision).max() <= 2.01


def test_extreme_aspect_with_mixed_resize_stays_within_measured_bound() -> None:
    vision = QWEN25_VL_VISION
    image = noise(15, 3000)
    theirs = reference(vision)(images=[image], return_tensors="pt")
    ours, grid = preprocess_images([image], vision)
    assert grid.tolist() == theirs["image_grid_thw"].tolist()
    levels = grey_levels(ours - theirs["pixel_values"], vision)
    assert levels.max() <= 24
    assert levels.mean() <= 0.5


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_no_resize_is_exact(spec_name: str) -> None:
    vision = SPECS[spec_name]
    side = vision.factor
    image = noise(side * 13, side * 7, seed=3)
    assert smart_resize(side * 13, side * 7, vision) == (side * 13, side * 7)
    theirs = reference(vision)(images=[image], return_tensors="pt")["pixel_values"]
    ours, _ = preprocess_images([image], vision)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)


def position_image(width: int, height: int) -> np.ndarray:
    """R = x mod 256, G = y mod 256, B = 16 * (x // 256) + (y // 256): every pixel names its position."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx % 256, yy % 256, 16 * (xx // 256) + (yy // 256)], axis=-1).astype(np.uint8)


def decode(value: torch.Tensor, channel: int, vision: VisionSpec) -> torch.Tensor:
    return torch.round((value * vision.image_std[channel] + vision.image_mean[channel]) * 255).to(torch.int64)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_patch_order_is_merge_window_major(spec_name: str) -> None:
    """Row i of pixel_values is patch (window row, window col, row in window, col in window), written
    independently here from the model's point of view: 2x2 neighbouring patches are merged into one token."""
    vision = SPECS[spec_name]
    p, m, t = vision.patch_size, vision.merge_size, vision.temporal_patch_size
    width, height = 12 * vision.factor, 9 * vision.factor  # no resize; wider than 256 px so B encodes x // 256
    pixels, grid = preprocess_images([position_image(width, height)], vision)
    assert grid.tolist() == [[1, height // p, width // p]]
    patches = pixels.view(-1, 3, t, p, p)
    assert torch.equal(patches[:, :, 0], patches[:, :, 1])  # the still frame is repeated over time
    red, green, blue = (decode(patches[:, c, 0], c, vision) for c in range(3))
    xs = red + 256 * (blue // 16)
    ys = green + 256 * (blue % 16)
    index = 0
    for window_row in range(height // p // m):
        for window_col in range(width // p // m):
            for row in range(m):
                for col in range(m):
                    top = (window_row * m + row) * p
                    left = (window_col * m + col) * p
                    expected_x = torch.arange(left, left + p).expand(p, p)
                    expected_y = torch.arange(top, top + p).unsqueeze(1).expand(p, p)
                    assert torch.equal(xs[index], expected_x), f"patch {index} x"
                    assert torch.equal(ys[index], expected_y), f"patch {index} y"
                    index += 1
    assert index == pixels.shape[0]


def test_several_images_concatenate_in_order() -> None:
    first, second = noise(256, 320, seed=4), noise(512, 160, seed=5)  # no resize: exact
    both, grid = preprocess_images([first, second])
    one, grid_one = preprocess_images([first])
    two, grid_two = preprocess_images([second])
    assert grid.tolist() == grid_one.tolist() + grid_two.tolist()
    assert torch.equal(both, torch.cat([one, two]))
    theirs = reference(QWEN3_VISION)(images=[first, second], return_tensors="pt")
    assert torch.allclose(both, theirs["pixel_values"], atol=1e-6, rtol=0)


def test_array_and_image_inputs_agree() -> None:
    rgb = np.asarray(noise(96, 64, seed=6))
    from_pil, _ = preprocess_images([Image.fromarray(rgb)])
    from_array, _ = preprocess_images([rgb])
    rgba = np.concatenate([rgb, np.full((64, 96, 1), 255, np.uint8)], axis=2)
    from_rgba, _ = preprocess_images([rgba])
    assert torch.equal(from_pil, from_array)
    assert torch.equal(from_pil, from_rgba)


def test_grey_and_transparent_images_match_transformers() -> None:
    grey = Image.fromarray(np.random.default_rng(7).integers(0, 256, (256, 320), dtype=np.uint8), mode="L")
    rgba = np.random.default_rng(8).integers(0, 256, (256, 320, 4), dtype=np.uint8)
    transparent = Image.fromarray(rgba, mode="RGBA")
    for image in (grey, transparent):
        theirs = reference(QWEN3_VISION)(images=[image], return_tensors="pt")["pixel_values"]
        ours, _ = preprocess_images([image])
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), image.mode


def test_pixel_budget_is_respected() -> None:
    small = VisionSpec(min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 100)
    _, grid = preprocess_images([noise(2560, 1440)], small)
    tokens = int(grid.prod()) // small.merge_size**2
    assert 4 <= tokens <= 100
    _, grid = preprocess_images([noise(8, 8)], small)
    assert int(grid.prod()) // small.merge_size**2 >= 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        ("shot.png", "is a str"),
        (np.zeros((1, 300, 3), np.uint8), "aspect ratio"),
    ],
)
def test_bad_images_raise_one_clear_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_images([bad])  # type: ignore[list-item]


def test_no_images_is_an_error() -> None:
    with pytest.raises(ValueError, match="no images"):
        preprocess_images([])


def test_a_kept_result_is_never_overwritten_by_a_later_call() -> None:
    """Large outputs reuse freed memory; one the caller still holds (or a view of it) must stay intact."""
    first = noise(1920, 1080, seed=9)
    kept, _ = preprocess_images([first])
    view = kept[100:200]
    snapshot = kept.clone()
    for seed in (10, 11):
        other, _ = preprocess_images([noise(1920, 1080, seed=seed)])
        assert other.data_ptr() != kept.data_ptr()
        del other
    del kept
    assert torch.equal(view, snapshot[100:200])
    again, _ = preprocess_images([first])
    assert torch.equal(again, snapshot)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_image_grids_match_preprocessing_without_pixel_work(spec_name: str) -> None:
    vision = SPECS[spec_name]
    images = [noise(37, 23), noise(1920, 1080), np.zeros((2400, 1080, 3), np.uint8), noise(15, 3000)]
    _, grid = preprocess_images(images, vision)
    assert torch.equal(image_grids(images, vision), grid)
    with pytest.raises(ValueError, match="aspect ratio"):
        image_grids([np.zeros((1, 300, 3), np.uint8)], vision)
