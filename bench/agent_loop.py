"""Agent-loop overhead: seconds per step spent outside the model, per phase, on oracle runs in the sim.

The OracleEngine answers at once, so what remains is the loop's own cost: capture (+ settle at the first
step), prompt building, parsing and conversion, execution, settle detection after the action, and the
trace (screenshot PNG + fsynced line). Needs the trace for the per-phase columns. Each scenario is solved `--rounds` times; medians are reported.

    .venv/bin/python bench/agent_loop.py [--rounds 3] [--scenarios ID ...] [--no-trace]

Prints a table, then one JSON line:
{"bench": "agent_loop", "results": [{"scenario", "steps", "s_per_step", "capture", "model", "execute",
 "settle", "other"}...], "median_s_per_step": x}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from visagent.agent import Agent, AgentConfig
from visagent.executors.sim import SimExecutor
from visagent.scenarios import get_scenario
from visagent.scripted import OracleEngine
from visagent.trace import read_trace

DEFAULT = ["desktop-settings-wifi-off", "desktop-contacts-add", "phone-settings-device-name", "phone-calculator-add"]
PHASES = ("capture", "model", "execute", "settle")


def one_run(scenario_id: str, trace_root: str | None) -> dict[str, float]:
    scenario = get_scenario(scenario_id)
    executor = SimExecutor(scenario.make_world(0))
    engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
    config = AgentConfig(max_steps=scenario.max_steps * 4 + 10, loop_limit=6)
    agent = Agent(engine, executor, config, trace_root=trace_root)
    started = time.perf_counter()
    result = agent.run(scenario.instruction_for(executor.world))
    wall = time.perf_counter() - started
    if result.status != "success":
        raise SystemExit(f"{scenario_id}: the oracle run ended {result.status}: {result.reason}")
    out = {"steps": float(result.steps), "s_per_step": wall / result.steps}
    if result.trace_dir is not None:
        steps = read_trace(result.trace_dir).steps
        for phase in PHASES:
            out[phase] = sum(s["timings"].get(phase, 0.0) for s in steps) / len(steps)
        # the rest of each step's wall time: settle captures (their wait is virtual), prompt building,
        # parsing, the PNG + fsynced jsonl writes, events
        out["other"] = sum(s["timings"]["total"] - sum(s["timings"].get(p, 0.0) for p in PHASES
                                                        if p != "settle") for s in steps) / len(steps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", nargs="*", default=DEFAULT)
    parser.add_argument("--no-trace", action="store_true", help="run without writing traces")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for sid in args.scenarios:
            runs = [one_run(sid, None if args.no_trace else tmp) for _ in range(args.rounds)]
            row = {"scenario": sid}
            for key in runs[0]:
                row[key] = round(statistics.median(r[key] for r in runs), 4)
            results.append(row)
    keys = [k for k in ("steps", "s_per_step", *PHASES, "other") if k in results[0]]
    print(f"{'scenario':32}" + "".join(f"{k:>11}" for k in keys))
    for row in results:
        print(f"{row['scenario']:32}" + "".join(f"{row[k]:>11.4f}" for k in keys))
    print("(seconds per step; settle is time waited on the sim's virtual clock, its captures are in other)")
    print(json.dumps({"bench": "agent_loop", "results": results,
                      "median_s_per_step": statistics.median(r["s_per_step"] for r in results)}))


if __name__ == "__main__":
    main()
