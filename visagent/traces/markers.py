"""The one marker style for screenshots, shared by the dashboard, the HTML report, the GIF export and the
grounding view: a pink ring where the model pointed, a blue cross where the action landed on the screen.

The two usually differ only by rounding; they part when the screen's scale or offset is wrong, when a drag's
second point is drawn, or when the pointing head's point replaced the coordinate the model wrote (the written
one is kept in the step's `model.pointer.written`).
"""

from __future__ import annotations

import html

from PIL import ImageDraw

Point = tuple[float, float]

POINTED_COLOR = (236, 72, 153)  # pink ring: where the model pointed
LANDED_COLOR = (14, 165, 233)  # blue cross: where the executed action landed
POINTED_HEX = "#ec4899"
LANDED_HEX = "#0ea5e9"

LEGEND = (
    ("pointed", "pink ring", "where the model pointed (its point on the image it saw; the pointing head's "
                             "point when it replaced the written one)"),
    ("landed", "blue cross", "where the action landed on the screen (drawn once it ran)"),
)


def legend_html() -> str:
    """The legend as HTML (fixed text), with a drawn sample of each marker."""
    ring = (f'<svg width="16" height="16" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="none" '
            f'stroke="{POINTED_HEX}" stroke-width="2.5"/></svg>')
    cross = (f'<svg width="16" height="16" viewBox="0 0 16 16"><path d="M1 8H15M8 1V15" stroke="{LANDED_HEX}" '
             'stroke-width="2.5"/></svg>')
    items = [f'<span class="vg-legend-item">{sample} {html.escape(meaning)}</span>'
             for sample, (_, _, meaning) in zip((ring, cross), LEGEND)]
    return f'<div class="vg-legend legend">{"".join(items)}</div>'


def marker_size(width: int, height: int) -> tuple[int, int]:
    """(radius, line width) in pixels for an image of this size."""
    size = max(8, round(min(width, height) / 60))
    return size, max(2, size // 4)


def draw_ring(draw: ImageDraw.ImageDraw, p: Point, size: int, width: int) -> None:
    x, y = p
    draw.ellipse((x - size, y - size, x + size, y + size), outline=POINTED_COLOR, width=width)
    draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=POINTED_COLOR)


def draw_cross(draw: ImageDraw.ImageDraw, p: Point, size: int, width: int) -> None:
    x, y = p
    arm = size + 4
    draw.line((x - arm, y, x + arm, y), fill=LANDED_COLOR, width=width)
    draw.line((x, y - arm, x, y + arm), fill=LANDED_COLOR, width=width)


def svg_marker(kind: str, p: Point, title: str, image_size: tuple[int, int]) -> str:
    """The marker as SVG at image pixels `p` (for the report's screenshot SVG); `data-x`/`data-y` hold `p`."""
    x, y = round(p[0], 1), round(p[1], 1)
    size, width = marker_size(*image_size)
    t = f"<title>{html.escape(title)}</title>"
    if kind == "pointed":
        return (f'<circle class="pointed" data-x="{x:g}" data-y="{y:g}" cx="{x:g}" cy="{y:g}" r="{size}" '
                f'fill="none" stroke="{POINTED_HEX}" stroke-width="{width}">{t}</circle>')
    arm = size + 4
    return (f'<path class="landed" data-x="{x:g}" data-y="{y:g}" d="M{x - arm:g} {y:g}H{x + arm:g}M{x:g} '
            f'{y - arm:g}V{y + arm:g}" stroke="{LANDED_HEX}" stroke-width="{width}">{t}</path>')
