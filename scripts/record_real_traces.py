"""Re-record the real-desktop traces under scenarios/real-desktop/traces/ that the replay tests re-execute.

Each is a real run: the scenario's scripted oracle through the real Agent and DesktopExecutor on the
scenario's own Xvfb (as `visagent eval --world real-desktop --model oracle` runs it). To keep the repository
small, the screenshots are stored as 64-colour palette PNGs (about a quarter of the size); replay compares
grayscale thumbnails with the real-rendering tolerance (docs/real-desktop.md), which this stays far below.

    .venv/bin/python scripts/record_real_traces.py [SCENARIO_ID ...]   # default: every real-desktop scenario
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

from visagent.loop.agent import AgentConfig
from visagent.traces.evaluate import oracle_factory
from visagent.realworld.registry import get_real_scenario, real_scenarios

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scenarios" / "real-desktop" / "traces"
PALETTE_COLOURS = 64


def compact(png: Path) -> None:
    """Re-encode a screenshot as a palette PNG (lossy in colour, not in size or layout)."""
    with Image.open(png) as img:
        small = img.convert("RGB").quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


def main(ids: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    scenarios = [get_real_scenario(i) for i in ids] if ids else real_scenarios()
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            config = AgentConfig(max_steps=scenario.max_steps)
            outcome = scenario.run_episode(0, oracle_factory, config, trace_dir=tmp)
            if not outcome.success or outcome.trace is None:
                print(f"{scenario.id}: not solved ({outcome.status}: {outcome.reason})", file=sys.stderr)
                return 1
            target = OUT / scenario.id
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(outcome.trace, target)
            for png in target.glob("*.png"):
                compact(png)
            size = sum(p.stat().st_size for p in target.iterdir())
            print(f"{target.relative_to(ROOT)}: {outcome.steps} steps, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
