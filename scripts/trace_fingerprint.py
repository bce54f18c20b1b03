"""Fingerprint of the sim's oracle runs, for checking that a change to the loop changed no behaviour.

Runs the OracleEngine through every sim scenario at scales 1.0 and 1.5 and writes one JSON object: per run, its
status, its step records without wall-clock fields, and the sha256 of every trace screenshot's decoded pixels
(mode, size and pixels: the PNG bytes themselves may differ between runs of the same code, as ISA-L's deflate
does not always pick the same matches; the pixels a decoder reads never do). Two checkouts that behave the same
give equal fingerprints:

    PYTHONPATH=/path/to/old .venv/bin/python scripts/trace_fingerprint.py > /tmp/old.json
    PYTHONPATH=. .venv/bin/python scripts/trace_fingerprint.py > /tmp/new.json
    .venv/bin/python scripts/trace_fingerprint.py --compare /tmp/old.json /tmp/new.json

`--compare` prints each difference (at most 20) and a last line with the counts; exits 1 when they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Fields that differ from run to run on the same code: wall-clock times (the settle wait, on the sim's virtual
#: clock, stays) and the trace's folder name.
WALL_CLOCK = {"t", "trace", "execute_s", "settle_capture_s", "total", "capture", "trace_wait", "model", "execute",
              "settle_capture", "record"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def fingerprint(keep: str | None = None) -> dict[str, Any]:
    from visagent.core.trace import read_trace
    from visagent.loop.agent import Agent, AgentConfig
    from visagent.loop.scripted import OracleEngine
    from visagent.screen.simulated import SimExecutor
    from visagent.sim.scenarios import load_scenarios

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        for scenario in sorted(load_scenarios(), key=lambda s: s.id):
            for scale in (1.0, 1.5):
                executor = SimExecutor(scenario.make_world(0), scale=scale)
                engine = OracleEngine(scenario, lambda ex=executor: ex.world, geometry=executor.geometry)
                config = AgentConfig(max_steps=scenario.max_steps * 4 + 10, loop_limit=6)
                result = Agent(engine, executor, config, trace_root=tmp).run(scenario.instruction_for(executor.world))
                pngs = {p.name: _pixels_hash(p) for p in sorted(Path(result.trace_dir).glob("*.png"))}
                out[f"{scenario.id}@{scale}"] = {"status": result.status, "trace": Path(result.trace_dir).name,
                                                 "steps": _strip(read_trace(result.trace_dir).steps), "pngs": pngs}
    return out


def _pixels_hash(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return hashlib.sha256(f"{image.mode} {image.size}".encode() + image.tobytes()).hexdigest()


def _differences(a: Any, b: Any, path: str) -> list[str]:
    if type(a) is not type(b):
        return [f"{path}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]
    if isinstance(a, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="compare two fingerprints")
    parser.add_argument("--keep", metavar="DIR", help="write the traces under DIR (default: a temporary folder)")
    args = parser.parse_args()
    if not args.compare:
        print(json.dumps(fingerprint(args.keep), sort_keys=True))
        return 0
    old, new = (_strip(json.loads(Path(p).read_text())) for p in args.compare)
    found = _differences(old, new, "")
    for line in found[:20]:
        print(line)
    steps = sum(len(run["steps"]) for run in old.values())
    pngs = sum(len(run["pngs"]) for run in old.values())
    print(f"{len(old)} runs, {steps} steps, {pngs} screenshots: {len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
