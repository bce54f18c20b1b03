"""Pixel-blind grounding baselines (`visagent.grounding.baselines`) on the sim grounding set a model is scored on.

    .venv/bin/python scripts/grounding_baselines.py --data work/data [--split heldout] [--seeds 3] [--screens 2]

DATA is a `visagent train-data` folder (or its records.jsonl); its grounding records carry `meta.label` and
`meta.bbox`. The set is `visagent scenarios export-grounding --split SPLIT` with the same seeds and screens (the
recipe's final evaluation samples the default one). Baselines: the screen's centre, a random element of the same
screen, the platform's and the label's most clicked place in DATA. Prints a table, then one JSON line:
{"script": "grounding_baselines", "items", "rows": [{"baseline", "inside", "rate"}], "labels_in_data"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


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
    from visagent.grounding.baselines import annotation_rows, baseline_hits
    from visagent.grounding.sim_export import export_sim_grounding

    with tempfile.TemporaryDirectory() as tmp:
        export_sim_grounding(tmp, split=args.split, seeds=args.seeds, screens=args.screens)
        rows = annotation_rows(Path(tmp) / "annotations")
    hits, known = baseline_hits(rows, records)
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
