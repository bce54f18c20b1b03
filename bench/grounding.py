"""Cost of grounding evaluation around the model: sim export, annotation loading, and items per second of
`evaluate_grounding` with a scripted engine that answers instantly (image decode, prompt, parse, scoring) at
1, 2 and 4 worker threads, plus the misses page.

    .venv/bin/python bench/grounding.py [--seeds 1] [--screens 2]

Prints a table, then one JSON line: {"bench": "grounding", ...}. The model's own latency is not measured here
(`ground-eval` reports it as mean_latency_s; bench/engine_generate.py measures the engine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from visagent.grounding import evaluate_grounding, load_annotations
from visagent.grounding.misses_html import write_misses_html
from visagent.grounding.sim_export import export_sim_grounding
from visagent.loop.scripted import ScriptedEngine

# A fixed answer: the evaluation around the model is what is timed, not the model.
ANSWER = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
          "<parameter=coordinate>\n[500, 500]\n</parameter>\n</function>\n</tool_call>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--screens", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set"
        t0 = time.perf_counter()
        summary = export_sim_grounding(out, split="heldout", seeds=args.seeds, screens=args.screens)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        items = load_annotations(out / "annotations").items
        load_s = time.perf_counter() - t0
        rates = {}
        report = None
        for workers in (1, 2, 4):
            engine = ScriptedEngine([ANSWER], repeat_last=True, piece=10_000)
            t0 = time.perf_counter()
            report = evaluate_grounding(engine, items, out / "images", workers=workers)
            rates[workers] = len(items) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        write_misses_html(report, Path(tmp) / "misses.html")
        html_s = time.perf_counter() - t0
        misses = len(report.misses())
    rows = [("export (screens/s)", summary.screens / export_s), ("load annotations (items/s)", len(items) / load_s)]
    rows += [(f"evaluate, {w} worker(s) (items/s)", r) for w, r in rates.items()]
    rows.append(("misses page (misses/s)", misses / html_s if html_s else 0.0))
    print(f"{summary.items} items on {summary.screens} screens")
    print(f"{'stage':<34} {'rate':>10}")
    for name, rate in rows:
        print(f"{name:<34} {rate:>10.1f}")
    print(json.dumps({"bench": "grounding", "items": summary.items, "screens": summary.screens,
                      "export_screens_per_s": round(summary.screens / export_s, 2),
                      "load_items_per_s": round(len(items) / load_s, 1),
                      "eval_items_per_s": {str(w): round(r, 2) for w, r in rates.items()},
                      "misses_per_s": round(misses / html_s, 2) if html_s else None}))


if __name__ == "__main__":
    main()
