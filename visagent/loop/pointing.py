"""Clicking where the model's pointing head points instead of where its digits say.

A checkpoint trained with the pointer loss carries a pointing head (engine/pointer.py): with it, every
generation reports `result.pointer`, the screenshot token the head scores highest for the prompt, as
fractions of the image. For the tiny models trained here that head finds the named element far more often
than the coordinate the model writes (docs/training.md, Findings), much as GUI-Actor's action head
replaces written coordinates. The rule lives here so the agent loop and single-step grounding apply the
same one:

- `point_from="text"`: always the written coordinate (what every released model does);
- `"head"`: the head's point for single-point actions (clicks, mouse_move, long_press); an engine without a
  head is a ConfigError;
- `"auto"` (default): "head" when the engine has a head, else "text".

The action type and everything else still come from the text; drags and swipes keep their written points.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from visagent.core.actions import Action
from visagent.core.actions import HEAD_ACTIONS
from visagent.core.errors import ConfigError
from visagent.core.settings import POINT_SOURCES



def uses_head(engine_info: Any, point_from: str) -> bool:
    """Whether points come from the head for an engine with `engine_info`. ConfigError for an unknown source or
    "head" with an engine that has none."""
    if point_from not in POINT_SOURCES:
        raise ConfigError(f"unknown point source {point_from!r}; expected one of: {', '.join(POINT_SOURCES)}")
    points = bool(getattr(engine_info, "points", False))
    if point_from == "head" and not points:
        raise ConfigError(f"--point-from head: {engine_info.spec} has no pointing head (engine/pointer.py: a "
                          "checkpoint trained with --pointer-weight carries pointer_head.safetensors); "
                          "use --point-from text")
    return points and point_from != "text"


def head_point(pointer: Any, space: str, model_size: tuple[int, int]) -> tuple[float, float]:
    """The head's point (fractions of the image) in the model's coordinate space: the 0..1000 grid
    ("norm1000") or pixels of the `model_size` image ("resized")."""
    if space == "norm1000":
        return (round(pointer.x * 1000, 1), round(pointer.y * 1000, 1))
    return (round(pointer.x * model_size[0], 1), round(pointer.y * model_size[1], 1))


def with_head_point(action: Action, pointer: Any, space: str, model_size: tuple[int, int]) -> Action | None:
    """`action` (model space) with its point moved to the head's, or None when the head does not apply (no
    pointer, or not a single-point action)."""
    if pointer is None or action.action not in HEAD_ACTIONS or action.coordinate is None:
        return None
    return dataclasses.replace(action, coordinate=head_point(pointer, space, model_size))
