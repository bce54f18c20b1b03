"""Pixel-blind grounding baselines for a sim grounding set, from a training data folder's grounding records.

A trained model's click-inside rate means little without them: the tiny models scored 18-21% on the held-out set,
which reads as "above chance" against a random element (8%), and as "no more than a memorised position" against
the label's most clicked place in the training records (22.6% with run 8's data). Each baseline is a point per item:

- centre: the screen's centre;
- random element: the centre of an element of the same screen drawn at random (the expected rate, exact);
- platform prior: where grounding records of that platform (desktop / phone) were most often clicked;
- label prior: where records with the same label (same platform first, then any) were most often clicked (on a 1%
  grid of the screen); the screen's centre for labels the records never name.

Rows are the sim export's annotation rows (`export_sim_grounding`: they carry `label` and `platform`).
`scripts/grounding_baselines.py` prints them for a data folder; the tiny recipe's model card quotes the label prior.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from visagent.grounding.predict import point_in_box

BASELINES = ("centre", "random element", "platform prior", "label prior")


Priors = tuple[dict[tuple[str, str], Counter], dict[str, Counter], dict[str, Counter]]


def click_priors(records_file: str | Path) -> Priors:
    """Click places (fractions of the screen, 1% grid) of a records file's grounding records by (platform, label),
    by label and by platform."""
    by_key: dict[tuple[str, str], Counter] = defaultdict(Counter)
    by_label: dict[str, Counter] = defaultdict(Counter)
    by_platform: dict[str, Counter] = defaultdict(Counter)
    with open(records_file, encoding="utf-8") as fh:
        for line in fh:
            meta = json.loads(line).get("meta") or {}
            if meta.get("kind") != "grounding" or not meta.get("bbox") or not meta.get("image_size"):
                continue
            (x1, y1, x2, y2), (w, h) = meta["bbox"], meta["image_size"]
            place = (round((x1 + x2) / 2 / w, 2), round((y1 + y2) / 2 / h, 2))
            label = str(meta.get("label", "")).strip().casefold()
            by_key[(meta["platform"], label)][place] += 1
            by_label[label][place] += 1
            by_platform[meta["platform"]][place] += 1
    return by_key, by_label, by_platform


def baseline_hits(rows: list[dict], records_file: str | Path,
                  screen_rows: list[dict] | None = None) -> tuple[dict[str, float], int]:
    """Inside counts per baseline over `rows` (the random element's is an expectation), and how many rows' labels
    the records name. `screen_rows`: every row of the set, when `rows` is a sample of it (the random element is
    drawn among all of a screen's elements, not the sampled ones)."""
    by_key, by_label, by_platform = click_priors(records_file)
    screens: dict[str, list[dict]] = defaultdict(list)
    for row in rows if screen_rows is None else screen_rows:
        screens[row["img_filename"]].append(row)
    hits = dict.fromkeys(BASELINES, 0.0)
    known = 0
    for row in rows:
        (w, h), box = row["img_size"], row["bbox"]
        hits["centre"] += point_in_box((w / 2, h / 2), box)
        others = screens[row["img_filename"]]
        hits["random element"] += sum(point_in_box(_centre(o["bbox"]), box) for o in others) / len(others)
        platform = by_platform.get(row["platform"])
        if platform:
            fx, fy = platform.most_common(1)[0][0]
            hits["platform prior"] += point_in_box((fx * w, fy * h), box)
        label = str(row.get("label", "")).strip().casefold()
        table = by_key.get((row["platform"], label)) or by_label.get(label)
        known += table is not None
        fx, fy = table.most_common(1)[0][0] if table else (0.5, 0.5)
        hits["label prior"] += point_in_box((fx * w, fy * h), box)
    return hits, known


def _centre(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def annotation_rows(annotations: str | Path) -> list[dict]:
    """The rows of every annotation file in a folder (the sim export's `annotations/`), in file-name order."""
    return [row for f in sorted(Path(annotations).glob("*.json")) for row in json.loads(f.read_text(encoding="utf-8"))]
