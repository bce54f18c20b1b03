"""Grounding: "where on this screen is the element the instruction names?", predicted and measured.

- `predict`: `ground(engine, image, instruction)` → `GroundingResult`; `annotate(image, result, box)`.
- `data`: ScreenSpot-Pro / ScreenSpot / converted ScreenSpot-v2 annotation files → `GroundingItem`s.
- `scoring`: `evaluate_grounding(engine, items, images_dir)` → `GroundingReport` (accuracy and breakdowns).
- `misses_html`: `write_misses_html(report, path)`, a page of the misses.
- `sim_export`: `export_sim_grounding(out, split=...)`, a grounding set from the sim in the Pro layout.
- `baselines`: `baseline_hits(rows, records)`, pixel-blind baselines (centre, random element, click priors).
"""

from visagent.grounding.data import FLAVOURS, GroundingItem, GroundingSet, LoadProblem, detect_flavour, load_annotations
from visagent.grounding.predict import (
    DEFAULT_CONFIG, PROMPT_STYLES, GroundingResult, annotate, ground, grounding_request, model_to_image, point_in_box,
    resolve_prompt_style,
)
from visagent.grounding.scoring import GroundingReport, ItemOutcome, evaluate_grounding, scaled_box

__all__ = [
    "DEFAULT_CONFIG", "FLAVOURS", "PROMPT_STYLES", "GroundingItem", "GroundingReport", "GroundingResult",
    "GroundingSet", "ItemOutcome", "LoadProblem", "annotate", "detect_flavour", "evaluate_grounding", "ground",
    "grounding_request", "load_annotations", "model_to_image", "point_in_box", "resolve_prompt_style", "scaled_box",
]
