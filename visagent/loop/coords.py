"""Coordinate spaces: where the model pointed → where the click lands, and back.

Spaces (see `visagent.core.actions`):
- "norm1000": a 0..1000 grid over the screenshot (Qwen3-VL, Qwen3.5). A value is a position, not a pixel
  index: 500 is the middle, 1000 the far edge (which lands on the last pixel).
- "resized": pixel indices on the smart-resized image the model saw (Qwen2.5-VL, UI-TARS-1.5).
- "absolute": pixel indices on the screenshot itself (physical pixels, before any resize).
- "screen": global logical pixels (monitor offset applied, HiDPI scale divided out), what executors take.

Rounding: a grid position maps to the screen pixel containing it; a pixel index (resized, absolute) maps to
the screen pixel containing that pixel's centre, so absolute and HiDPI round trips are exact. Far edges
(1000, the image width/height) land on the last screen pixel. Nothing outside the image is clamped: such a
point raises `ParseError`, whose message can go back to the model.
"""

from __future__ import annotations

import math

from engine.api import VisionSpec, smart_resize
from visagent.core.actions import Action, CoordMapping
from visagent.core.errors import ActionError, ConfigError, ParseError
from visagent.screen.base import ScreenGeometry

MODEL_SPACES: tuple[str, ...] = ("norm1000", "resized", "absolute")
NORM_GRID = 1000
_EPS = 1e-9  # keeps 0.29 * 1000-style float error from dropping a pixel at floor()


def model_size(
    space: str,
    geometry: ScreenGeometry,
    *,
    image_size: tuple[int, int] | None = None,
    resized_size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """(width, height) of the model's coordinate space: 1000x1000, the resized image, or the screenshot.

    `image_size` defaults to the geometry's physical size (what the screenshot is). Raises ConfigError when
    `space` is unknown or "resized" lacks `resized_size`.
    """
    if space == "norm1000":
        return NORM_GRID, NORM_GRID
    if space == "resized":
        if resized_size is None:
            raise ConfigError("space 'resized' needs the resized image size (resized_size / --resized WxH)")
        return _check_size("resized_size", resized_size)
    if space == "absolute":
        if image_size is None:
            return geometry.physical_width, geometry.physical_height
        return _check_size("image_size", image_size)
    raise ConfigError(f"unknown model coordinate space {space!r}; expected one of: {', '.join(MODEL_SPACES)}")


def resized_size_for(geometry: ScreenGeometry, vision: VisionSpec) -> tuple[int, int]:
    """The smart-resized (width, height) a model with `vision` sees for a screenshot of this geometry."""
    return smart_resize(geometry.physical_width, geometry.physical_height, vision)


def to_screen(
    action: Action,
    geometry: ScreenGeometry,
    *,
    image_size: tuple[int, int] | None = None,
    resized_size: tuple[int, int] | None = None,
) -> Action:
    """Convert an action from its model space (norm1000 / resized / absolute) to "screen" space.

    Coordinates become whole global logical pixels on `geometry`'s monitor; `mapping` records the model's
    points and the factors used. Actions without coordinates come back with space "screen" and no mapping;
    an action already in "screen" space comes back unchanged.
    Raises ParseError when a point lies outside the model's image (message fit for the model), ConfigError
    when the space needs a size that was not given.
    """
    if action.space == "screen":
        return action
    if action.coordinate is None and action.coordinate2 is None:
        return action.with_(space="screen", mapping=None)
    size = model_size(action.space, geometry, image_size=image_size, resized_size=resized_size)
    fx, fy = geometry.width / size[0], geometry.height / size[1]
    screen: dict[str, tuple[float, float] | None] = {}
    for arg in ("coordinate", "coordinate2"):
        point = getattr(action, arg)
        if point is None:
            screen[arg] = None
            continue
        _check_inside(arg, point, action.space, size)
        x = _to_axis(point[0], fx, action.space, geometry.width) + geometry.offset_x
        y = _to_axis(point[1], fy, action.space, geometry.height) + geometry.offset_y
        screen[arg] = (float(x), float(y))
    mapping = CoordMapping(
        space=action.space, model=action.coordinate, model2=action.coordinate2, factor_x=fx, factor_y=fy,
        offset_x=geometry.offset_x, offset_y=geometry.offset_y, scale=geometry.scale,
        image_size=image_size or (geometry.physical_width, geometry.physical_height),
        resized_size=resized_size if action.space == "resized" else None,
    )
    return action.with_(coordinate=screen["coordinate"], coordinate2=screen["coordinate2"], space="screen",
                        mapping=mapping)


def from_screen(
    action: Action,
    geometry: ScreenGeometry,
    *,
    space: str,
    image_size: tuple[int, int] | None = None,
    resized_size: tuple[int, int] | None = None,
) -> Action:
    """Write a "screen"-space action in a model's space (whole numbers, as a model would write them).

    The inverse of `to_screen`: converting back lands on the same pixel for "absolute" (any scale) and
    "resized" images no smaller than the screen, and within one grid step (width/1000 px) for "norm1000".
    Used for oracle actions of test engines and training data. Raises ActionError when the action is not in
    "screen" space or a point is not on this monitor; ConfigError as `model_size`.
    """
    if action.space == space:
        return action
    if action.space != "screen":
        raise ActionError(f"from_screen needs an action in 'screen' space, got space {action.space!r}")
    size = model_size(space, geometry, image_size=image_size, resized_size=resized_size)
    if action.coordinate is None and action.coordinate2 is None:
        return action.with_(space=space, mapping=None)
    fx, fy = geometry.width / size[0], geometry.height / size[1]
    model: dict[str, tuple[float, float] | None] = {}
    for arg in ("coordinate", "coordinate2"):
        point = getattr(action, arg)
        if point is None:
            model[arg] = None
            continue
        if not geometry.contains(point[0], point[1]):
            raise ActionError(
                f"{arg} [{_fmt(point[0])}, {_fmt(point[1])}] is not on this monitor "
                f"(x {geometry.offset_x}..{geometry.offset_x + geometry.width - 1}, "
                f"y {geometry.offset_y}..{geometry.offset_y + geometry.height - 1})"
            )
        x = _from_axis(point[0] - geometry.offset_x, fx, space, size[0])
        y = _from_axis(point[1] - geometry.offset_y, fy, space, size[1])
        model[arg] = (float(x), float(y))
    mapping = CoordMapping(
        space=space, model=model["coordinate"], model2=model["coordinate2"], factor_x=fx, factor_y=fy,
        offset_x=geometry.offset_x, offset_y=geometry.offset_y, scale=geometry.scale,
        image_size=image_size or (geometry.physical_width, geometry.physical_height),
        resized_size=resized_size if space == "resized" else None,
    )
    return action.with_(coordinate=model["coordinate"], coordinate2=model["coordinate2"], space=space,
                        mapping=mapping)


def norm1000_to_screen(x: float, y: float, geometry: ScreenGeometry) -> tuple[int, int]:
    """A 0..1000 grid point → global logical screen pixel on `geometry`. Raises ParseError off the grid."""
    _check_inside("coordinate", (x, y), "norm1000", (NORM_GRID, NORM_GRID))
    return (
        _to_axis(x, geometry.width / NORM_GRID, "norm1000", geometry.width) + geometry.offset_x,
        _to_axis(y, geometry.height / NORM_GRID, "norm1000", geometry.height) + geometry.offset_y,
    )


def screen_to_norm1000(x: float, y: float, geometry: ScreenGeometry) -> tuple[int, int]:
    """A global logical screen pixel → the 0..1000 grid point at that pixel's centre (whole numbers)."""
    return (
        _from_axis(x - geometry.offset_x, geometry.width / NORM_GRID, "norm1000", NORM_GRID),
        _from_axis(y - geometry.offset_y, geometry.height / NORM_GRID, "norm1000", NORM_GRID),
    )


# -- internals -------------------------------------------------------------------------------------------


def _to_axis(value: float, factor: float, space: str, screen_len: int) -> int:
    """One model coordinate → a screen pixel index in 0..screen_len-1 (monitor-local)."""
    pos = value * factor if space == "norm1000" else (value + 0.5) * factor
    return min(math.floor(pos + _EPS), screen_len - 1)


def _from_axis(local: float, factor: float, space: str, model_len: int) -> int:
    """One monitor-local screen pixel → the model coordinate of its centre, as a whole number."""
    pos = (local + 0.5) / factor
    if space == "norm1000":
        return min(max(round(pos), 0), model_len)
    return min(max(math.floor(pos + _EPS), 0), model_len - 1)


def _check_inside(arg: str, point: tuple[float, float], space: str, size: tuple[int, int]) -> None:
    x, y = point
    if 0 <= x <= size[0] and 0 <= y <= size[1]:
        return
    where = {
        "norm1000": "the 0..1000 grid",
        "resized": f"the {size[0]}x{size[1]} image (x 0..{size[0]}, y 0..{size[1]})",
        "absolute": f"the {size[0]}x{size[1]} screenshot (x 0..{size[0]}, y 0..{size[1]})",
    }[space]
    raise ParseError(f"{arg} [{_fmt(x)}, {_fmt(y)}] is outside {where}")


def _check_size(name: str, size: tuple[int, int]) -> tuple[int, int]:
    try:
        w, h = size
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be (width, height), got {size!r}") from None
    if not (isinstance(w, int) and isinstance(h, int)) or w <= 0 or h <= 0:
        raise ConfigError(f"{name} must be two positive whole numbers, got {size!r}")
    return w, h


def _fmt(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 2)
