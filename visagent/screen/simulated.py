"""SimExecutor: the Executor protocol over a SimWorld (virtual clock, optional HiDPI screenshots).

With `scale=2.0` screenshots come back at twice the logical size (ScreenGeometry.scale == 2) while actions
stay in logical screen pixels, the way a Retina / 200% display behaves — so coordinate-scaling bugs show up
end to end.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PIL import Image

from visagent.core.actions import Action
from visagent.core.errors import ExecutorError
from visagent.screen.base import ExecResult, Observation, ScreenGeometry
from visagent.screen.settle import images_differ
from visagent.core.actions import HEAD_ACTIONS
from visagent.sim.world import SimWorld


class SimExecutor:
    """Drives a SimWorld. `scale`: physical pixels per logical pixel of the screenshots (1.0 .. 4.0)."""

    name = "sim"

    def __init__(self, world: SimWorld, scale: float = 1.0) -> None:
        if not 1.0 <= scale <= 4.0:
            raise ExecutorError(f"sim scale must be within 1.0..4.0, got {scale}")
        self.world = world
        self.scale = float(scale)
        self.platform = world.platform  # type: ignore[assignment]
        self._closed = False
        self._scaled_from: Image.Image | None = None  # the world frame `_scaled` was resized from
        self._scaled: Image.Image | None = None
        self._scaled_raw: bytes | None = None  # the pixels `_scaled` was resized from
        w, h = world.size
        self._geometry = ScreenGeometry(w, h, int(round(w * self.scale)), int(round(h * self.scale)))

    def geometry(self) -> ScreenGeometry:
        return self._geometry

    def screenshot(self) -> Observation:
        """The current screen (physical pixels, RGB); timestamp is the world's virtual time.

        The image shares the rendered frame's pixels read-only (no copy per capture: the settle detector
        captures several times a step): drawing on it (ImageDraw, paste, putpixel) makes Pillow copy them
        first, so neither the world nor other screenshots ever see the drawing."""
        self._check()
        frame = self.world.render(copy=False)
        if self.scale != 1.0:
            if frame is not self._scaled_from:  # resized once per rendered frame, not once per capture
                raw = frame.tobytes()
                if raw != self._scaled_raw:  # a re-render may paint the very same pixels: their resize is reused
                    self._scaled = self._rescale(frame, raw)
                    self._scaled_raw = raw
                self._scaled_from = frame
            frame = self._scaled
        return Observation(image=_shared_view(frame), geometry=self._geometry, timestamp=self.world.clock.now())

    def _rescale(self, frame: Image.Image, raw: bytes) -> Image.Image:
        """`frame` resized to physical pixels (bilinear). Only the part that changed since the last resized frame
        is resized again and pasted over a copy of the last result: byte-identical to resizing the whole frame,
        because the part is a box aligned to whole output pixels and Pillow's filter reads the source beyond the
        box (tests/test_loop_cost.py checks it), and a click that repaints one widget costs that widget's
        pixels, not the screen's."""
        g = self._geometry
        size = (g.physical_width, g.physical_height)
        box = None if self._scaled is None or self._scaled_raw is None else _damage(self._scaled_raw, raw, frame.size)
        if box is None:
            return frame.resize(size, Image.Resampling.BILINEAR)
        w, h = frame.size
        kx, ky = w // math.gcd(w, size[0]), h // math.gcd(h, size[1])  # source steps that map to whole output px
        margin = 2  # bilinear upscaling reads one source pixel around each output sample
        x0, y0 = max(0, (box[0] - margin) // kx * kx), max(0, (box[1] - margin) // ky * ky)
        x1, y1 = min(w, -(-(box[2] + margin) // kx) * kx), min(h, -(-(box[3] + margin) // ky) * ky)
        if (x1 - x0) * (y1 - y0) * 2 > w * h:  # most of the screen changed: one whole resize is cheaper
            return frame.resize(size, Image.Resampling.BILINEAR)
        ox0, oy0, ox1, oy1 = x0 * size[0] // w, y0 * size[1] // h, x1 * size[0] // w, y1 * size[1] // h
        part = frame.resize((ox1 - ox0, oy1 - oy0), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))
        scaled = self._scaled.copy()  # new pixels: screenshots handed out keep sharing the old ones
        scaled.paste(part, (ox0, oy0))
        return scaled

    def same_frame(self, a: Image.Image, b: Image.Image) -> bool:
        """True when screenshots `a` and `b` share one rendered frame's pixels (neither was drawn on since: a
        drawing gives a screenshot pixels of its own). False means "unknown, compare them". Lets the settle
        detector skip work (SettleDetector.wait)."""
        return a.im is b.im

    def execute(self, action: Action) -> ExecResult:
        """Execute an action in screen space; `changed` says whether the rendered screen changed."""
        self._check()
        t0 = time.perf_counter()
        before = self.world.render(copy=False)  # the world's own frames, not copies: unchanged unless re-rendered
        hit = self.world.element_at(*action.coordinate) if action.action in HEAD_ACTIONS and action.coordinate else None
        target = None if hit is None else {"label": hit.label, "bbox": list(hit.bbox), "ui_type": hit.ui_type}
        message = self.world.apply(action)
        after = self.world.render(copy=False)
        changed = after is not before and images_differ(before, after)
        return ExecResult(ok=True, message=message, execute_s=time.perf_counter() - t0, changed=changed,
                          target=target)

    def now(self) -> float:
        return self.world.clock.now()

    def sleep(self, seconds: float) -> None:
        """Advance the world's virtual clock (returns at once)."""
        self.world.clock.advance(max(0.0, seconds))

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def _check(self) -> None:
        if self._closed:
            raise ExecutorError("the sim executor is closed; create a new SimExecutor")


def _shared_view(image: Image.Image) -> Image.Image:
    """A new Image object over `image`'s pixels, marked read-only: Pillow copies the pixels into the view before
    anything draws on it (its `_ensure_mutable`), so `image` stays as it is (tests/test_loop_cost.py checks it)."""
    view = image._new(image.im)
    view.readonly = 1
    return view


def _damage(old: bytes, new: bytes, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) around every pixel that differs between two RGB frames of `size`, compared in
    8-byte words (a fraction of a millisecond at 1280x800); None when the frames differ in length."""
    w, h = size
    if len(old) != len(new) or len(new) != w * h * 3:
        return None
    row = w * 3
    word = 8 if row % 8 == 0 else 4 if row % 4 == 0 else 1
    dtype = {8: np.uint64, 4: np.uint32, 1: np.uint8}[word]
    diff = np.frombuffer(old, dtype).reshape(h, row // word) != np.frombuffer(new, dtype).reshape(h, row // word)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return (int(cols[0]) * word // 3, int(rows[0]), (int(cols[-1]) * word + word - 1) // 3 + 1, int(rows[-1]) + 1)
