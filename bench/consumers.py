"""Cost of the trace consumers on oracle traces: report, replay, export, and eval throughput by workers.

Records oracle runs of a few sim scenarios into a temporary folder, then times:
- `write_report` per trace (seconds, HTML size in KiB, KiB per step),
- `replay_trace` per trace (seconds per replayed step),
- `export_records` (records per second),
- `evaluate` with the oracle at 1 and 2 worker threads (episodes per second).

    .venv/bin/python bench/consumers.py [--scenarios ID ...] [--seeds 2]

Prints a table, then one JSON line: {"bench": "consumers", ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from visagent.traces.evaluate import evaluate, oracle_factory
from visagent.traces.export import export_records
from visagent.traces.replay import replay_trace
from visagent.traces.report import write_report
from visagent.sim.scenarios import get_scenario
from visagent.core.trace import read_trace

DEFAULT = ["desktop-settings-wifi-off", "desktop-settings-language", "phone-settings-brightness"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=DEFAULT)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    scenarios = [get_scenario(s) for s in args.scenarios]
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        evals = {}
        for workers in (1, 2):
            start = time.perf_counter()
            report = evaluate(scenarios, oracle_factory, seeds=seeds, workers=workers, trace_dir=root / f"w{workers}")
            evals[workers] = {"episodes": len(report.episodes), "wall_s": time.perf_counter() - start,
                              "success_rate": report.success_rate}
        traces = [Path(e.trace) for e in report.episodes]
        rows = []
        for trace in traces:
            steps = len(read_trace(trace).steps)
            t = time.perf_counter()
            html = write_report(trace, root / f"{trace.name}.html")
            report_s = time.perf_counter() - t
            t = time.perf_counter()
            replay = replay_trace(trace, out_dir=root / "replay")
            replay_s = time.perf_counter() - t
            rows.append({"trace": trace.name, "steps": steps, "report_s": report_s,
                         "report_kib": html.stat().st_size / 1024, "replay_s": replay_s, "replay_ok": replay.ok})
        t = time.perf_counter()
        records = list(export_records(traces, relative_to=root))
        export_s = time.perf_counter() - t

    print(f"{'trace':<26} {'steps':>5} {'report s':>9} {'KiB':>7} {'KiB/step':>8} {'replay s':>9} {'ok':>3}")
    for r in rows:
        print(f"{r['trace']:<26} {r['steps']:>5} {r['report_s']:>9.3f} {r['report_kib']:>7.0f} "
              f"{r['report_kib'] / r['steps']:>8.0f} {r['replay_s']:>9.3f} {'yes' if r['replay_ok'] else 'NO':>3}")
    print(f"export: {len(records)} records in {export_s:.3f} s ({len(records) / export_s:.0f} records/s)")
    for workers, e in evals.items():
        print(f"eval oracle, {workers} worker(s): {e['episodes']} episodes in {e['wall_s']:.2f} s "
              f"({e['episodes'] / e['wall_s']:.2f} episodes/s), success {e['success_rate']:.0%}")
    total_steps = sum(r["steps"] for r in rows)
    result = {
        "bench": "consumers",
        "report_s_per_step": sum(r["report_s"] for r in rows) / total_steps,
        "report_kib_per_step": sum(r["report_kib"] for r in rows) / total_steps,
        "replay_s_per_step": sum(r["replay_s"] for r in rows) / total_steps,
        "replays_ok": all(r["replay_ok"] for r in rows),
        "export_records_per_s": len(records) / export_s,
        "eval_episodes_per_s": {str(w): e["episodes"] / e["wall_s"] for w, e in evals.items()},
        "median_report_kib": statistics.median(r["report_kib"] for r in rows),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
