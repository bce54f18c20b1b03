"""Grounding evaluation: every item's instruction on its screenshot, scored by whether the point lies in the box.

Correctness per item (the ScreenSpot-Pro names): "correct" (point inside the box, edges included), "wrong"
(a point elsewhere, on or off the image), "wrong_format" (no point could be read from the output), "error"
(the engine call failed; counted against accuracy). Items whose image is missing or unreadable are reported
as problems and skipped, so they are not in the denominator.

When the image on disk is not the size the annotation says (`img_size`, e.g. a downscaled copy), the box is
scaled to the image so the test stays the same in relative terms (as the official evaluation, which divides
both by the image size).

Parallelism: threads sharing one engine. An in-process model serialises `generate` behind its own lock, so
one copy serves all workers (a copy per process would multiply memory and load time); the threads overlap
image decoding, preprocessing and parsing with generation, and against a remote server (vLLM, SGLang,
`visagent serve`) they are concurrent requests the server batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from engine.api import Engine, GenerationConfig
from engine.errors import EngineError
from visagent.grounding.data import Box, GroundingItem, LoadProblem
from visagent.grounding.predict import GroundingResult, ground, point_in_box
from visagent.loop.pointing import uses_head

BREAKDOWNS: tuple[str, ...] = ("ui_type", "group", "platform", "application")


@dataclass
class ItemOutcome:
    """One scored item: `box` is the box tested (image pixels, scaled when the image size differs from the
    annotation's); `result` is None only when the engine failed (`error` says how)."""

    item: GroundingItem
    correctness: str
    box: Box
    image_path: str
    result: GroundingResult | None = None
    error: str | None = None

    @property
    def written_correct(self) -> bool | None:
        """With the point from the model's pointing head: whether the point the text wrote was inside too
        (None when the point is the written one, or there is none)."""
        if self.result is None or self.result.point_source != "head" or self.result.written is None:
            return None
        return point_in_box(self.result.written, self.box)

    def to_dict(self) -> dict[str, Any]:
        data = self.item.to_dict()
        data.update({"correctness": self.correctness, "box_tested": [round(v, 2) for v in self.box],
                     "image_path": self.image_path, "error": self.error, "written_correct": self.written_correct})
        data["prediction"] = None if self.result is None else self.result.to_dict()
        return data


@dataclass
class GroundingReport:
    """All scored items (in input order), the skipped files/rows/images, and the aggregates."""

    model: str
    outcomes: list[ItemOutcome] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    flavours: dict[str, tuple[str, str]] = field(default_factory=dict)
    workers: int = 1
    wall_s: float = 0.0

    @property
    def accuracy(self) -> float:
        return _rate(self.outcomes)

    def count(self, correctness: str) -> int:
        return sum(o.correctness == correctness for o in self.outcomes)

    @property
    def mean_latency_s(self) -> float:
        times = [o.result.latency_s for o in self.outcomes if o.result is not None]
        return sum(times) / len(times) if times else 0.0

    def breakdown(self, key: str) -> dict[str, dict[str, float | int]]:
        """{value of item.<key>: {"total", "correct", "wrong_format", "accuracy"}} (key: ui_type, group, ...)."""
        out: dict[str, dict[str, float | int]] = {}
        for value in sorted({getattr(o.item, key) for o in self.outcomes}):
            group = [o for o in self.outcomes if getattr(o.item, key) == value]
            out[value] = {"total": len(group), "correct": sum(o.correctness == "correct" for o in group),
                          "wrong_format": sum(o.correctness == "wrong_format" for o in group),
                          "accuracy": _rate(group)}
        return out

    @property
    def head_items(self) -> int:
        """Items whose point came from the model's pointing head (visagent/loop/pointing.py)."""
        return sum(o.result is not None and o.result.point_source == "head" for o in self.outcomes)

    @property
    def written_only_correct(self) -> int:
        """Correct items had every point been the written one (the head's items judged by their `written`)."""
        return sum(o.written_correct if o.written_correct is not None else o.correctness == "correct"
                   for o in self.outcomes)

    def misses(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes if o.correctness != "correct"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "total": len(self.outcomes), "correct": self.count("correct"),
            "accuracy": self.accuracy, "wrong": self.count("wrong"), "wrong_format": self.count("wrong_format"),
            "errors": self.count("error"), "skipped": len(self.problems),
            "head_points": self.head_items, "written_only_correct": self.written_only_correct,
            "mean_latency_s": round(self.mean_latency_s, 4), "workers": self.workers, "wall_s": round(self.wall_s, 3),
            **{f"per_{key}": self.breakdown(key) for key in BREAKDOWNS},
            "flavours": {f: {"flavour": fl, "reason": why} for f, (fl, why) in self.flavours.items()},
            "problems": [p.to_dict() for p in self.problems],
            "items": [o.to_dict() for o in self.outcomes],
        }

    def summary_table(self) -> str:
        """Plain text: one block per breakdown (ui_type, group, platform, application), then the overall line."""
        head = f"{'':<34} {'items':>6} {'correct':>8} {'accuracy':>8} {'wrong_fmt':>9}"
        lines = [head, "-" * len(head)]
        for key in BREAKDOWNS:
            rows = self.breakdown(key)
            if list(rows) == ["unknown"]:
                continue
            for value, row in rows.items():
                lines.append(f"{(key + ':' + value)[:34]:<34} {row['total']:>6} {row['correct']:>8} "
                             f"{row['accuracy']:>8.1%} {row['wrong_format']:>9}")
            lines.append("-" * len(head))
        lines.append(f"{'overall':<34} {len(self.outcomes):>6} {self.count('correct'):>8} {self.accuracy:>8.1%} "
                     f"{self.count('wrong_format'):>9}")
        if self.head_items:
            lines.append(f"points from the model's pointing head on {self.head_items} items; the written points "
                         f"alone: {self.written_only_correct} correct "
                         f"({self.written_only_correct / max(1, len(self.outcomes)):.1%})")
        lines.append(f"mean latency {self.mean_latency_s:.3f} s; engine errors {self.count('error')}; "
                     f"skipped {len(self.problems)}; wall {self.wall_s:.1f} s with {self.workers} worker(s); "
                     f"model {self.model}")
        return "\n".join(lines)


def evaluate_grounding(
    engine: Engine,
    items: Sequence[GroundingItem],
    images_dir: str | Path,
    *,
    workers: int = 1,
    config: GenerationConfig | None = None,
    prompt_style: str = "auto",
    point_from: str = "auto",
    model: str = "",
    on_item: Callable[[ItemOutcome | None, LoadProblem | None], None] | None = None,
    cancel: threading.Event | None = None,
) -> GroundingReport:
    """Ground every item on `workers` threads sharing `engine`; returns the report (outcomes in input order).

    Images are `images_dir / item.img_filename`. `on_item(outcome, problem)` is called from the worker thread
    after each item (exactly one of the two is set): progress bars, dashboards. Setting `cancel` skips items
    not yet started. `point_from`: visagent/loop/pointing.py (with the head, each outcome also says whether the
    written point was inside). Raises ValueError for workers < 1; ConfigError from `ground` (bad prompt style
    or point source). An
    engine failure on one item is recorded as that item's "error", not raised.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    uses_head(engine.info, point_from)  # a bad source fails once, here, not as one error per item
    root = Path(images_dir).expanduser()
    report = GroundingReport(model=model, workers=workers)
    started = time.perf_counter()

    def one(item: GroundingItem) -> ItemOutcome | LoadProblem | None:
        if cancel is not None and cancel.is_set():
            return None
        done: ItemOutcome | LoadProblem = _score(engine, item, root, config, prompt_style, point_from)
        if on_item is not None:
            on_item(done if isinstance(done, ItemOutcome) else None, done if isinstance(done, LoadProblem) else None)
        return done

    if workers == 1:
        done = [one(item) for item in items]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ground") as pool:
            done = list(pool.map(one, items))
    for entry in done:
        if isinstance(entry, ItemOutcome):
            report.outcomes.append(entry)
        elif isinstance(entry, LoadProblem):
            report.problems.append(entry)
    report.wall_s = time.perf_counter() - started
    return report


def _score(engine: Engine, item: GroundingItem, root: Path, config: GenerationConfig | None,
           prompt_style: str, point_from: str = "auto") -> ItemOutcome | LoadProblem:
    path = root / item.img_filename
    try:
        with Image.open(path) as img:
            image = img.convert("RGB")
    except FileNotFoundError:
        return LoadProblem(item.file, item.row, f"image not found: {path}")
    except (OSError, UnidentifiedImageError) as exc:
        return LoadProblem(item.file, item.row, f"cannot read image {path}: {exc}")
    box = scaled_box(item, image.size)
    try:
        result = ground(engine, image, item.instruction, platform=item.prompt_platform, config=config,
                        prompt_style=prompt_style, point_from=point_from)
    except EngineError as exc:
        return ItemOutcome(item, "error", box, str(path), None, f"engine failed: {exc}")
    if result.point is None:
        return ItemOutcome(item, "wrong_format", box, str(path), result, result.error)
    return ItemOutcome(item, "correct" if point_in_box(result.point, box) else "wrong", box, str(path), result)


def scaled_box(item: GroundingItem, image_size: tuple[int, int]) -> Box:
    """`item.bbox` in pixels of an image of `image_size` (scaled when the annotation's img_size differs)."""
    if item.img_size is None or tuple(item.img_size) == tuple(image_size):
        return item.bbox
    fx, fy = image_size[0] / item.img_size[0], image_size[1] / item.img_size[1]
    x1, y1, x2, y2 = item.bbox
    return (x1 * fx, y1 * fy, x2 * fx, y2 * fy)


def _rate(outcomes: Sequence[ItemOutcome]) -> float:
    return sum(o.correctness == "correct" for o in outcomes) / len(outcomes) if outcomes else 0.0
