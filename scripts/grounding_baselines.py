"""Grounding baselines that do not look at the pixels, on the sim grounding set a model is scored on.

A trained model's click-inside rate means little without them: the ninth session's models scored 18-21% on the
held-out set, which reads as "above chance" against a random element (8%) — and as "nothing beyond a memorised
position" against the label's most clicked place in the training records. Baselines, each a point per item:

- centre: the screen's centre;
- random element: the centre of an element of the same screen drawn at random (the expected rate, exact);
- platform prior: where grounding records of that platform (desktop / phone) were most often clicked in DATA;
- label prior: where records with the same label (same platform first, then any) were most often clicked in DATA
  (on a 1% grid of the screen); the screen's centre for labels DATA never names.

    .venv/bin/python scripts/grounding_baselines.py --data work/data [--split heldout] [--seeds 3] [--screens 2]

DATA is a `visagent train-data` folder (or its records.jsonl); its grounding records carry `meta.label` and
`meta.bbox`. The set is `visagent scenarios export-grounding --split SPLIT` with the same seeds and screens (the
recipe's final evaluation samples the default one). Prints a table, then one JSON line:
{"script": "grounding_baselines", "items", "rows": [{"baseline", "inside", "rate"}], "labels_in_data"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

Point = tuple[float, float]


def priors(records_file: Path) -> tuple[dict[tuple[str, str], Counter], dict[str, Counter], dict[str, Counter]]:
    """Click places (fractions of the screen, 1% grid) of DATA's grounding records by (platform, label), by label
    and by platform."""
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


def inside(box: list[float], x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def score(rows: list[dict], records_file: Path) -> tuple[dict[str, float], int]:
    """Inside counts per baseline (the random element's is an expectation) and how many items' labels DATA names."""
    by_key, by_label, by_platform = priors(records_file)
    screens: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        screens[row["img_filename"]].append(row)
    hits = {"centre": 0.0, "random element": 0.0, "platform prior": 0.0, "label prior": 0.0}
    known = 0
    for row in rows:
        (w, h), box = row["img_size"], row["bbox"]
        hits["centre"] += inside(box, w / 2, h / 2)
        others = screens[row["img_filename"]]
        hits["random element"] += sum(inside(box, (o["bbox"][0] + o["bbox"][2]) / 2, (o["bbox"][1] + o["bbox"][3]) / 2)
                                      for o in others) / len(others)
        platform = by_platform.get(row["platform"])
        if platform:
            fx, fy = platform.most_common(1)[0][0]
            hits["platform prior"] += inside(box, fx * w, fy * h)
        label = str(row.get("label", "")).strip().casefold()
        table = by_key.get((row["platform"], label)) or by_label.get(label)
        known += table is not None
        fx, fy = table.most_common(1)[0][0] if table else (0.5, 0.5)
        hits["label prior"] += inside(box, fx * w, fy * h)
    return hits, known


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a `visagent train-data` folder or its records.jsonl")
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--screens", type=int, default=2)
    args = ap.parse_args(argv)
    records = Path(args.data) / "records.jsonl" if Path(args.data).is_dir() else Path(args.data)
    if not records.is_file():
        print(f"grounding_baselines: no records at {records}; build them with `visagent train-data --out DIR`",
              file=sys.stderr)
        return 2
    from visagent.grounding.sim_export import export_sim_grounding

    with tempfile.TemporaryDirectory() as tmp:
        export_sim_grounding(tmp, split=args.split, seeds=args.seeds, screens=args.screens)
        rows = [row for f in sorted((Path(tmp) / "annotations").glob("*.json")) for row in json.loads(f.read_text())]
    hits, known = score(rows, records)
    table = [{"baseline": k, "inside": round(v, 1), "rate": round(v / len(rows), 3)} for k, v in hits.items()]
    print(f"{args.split} sim grounding set: {len(rows)} items; {known} with a label the data's grounding records name")
    print(f"{'baseline':<16} {'inside':>8} {'rate':>7}")
    for r in table:
        print(f"{r['baseline']:<16} {r['inside']:>8} {r['rate']:>7.1%}")
    print(json.dumps({"script": "grounding_baselines", "split": args.split, "items": len(rows), "rows": table,
                      "labels_in_data": known, "data": str(records)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
