"""Settle detection: after an action, wait until the screen stops changing instead of sleeping a fixed time.

The detector captures frames every `interval_s`, compares each with the previous one on a grayscale
thumbnail (the frame reduced by `downscale` in each direction), and calls the screen settled once the
difference stayed at or below `threshold` for `consecutive` comparisons in a row, or when `max_wait_s`
has passed. It reports how long it waited and whether the final screen differs from the one before the
action at all. Time comes from the caller (`now`/`sleep`), so the sim world runs it on virtual time and real
screens on the monotonic clock.

android_world waits for a UI that is identical for 3 checks; UI-TARS and Agent-S sleep a fixed 1 s. This is
the former on pixels, with a tolerance for noise.

Who settles: only the screen seam (visagent.screen.seam.Screen) calls the detector, after an action and
for a fresh observation. This module imports nothing of visagent (executors import it, not the other way).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SettleResult:
    """The outcome of one wait.

    `settle_s`: seconds waited on the caller's clock (from the call to the last capture).
    `changed`: whether the final frame differs from `before` in any pixel (None when no `before` was given).
    `frames`: captures taken. `final_image`: the last capture (the settled screen).
    `timed_out`: True when `max_wait_s` ran out before the screen was stable.
    `last_diff`: the last frame-to-frame difference (fraction of thumbnail pixels that changed).
    `capture_s`: wall-clock seconds the detector itself spent capturing and comparing frames (its cost, apart
    from the waiting between captures).
    """

    settle_s: float
    changed: bool | None
    frames: int
    final_image: Image.Image
    timed_out: bool = False
    last_diff: float = 0.0
    capture_s: float = 0.0


def thumbnail(image: Image.Image, downscale: int) -> np.ndarray:
    """Grayscale thumbnail of `image`, reduced by the integer factor `downscale` (box filter), as int16."""
    gray = image.convert("L")
    if downscale > 1:
        gray = gray.reduce(downscale)
    return np.asarray(gray, dtype=np.int16)


def frame_difference(a: np.ndarray, b: np.ndarray, pixel_tolerance: int) -> float:
    """Fraction (0..1) of thumbnail pixels whose gray level differs by more than `pixel_tolerance`.

    Thumbnails of different shapes (the screen was resized) count as fully different.
    """
    if a.shape != b.shape:
        return 1.0
    return float(np.count_nonzero(np.abs(a - b) > pixel_tolerance)) / max(1, a.size)


def images_differ(a: Image.Image, b: Image.Image) -> bool:
    """Whether two screenshots differ in any pixel (or in size). Compared a block of rows at a time, so a
    difference near the top costs a block, not the whole screen, and no screen-sized copy is made."""
    if a.size != b.size:
        return True
    if a is b or a.im is b.im:  # one image, or views of the same pixels (SimExecutor's screenshots)
        return False
    if a.mode != b.mode:
        b = b.convert(a.mode)
    # same mode and size: both are cut into the same blocks, and equal bytes are equal pixels
    return any(x != y for x, y in zip(_pixel_blocks(a), _pixel_blocks(b)))


def _pixel_blocks(image: Image.Image) -> Iterator[bytes]:
    """`image.tobytes()` in blocks of whole rows (Pillow's raw packer, which tobytes joins); the whole of
    tobytes in one block if that (private) interface of Pillow ever changes."""
    try:
        encoder = Image._getencoder(image.mode, "raw", (image.mode,))
        encoder.setimage(image.im, (0, 0) + image.size)
    except (AttributeError, TypeError, ValueError):
        yield image.tobytes()
        return
    size = max(1 << 16, image.width * 4)
    while True:
        _, status, block = encoder.encode(size)
        yield block
        if status:
            if status < 0:
                raise RuntimeError(f"encoder error {status} reading the pixels of a {image.mode} image")
            return


class SettleDetector:
    """Waits for a screen to stop changing. All times in seconds; see the module docstring.

    threshold: largest frame-to-frame difference (fraction of thumbnail pixels changed by more than
        `pixel_tolerance` gray levels) that still counts as "not changing". The default 0.0 (no thumbnail
        pixel moved beyond the tolerance) is deliberate: a small spinner changes only ~10 thumbnail pixels
        (0.02% of a phone screen), as few as a caret blink; the blink is told apart by time instead — it
        leaves long quiet gaps between changes, a spinner none.
    consecutive: how many comparisons in a row must be at or below the threshold.
    interval_s: pause between captures. max_wait_s: cap on the whole wait.
    downscale: thumbnail reduction factor (8 turns 1920x1080 into 240x135).
    wait_for_change_s: while the screen still equals `before`, keep waiting up to this long for the action's
        effect to start (a real app may react late); 0 trusts the first stable frames.
    Raises ValueError for out-of-range parameters.
    """

    def __init__(
        self,
        threshold: float = 0.0,
        consecutive: int = 2,
        interval_s: float = 0.05,
        max_wait_s: float = 5.0,
        downscale: int = 8,
        pixel_tolerance: int = 8,
        wait_for_change_s: float = 0.0,
    ) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"settle threshold must be within 0..1 (a fraction of pixels), got {threshold}")
        if consecutive < 1:
            raise ValueError(f"settle consecutive must be at least 1, got {consecutive}")
        if interval_s <= 0 or max_wait_s <= 0:
            raise ValueError(f"settle interval_s and max_wait_s must be positive, got {interval_s}, {max_wait_s}")
        if downscale < 1:
            raise ValueError(f"settle downscale must be a factor >= 1, got {downscale}")
        if wait_for_change_s < 0:
            raise ValueError(f"settle wait_for_change_s must be >= 0, got {wait_for_change_s}")
        self.threshold = threshold
        self.consecutive = consecutive
        self.interval_s = interval_s
        self.max_wait_s = max_wait_s
        self.downscale = downscale
        self.pixel_tolerance = pixel_tolerance
        self.wait_for_change_s = wait_for_change_s

    def __repr__(self) -> str:
        return (f"SettleDetector(threshold={self.threshold}, consecutive={self.consecutive}, "
                f"interval_s={self.interval_s}, max_wait_s={self.max_wait_s}, downscale={self.downscale})")

    def wait(
        self,
        capture: Callable[[], Image.Image],
        now: Callable[[], float],
        sleep: Callable[[float], None],
        before: Image.Image | None = None,
        same_frame: Callable[[Image.Image, Image.Image], bool] | None = None,
    ) -> SettleResult:
        """Capture until stable or `max_wait_s`; never raises for a screen that keeps changing (`timed_out`).

        `same_frame(a, b)`, when given, may answer True only when `a` and `b` certainly hold the same pixels
        (an executor that knows both are copies of one frame, e.g. SimExecutor.same_frame); the detector then
        reuses the thumbnail and skips the pixel comparison, with the very same decisions. False means "compare".
        Exceptions from `capture` (e.g. ExecutorError for a lost display) propagate unchanged.
        """
        start = now()
        t = time.perf_counter()
        image = capture()
        frames = 1
        prev = thumbnail(image, self.downscale)
        # only the wait for a late change compares with the screen before the action
        before_thumb = thumbnail(before, self.downscale) if before is not None and self.wait_for_change_s else None
        cost = time.perf_counter() - t
        stable = 0
        diff = 0.0
        timed_out = False
        while True:
            if now() - start >= self.max_wait_s:
                timed_out = True
                break
            sleep(self.interval_s)
            t = time.perf_counter()
            last, image = image, capture()
            frames += 1
            cur = prev if same_frame is not None and same_frame(last, image) else thumbnail(image, self.downscale)
            diff = frame_difference(prev, cur, self.pixel_tolerance)
            prev = cur
            unchanged_yet = (
                before_thumb is not None
                and now() - start < self.wait_for_change_s
                and frame_difference(before_thumb, cur, self.pixel_tolerance) == 0.0
            )
            cost += time.perf_counter() - t
            stable = stable + 1 if diff <= self.threshold and not unchanged_yet else 0
            if stable >= self.consecutive:
                break
        t = time.perf_counter()
        changed = None
        if before is not None:
            changed = not (same_frame is not None and same_frame(before, image)) and images_differ(before, image)
        cost += time.perf_counter() - t
        return SettleResult(now() - start, changed, frames, image, timed_out, diff, cost)


def resolve_settle(settle: SettleDetector | bool | None, default: Callable[[], SettleDetector]) -> SettleDetector | None:
    """An executor's `settle=` argument → a detector or None: True → `default()`, False/None → None."""
    if isinstance(settle, SettleDetector):
        return settle
    if settle is True:
        return default()
    if settle is False or settle is None:
        return None
    raise TypeError(f"settle must be a SettleDetector, True or False, got {settle!r}")
