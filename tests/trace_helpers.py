"""Helpers shared by the tests that read recorded traces (replay, export): break a copied trace on purpose."""

from __future__ import annotations

from pathlib import Path


def damage_trace(trace: Path, damage: str) -> None:
    """Break the trace folder `trace` in place: "torn" cuts the last 40 bytes off trace.jsonl, "png" deletes
    step_002.png, "meta" deletes meta.json. Raises ValueError for another `damage`."""
    if damage == "torn":
        data = (trace / "trace.jsonl").read_bytes()
        (trace / "trace.jsonl").write_bytes(data[: len(data) - 40])
    elif damage == "png":
        (trace / "step_002.png").unlink()
    elif damage == "meta":
        (trace / "meta.json").unlink()
    else:
        raise ValueError(f"unknown damage {damage!r}; use torn, png or meta")
