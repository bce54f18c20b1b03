"""Helpers shared by the tests that read recorded traces (replay, export): break a copied trace on purpose."""

from __future__ import annotations

import json
from pathlib import Path


def damage_trace(trace: Path, damage: str) -> None:
    """Break the trace folder `trace` in place: "torn" cuts the last 40 bytes off trace.jsonl, "png" deletes
    step_002.png, "meta" deletes meta.json, "actions" makes the first step's `actions` an object, "escape"
    points the first step's `screenshot` at `../../outside.png`. Raises ValueError for another `damage`."""
    if damage in ("actions", "escape"):
        lines = (trace / "trace.jsonl").read_text(encoding="utf-8").splitlines()
        first = next(i for i, line in enumerate(lines) if json.loads(line).get("type") == "step")
        rec = json.loads(lines[first])
        if damage == "actions":
            rec["actions"] = {"action": "left_click", "coordinate": [1, 1]}
        else:
            rec["screenshot"] = "../../outside.png"
        lines[first] = json.dumps(rec)
        (trace / "trace.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif damage == "torn":
        data = (trace / "trace.jsonl").read_bytes()
        (trace / "trace.jsonl").write_bytes(data[: len(data) - 40])
    elif damage == "png":
        (trace / "step_002.png").unlink()
    elif damage == "meta":
        (trace / "meta.json").unlink()
    else:
        raise ValueError(f"unknown damage {damage!r}; use torn, png, meta, actions or escape")
