"""Fast screenshot preprocessing for Qwen vision towers: images → (pixel_values, image_grid_thw).

Produces exactly the layout of transformers' Qwen2-VL image processor (`Qwen2VLImageProcessor[Pil]`, the
class Qwen3-VL and Qwen3.5 checkpoints use too): smart-resize to multiples of `patch_size * merge_size`
within the pixel budget, rescale to 0..1, normalise with the per-channel mean/std, then cut into
`patch_size` patches ordered merge-window by merge-window, each patch repeated `temporal_patch_size` times
and flattened as (channel, time, row, column).

The difference from transformers is speed (bench/preprocess.py: ~5x at 1080p): the resize runs on uint8
in torch's antialiased bicubic (built to match PIL's BICUBIC, which transformers uses; measured within 2
grey levels of it), the patch shuffle and the temporal repeat run on bytes, one OpenCV pass converts and
normalises into a recycled output buffer. With no resize the output equals transformers' to float
rounding. (OpenCV's cubic/area resize was tried first: up to 43 grey levels off PIL near edges.)
"""

from __future__ import annotations

import math
import mmap
import sys
import threading
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from engine.api import VisionSpec, smart_resize

#: Qwen3-VL / Qwen3.5: patch 16, merge 2 (one token per 32x32 px), mean/std 0.5; a screen-sized budget.
QWEN3_VISION = VisionSpec()

#: OpenAI CLIP normalisation, used by Qwen2-VL and Qwen2.5-VL.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: Qwen2.5-VL: patch 14, merge 2 (one token per 28x28 px), CLIP mean/std, the same token budget as Qwen3.5.
QWEN25_VL_VISION = VisionSpec(
    patch_size=14,
    merge_size=2,
    temporal_patch_size=2,
    min_pixels=64 * 28 * 28,
    max_pixels=2560 * 28 * 28,
    image_mean=CLIP_MEAN,
    image_std=CLIP_STD,
)


def preprocess_images(
    images: Sequence[Image.Image | np.ndarray],
    vision: VisionSpec = QWEN3_VISION,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize, normalise and patchify images the way the Qwen vision tower expects.

    `images`: PIL images (any mode; transparency is composited onto white like transformers does) or
    uint8 arrays, H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA). Sizes are in screen pixels.

    Returns `(pixel_values, image_grid_thw)`:
    - `pixel_values`: float32 `(sum of t*h*w over images, 3 * temporal_patch_size * patch_size**2)`,
      images concatenated in order;
    - `image_grid_thw`: int64 `(len(images), 3)` rows `(1, resized_height // patch, resized_width // patch)`.
    Each image costs `h * w // merge_size**2` visual tokens.

    Raises ValueError naming the bad image (index, type, shape, dtype) and what to pass instead.
    """
    _check_spec(vision)
    if isinstance(images, (Image.Image, np.ndarray)):
        images = [images]
    if len(images) == 0:
        raise ValueError("preprocess_images got no images; pass a list with at least one image")
    patches: list[torch.Tensor] = []
    grids: list[list[int]] = []
    for index, image in enumerate(images):
        rgb = _to_rgb_uint8(image, index)
        height, width = rgb.shape[:2]
        try:
            new_w, new_h = smart_resize(width, height, vision)
        except ValueError as exc:
            raise ValueError(f"image {index} ({width}x{height}) cannot be resized: {exc}") from None
        patches.append(_patchify(_resize_planes(rgb, new_w, new_h), vision))
        grids.append([1, new_h // vision.patch_size, new_w // vision.patch_size])
    pixel_values = patches[0] if len(patches) == 1 else torch.cat(patches, dim=0)
    return pixel_values, torch.tensor(grids, dtype=torch.int64)


def image_grids(images: Sequence[Image.Image | np.ndarray], vision: VisionSpec = QWEN3_VISION) -> torch.Tensor:
    """The `image_grid_thw` that `preprocess_images` would return, from the image sizes alone (no pixel work).

    Lets a caller lay out visual tokens and M-RoPE positions for images it will not send again (an engine
    session whose cache already holds them). Raises ValueError like `preprocess_images`.
    """
    _check_spec(vision)
    if len(images) == 0:
        raise ValueError("image_grids got no images; pass a list with at least one image")
    grids = []
    for index, image in enumerate(images):
        if isinstance(image, Image.Image):
            width, height = image.size
        elif isinstance(image, np.ndarray) and image.ndim in (2, 3):
            height, width = image.shape[:2]
        else:
            raise ValueError(
                f"image {index} is a {type(image).__name__}; pass a PIL.Image.Image or a uint8 numpy array"
            )
        try:
            new_w, new_h = smart_resize(width, height, vision)
        except ValueError as exc:
            raise ValueError(f"image {index} ({width}x{height}) cannot be resized: {exc}") from None
        grids.append([1, new_h // vision.patch_size, new_w // vision.patch_size])
    return torch.tensor(grids, dtype=torch.int64)


def _check_spec(vision: VisionSpec) -> None:
    if vision.patch_size <= 0 or vision.merge_size <= 0 or vision.temporal_patch_size <= 0:
        raise ValueError(f"patch_size, merge_size and temporal_patch_size must be positive: {vision}")
    if not 0 < vision.min_pixels <= vision.max_pixels:
        raise ValueError(
            f"pixel budget must satisfy 0 < min_pixels <= max_pixels, got {vision.min_pixels}..{vision.max_pixels}"
        )


def _to_rgb_uint8(image: Image.Image | np.ndarray, index: int) -> np.ndarray:
    """H x W x 3 uint8 RGB, C-contiguous. Transparency → composited onto white (as transformers does)."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            if "A" in image.getbands() or image.info.get("transparency") is not None:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba).convert("RGB")
            else:
                image = image.convert("RGB")
        return np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"image {index} is a {type(image).__name__}; pass a PIL.Image.Image or a uint8 numpy array"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"image {index} has dtype {image.dtype}; pass uint8 pixels 0..255 (e.g. (arr * 255).astype(np.uint8))"
        )
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        rgb = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))
    raise ValueError(
        f"image {index} has shape {image.shape}; pass H x W, H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 pixels"
    )


def _resize_planes(rgb: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, height, width) uint8 planes, resized with antialiased bicubic.

    torch's uint8 antialiased bicubic is built to match PIL's BICUBIC (what transformers uses): measured
    within 2 grey levels of it on screenshots, and 4-6x faster. Same size → the pixels unchanged.
    """
    old_h, old_w = rgb.shape[:2]
    if not rgb.flags.writeable:  # np.asarray(PIL image) is read-only; torch wants a writable buffer
        rgb = rgb.copy()
    hwc = torch.from_numpy(rgb)
    if (old_w, old_h) == (width, height):
        return hwc.permute(2, 0, 1).contiguous()
    nchw = hwc.permute(2, 0, 1).unsqueeze(0)  # channels-last strides, no copy
    resized = torch.nn.functional.interpolate(nchw, size=(height, width), mode="bicubic", antialias=True)
    return resized[0].contiguous()


def _patchify(planes: torch.Tensor, vision: VisionSpec) -> torch.Tensor:
    """(3, H, W) uint8 with H, W multiples of the factor → (patches, 3 * T * p * p) float32, normalised.

    Order matches transformers: patches grouped by merge window (row-major over windows, row-major inside
    a window), each flattened as (channel, time, row, column) with the frame repeated over time.
    """
    p, m, t = vision.patch_size, vision.merge_size, vision.temporal_patch_size
    channels, height, width = planes.shape
    grid_h, grid_w = height // p, width // p
    count = grid_h * grid_w
    # Shuffle on uint8, moving each patch row (p contiguous bytes) as one opaque element: ~6x faster than a
    # byte-wise permute. Result: (patch, channel, p*p) uint8.
    rows = planes.numpy().view(np.dtype((np.void, p))).reshape(channels, grid_h // m, m, p, grid_w // m, m)
    shuffled = (
        np.ascontiguousarray(rows.transpose(1, 4, 2, 5, 0, 3))  # (win row, win col, row in win, col in win, C, py)
        .view(np.uint8)
        .reshape(count, channels, p * p)
    )
    # The still image is repeated over the temporal patch (as transformers does) on bytes, then one
    # vectorised cv2 pass writes x / 255 → (x - mean) / std == x * gain + bias straight into the output:
    # a single call over everything when the channels share mean/std (Qwen3.5), one per channel otherwise.
    frames = np.repeat(shuffled[:, :, None, :], t, axis=2).reshape(count, channels, t * p * p)
    out = _empty_float32(count, channels * t * p * p)
    dst = out.numpy().reshape(count, channels, t * p * p)
    gains = [1.0 / (255.0 * s) for s in vision.image_std]
    biases = [-mu / s for mu, s in zip(vision.image_mean, vision.image_std)]
    if len(set(gains)) == 1 and len(set(biases)) == 1:
        _affine_into(frames.reshape(count, -1), gains[0], biases[0], out.numpy())
    else:
        for c in range(channels):
            _affine_into(frames[:, c, :], gains[c], biases[c], dst[:, c, :])
    return out


def _affine_into(src: np.ndarray, gain: float, bias: float, dst: np.ndarray) -> None:
    """dst[...] = src * gain + bias (uint8 → float32), in one SIMD, multi-threaded OpenCV pass."""
    result = cv2.addWeighted(src, gain, src, 0.0, bias, dst=dst, dtype=cv2.CV_32F)
    if not np.shares_memory(result, dst):  # OpenCV allocated instead of writing in place: copy it over
        np.copyto(dst, result)


class _OutputBuffers:
    """Recycles the memory of large pixel_values tensors once every tensor over it has been freed.

    A 1080p screenshot's pixel_values is ~50 MB; fresh memory costs a page fault per 4 KiB and the kernel
    zeroes it, which is as much work as the whole patch shuffle. An agent sends same-sized screenshots
    every step and drops pixel_values after the forward pass, so one or two buffers are reused forever.
    A buffer is reused only when nothing else references it (torch.frombuffer holds a reference to the
    mapping for as long as any tensor or view over it lives), so a tensor a caller keeps is never touched.
    """

    def __init__(self, keep: int = 2, min_bytes: int = 4 << 20) -> None:
        self._keep = keep
        self._min_bytes = min_bytes
        self._mappings: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def empty_float32(self, *shape: int) -> torch.Tensor:
        """An uninitialised float32 tensor of `shape` (contents are whatever the last user left)."""
        count = math.prod(shape)
        nbytes = count * 4
        if nbytes < self._min_bytes or not hasattr(mmap, "MAP_ANONYMOUS"):  # small, or not a POSIX mmap
            return torch.empty(*shape, dtype=torch.float32)
        with self._lock:
            mapping = next((m for m in self._mappings if len(m) == nbytes and _unreferenced(m)), None)
            if mapping is None:
                mapping = _anonymous_mapping(nbytes)
                self._mappings.append(mapping)
                del self._mappings[: -self._keep]  # forget the oldest; a tensor still using it keeps it alive
            return torch.frombuffer(mapping, dtype=torch.float32, count=count).view(*shape)


def _unreferenced(mapping: mmap.mmap) -> bool:
    # References: the pool's list, the generator's variable and getrefcount's own argument.
    return sys.getrefcount(mapping) <= 3


def _anonymous_mapping(nbytes: int) -> mmap.mmap:
    """Private anonymous memory, on transparent huge pages where Linux offers them (fewer faults)."""
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        try:
            mapping.madvise(advice)
        except OSError:  # a hint only: kernels without THP refuse it, the memory works the same
            pass
    return mapping


_BUFFERS = _OutputBuffers()
_empty_float32 = _BUFFERS.empty_float32
