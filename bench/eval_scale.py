"""Sim-world oracle episodes per minute: the threaded eval vs `eval --ray` at 1, 2 and 4 Ray workers.

Each Ray row starts a fresh single-node Ray here with that many CPUs (one worker process per CPU), warms its
workers (process start and `import visagent` are counted apart, as `start_s`), then runs the same episodes as the
threaded rows through visagent.traces.ray_eval. Ray's per-episode overhead is measured two ways: the round trip of an
empty task (submit, schedule, run, return), and the 1-worker Ray eval's time per episode minus the 1-thread
eval's. Traces are off unless --traces (then Ray ships each one back, as `--ray-traces ship` does).

    PYTHONPATH=. python bench/eval_scale.py --episodes 8
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("desktop-settings-wifi-off", "phone-settings-brightness", "desktop-settings-language",
             "desktop-settings-dark-mode")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=8, help="episodes per row (scenarios x seeds; default 8)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    ap.add_argument("--traces", action="store_true", help="keep traces (Ray ships them back to this process)")
    ap.add_argument("--noop-tasks", type=int, default=50, help="empty tasks for the round-trip overhead")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vgbench-", dir="/tmp")
    os.environ.setdefault("RAY_TMPDIR", tmp)  # this bench's Ray files (and address file) stay in its own dir
    import ray

    from visagent.traces.evaluate import evaluate, oracle_factory
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate
    from visagent.sim.scenarios import get_scenario

    scenarios = [get_scenario(s) for s in SCENARIOS]
    seeds = list(range(-(-args.episodes // len(scenarios))))
    jobs = [(sc, seed) for seed in seeds for sc in scenarios][: args.episodes]
    picked = sorted({sc.id for sc, _ in jobs})
    chosen = [sc for sc in scenarios if sc.id in picked]
    n = len(chosen) * len(seeds)
    rows = []

    def traces(label: str) -> Path | None:
        return Path(tmp) / label if args.traces else None

    for w in args.workers:
        t0 = time.perf_counter()
        report = evaluate(chosen, oracle_factory, seeds=seeds, workers=w, trace_dir=traces(f"threads-{w}"))
        wall = time.perf_counter() - t0
        rows.append({"mode": "threads", "workers": w, "episodes": len(report.episodes), "wall_s": round(wall, 2),
                     "episodes_per_min": round(60 * len(report.episodes) / wall, 1), "start_s": 0.0,
                     "success_rate": report.success_rate})

    noop_ms = None
    for w in args.workers:
        t0 = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, logging_level="ERROR", log_to_driver=False)

        @ray.remote(num_cpus=1)
        def warm() -> int:
            import visagent.traces.ray_eval

            assert visagent.traces.ray_eval.run_job  # what an episode imports first

            time.sleep(0.5)  # hold the CPU so each warm-up lands on its own worker process
            return os.getpid()

        ray.get([warm.remote() for _ in range(w)])
        start = time.perf_counter() - t0
        if w == 1:
            @ray.remote(num_cpus=1)
            def noop() -> None:
                return None

            ray.get(noop.remote())
            times = []
            for _ in range(args.noop_tasks):
                t = time.perf_counter()
                ray.get(noop.remote())
                times.append(time.perf_counter() - t)
            noop_ms = statistics.median(times) * 1000
        t0 = time.perf_counter()
        report = ray_evaluate(chosen, EngineSpec(policy="oracle"), seeds=seeds, trace_dir=traces(f"ray-{w}"),
                              traces="ship")
        wall = time.perf_counter() - t0
        ray.shutdown()
        rows.append({"mode": "ray", "workers": w, "episodes": len(report.episodes), "wall_s": round(wall, 2),
                     "episodes_per_min": round(60 * len(report.episodes) / wall, 1), "start_s": round(start, 2),
                     "success_rate": report.success_rate})

    print(f"{'mode':<8} {'workers':>7} {'episodes':>8} {'wall s':>7} {'episodes/min':>12} {'start s':>7} {'success':>7}")
    for r in rows:
        print(f"{r['mode']:<8} {r['workers']:>7} {r['episodes']:>8} {r['wall_s']:>7.2f} {r['episodes_per_min']:>12.1f} "
              f"{r['start_s']:>7.2f} {r['success_rate']:>7.0%}")
    one = {r["mode"]: r for r in rows if r["workers"] == 1}
    per_episode_overhead = None
    if "threads" in one and "ray" in one:
        per_episode_overhead = round((one["ray"]["wall_s"] - one["threads"]["wall_s"]) / n, 3)
        print(f"Ray overhead per episode: {per_episode_overhead:+.3f} s (1 worker vs 1 thread); "
              f"empty task round trip {noop_ms:.1f} ms (median of {args.noop_tasks})")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, ray {ray.__version__}; "
          f"traces {'shipped' if args.traces else 'off'}")
    print(json.dumps({"bench": "eval_scale", "episodes": n, "rows": rows, "ray_overhead_s_per_episode":
                      per_episode_overhead, "noop_task_ms": None if noop_ms is None else round(noop_ms, 2),
                      "cpus": os.cpu_count(), "traces": args.traces}))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
