"""Markers drawn on screenshots: where the model pointed and where the click landed.

Points are in pixels of the screenshot image (physical pixels). Use `visagent.traces.report.model_point_to_image`
and `screen_point_to_image` to get them from a trace action's `mapping` / screen coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from visagent.traces.markers import LANDED_COLOR, POINTED_COLOR, draw_cross, draw_ring, marker_size
from visagent.traces.report import model_point_to_image, screen_point_to_image

MODEL_COLOR = POINTED_COLOR  # pink ring: where the model pointed (the one style: visagent/traces/markers.py)
CLICK_COLOR = LANDED_COLOR  # blue cross: where the executed action landed


@dataclass(frozen=True)
class Markers:
    """Overlay points in image pixels; any may be None."""

    model: tuple[float, float] | None = None
    model2: tuple[float, float] | None = None
    click: tuple[float, float] | None = None
    click2: tuple[float, float] | None = None

    @property
    def empty(self) -> bool:
        return self.model is None and self.click is None


def markers_for_action(action: dict[str, Any], geometry: dict[str, Any] | None, *, executed: bool) -> Markers:
    """Markers for one action dict as the trace writes it (`coordinate` in screen space, `mapping`).

    `executed`: whether the action ran (then its screen point is drawn as the landed click).
    """
    model = model2 = click = click2 = None
    mapping = action.get("mapping")
    if isinstance(mapping, dict):
        try:
            model = model_point_to_image(mapping, "model")
            model2 = model_point_to_image(mapping, "model2")
        except (KeyError, TypeError, ValueError):
            model = model2 = None  # an incomplete mapping: no model marker, the rest still drawn
    if executed and geometry and action.get("space", "screen") == "screen":
        if action.get("coordinate") is not None:
            click = screen_point_to_image(action["coordinate"], geometry)
        if action.get("coordinate2") is not None:
            click2 = screen_point_to_image(action["coordinate2"], geometry)
    return Markers(model, model2, click, click2)


def draw_markers(image: Image.Image, markers: Markers) -> Image.Image:
    """A copy of `image` with the model point (pink ring) and the landed click (blue cross) drawn on it."""
    out = image.convert("RGB").copy()
    if markers.empty and markers.click2 is None:
        return out
    draw = ImageDraw.Draw(out)
    size, width = marker_size(*out.size)

    if markers.model is not None and markers.model2 is not None:
        draw.line((*markers.model, *markers.model2), fill=MODEL_COLOR, width=width)
    if markers.click is not None and markers.click2 is not None:
        draw.line((*markers.click, *markers.click2), fill=CLICK_COLOR, width=width)
    for p in (markers.model, markers.model2):
        if p is not None:
            draw_ring(draw, p, size, width)
    for p in (markers.click, markers.click2):
        if p is not None:
            draw_cross(draw, p, size, width)
    return out
