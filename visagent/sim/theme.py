"""Colours, fonts and the drawing surface (`Canvas`) every sim widget paints on.

Sizes given to Canvas methods are in screen pixels; apps multiply their design units (dp) by the
world's UI scale `s` (1.0 on the desktop, ~2.6 on the phone) before drawing.
"""

from __future__ import annotations

import colorsys
import functools
import math
import os
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive), screen pixels

#: Where the DejaVu fonts are (Debian's fonts-dejavu-core); VISAGENT_FONT_DIR points elsewhere (another distro,
#: a machine without the package: copy DejaVuSans*.ttf and DejaVuSansMono*.ttf into a folder).
FONT_DIR = os.environ.get("VISAGENT_FONT_DIR") or "/usr/share/fonts/truetype/dejavu"


@functools.lru_cache(maxsize=128)
def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    """A DejaVu font of `size` pixels (cached). Raises ConfigError when the font file is missing."""
    from visagent.core.errors import ConfigError

    name = "DejaVuSansMono" if mono else "DejaVuSans"
    if bold:
        name += "-Bold"
    path = os.path.join(FONT_DIR, f"{name}.ttf")
    if not os.path.isfile(path):
        raise ConfigError(f"the sim world's font {path} is missing: install the DejaVu fonts (Debian/Ubuntu: apt-get "
                          "install fonts-dejavu-core) or set VISAGENT_FONT_DIR to a folder holding DejaVuSans.ttf")
    return ImageFont.truetype(path, max(6, int(size)))


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: int, bold: bool = False, mono: bool = False) -> int:
    """Width in pixels of `text` drawn at `size`."""
    return int(math.ceil(font(size, bold, mono).getlength(text)))


@functools.lru_cache(maxsize=16384)
def text_mask(text: str, size: int, bold: bool, mono: bool, anchor: str) -> tuple[Image.Image, int, int]:
    """Anti-aliased coverage mask of `text` and its offset from the anchor point (cached: typing and
    re-rendering the same labels costs a paste instead of a FreeType render)."""
    f = font(size, bold, mono)
    x0, y0, x1, y1 = f.getbbox(text, anchor=anchor)
    im = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)), 0)
    ImageDraw.Draw(im).text((-x0, -y0), text, font=f, fill=255, anchor=anchor)
    return im, x0, y0


def hue_color(hue: float, sat: float = 0.65, light: float = 0.48) -> Color:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, light, sat)
    return (int(r * 255), int(g * 255), int(b * 255))


def mix(a: Color, b: Color, t: float) -> Color:
    return tuple(int(a[i] + (b[i] - a[i]) * t) for i in range(3))  # type: ignore[return-value]


def vertical_gradient(w: int, h: int, top: Color, bottom: Color) -> Image.Image:
    """A w x h RGB image (px) fading linearly from `top` (first row) to `bottom` (last row); a wallpaper."""
    a = np.array(top, dtype=np.float32)
    b = np.array(bottom, dtype=np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return Image.fromarray((a * (1 - t) + b * t).repeat(w, axis=1).astype(np.uint8), "RGB")


@dataclass(frozen=True)
class Theme:
    """One colour scheme. `accent` is per app (each app has its own hue), the rest per light/dark."""

    dark: bool
    bg: Color
    surface: Color
    surface2: Color
    text: Color
    muted: Color
    border: Color
    accent: Color
    on_accent: Color
    danger: Color
    success: Color
    shadow: Color

    def with_accent(self, hue: float) -> Theme:
        return replace(self, accent=hue_color(hue, 0.6, 0.62 if self.dark else 0.45))


def make_theme(dark: bool, hue: float = 0.6) -> Theme:
    """A light or dark theme with an accent of the given hue (0..1)."""
    if dark:
        t = Theme(True, (30, 31, 36), (43, 45, 52), (56, 59, 68), (232, 233, 238), (150, 154, 166),
                  (74, 78, 90), (0, 0, 0), (255, 255, 255), (235, 87, 87), (80, 200, 120), (10, 10, 12))
    else:
        t = Theme(False, (240, 241, 245), (255, 255, 255), (246, 247, 250), (28, 30, 36), (108, 112, 124),
                  (208, 211, 220), (0, 0, 0), (255, 255, 255), (205, 45, 45), (30, 150, 80), (150, 152, 160))
    return t.with_accent(hue)


class Canvas:
    """An ImageDraw that takes screen coordinates and paints onto an image placed at `origin`."""

    def __init__(self, image: Image.Image, origin: tuple[int, int] = (0, 0)) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.ox, self.oy = origin

    def _r(self, r: Rect) -> Rect:
        return (r[0] - self.ox, r[1] - self.oy, r[2] - self.ox - 1, r[3] - self.oy - 1)

    def rect(self, r: Rect, fill: Color | None = None, outline: Color | None = None, radius: int = 0,
             width: int = 1) -> None:
        box = self._r(r)
        if box[2] < box[0] or box[3] < box[1]:
            return
        if radius > 0:
            self.draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline, width=width)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline, width=width)

    def ellipse(self, r: Rect, fill: Color | None = None, outline: Color | None = None, width: int = 1) -> None:
        self.draw.ellipse(self._r(r), fill=fill, outline=outline, width=width)

    def line(self, pts: list[tuple[float, float]], fill: Color, width: int = 1) -> None:
        self.draw.line([(x - self.ox, y - self.oy) for x, y in pts], fill=fill, width=width, joint="curve")

    def polygon(self, pts: list[tuple[float, float]], fill: Color) -> None:
        self.draw.polygon([(x - self.ox, y - self.oy) for x, y in pts], fill=fill)

    def arc(self, r: Rect, start: float, end: float, fill: Color, width: int) -> None:
        self.draw.arc(self._r(r), start, end, fill=fill, width=width)

    def text(self, xy: tuple[float, float], text: str, size: int, fill: Color, bold: bool = False,
             anchor: str = "la", mono: bool = False) -> None:
        """Anti-aliased text; `anchor` is PIL's (e.g. "lm" left-middle, "mm" centred)."""
        if not text:
            return
        mask, dx, dy = text_mask(text, max(6, int(size)), bold, mono, anchor)
        self.image.paste(fill, (int(round(xy[0] - self.ox)) + dx, int(round(xy[1] - self.oy)) + dy), mask)

    def text_in(self, r: Rect, text: str, size: int, fill: Color, bold: bool = False, align: str = "center",
                pad: int = 0) -> None:
        """Text vertically centred in `r`; `align` left/center/right; elided with '…' when too wide."""
        avail = r[2] - r[0] - 2 * pad
        text = elide(text, avail, size, bold)
        y = (r[1] + r[3]) / 2
        if align == "left":
            self.text((r[0] + pad, y), text, size, fill, bold, "lm")
        elif align == "right":
            self.text((r[2] - pad, y), text, size, fill, bold, "rm")
        else:
            self.text(((r[0] + r[2]) / 2, y), text, size, fill, bold, "mm")


def elide(text: str, width: int, size: int, bold: bool = False) -> str:
    if text_width(text, size, bold) <= width or not text:
        return text
    while text and text_width(text + "…", size, bold) > width:
        text = text[:-1]
    return text + "…"


def centre(r: Rect) -> tuple[float, float]:
    return ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)


def inside(r: Rect, x: float, y: float) -> bool:
    return r[0] <= x < r[2] and r[1] <= y < r[3]


def intersect(a: Rect, b: Rect) -> Rect | None:
    r = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return r if r[0] < r[2] and r[1] < r[3] else None
