"""Benchmark: how fast the sim world renders (per platform and app) and how fast oracle episodes run.

Prints a table and, last, one JSON line. Usage: python bench/sim_render.py [--frames N]
"Fresh" frames are re-rendered after a state change (no frame cache); "cached" frames repeat an unchanged
screen; "episode" runs each scenario's oracle once, rendering after every action like a trace would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from visagent.sim.scenarios import load_scenarios
from visagent.sim import SimWorld
from visagent.sim.apps import APP_CLASSES
from visagent.sim.oracle import next_action


def bench_fresh(platform: str, app: str, frames: int) -> float:
    w = SimWorld(platform, seed=1, open_app=app)
    w.clock.advance(2.0)
    w.render()
    times = []
    for _ in range(frames):
        w.version += 1  # as if an input event changed something
        t = time.perf_counter()
        w.render()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_cached(platform: str, frames: int) -> float:
    w = SimWorld(platform, seed=1, open_app="settings")
    w.clock.advance(2.0)
    w.render()
    t = time.perf_counter()
    for _ in range(frames):
        w.render()
    return (time.perf_counter() - t) / frames * 1000


def bench_episodes() -> tuple[int, int, float]:
    frames = steps = 0
    t = time.perf_counter()
    for sc in load_scenarios():
        w = sc.make_world()
        for _ in range(sc.max_steps * 4 + 20):
            w.render()
            frames += 1
            a = next_action(sc, w)
            if a.action == "terminate":
                break
            w.apply(a)
            steps += 1
    return frames, steps, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    rows = []
    print(f"{'platform':<8}  {'app':<11}  {'fresh ms/frame':>14}")
    for platform in ("desktop", "phone"):
        for app in APP_CLASSES:
            ms = bench_fresh(platform, app, args.frames)
            rows.append({"platform": platform, "app": app, "fresh_ms": round(ms, 2)})
            print(f"{platform:<8}  {app:<11}  {ms:14.2f}")
    cached = {p: round(bench_cached(p, args.frames * 5), 3) for p in ("desktop", "phone")}
    for p, ms in cached.items():
        print(f"{p:<8}  {'(cached)':<11}  {ms:14.3f}")
    frames, steps, secs = bench_episodes()
    print(f"episodes: {frames} frames, {steps} actions in {secs:.2f} s = {frames / secs:.0f} frames/s")
    summary = {
        "bench": "sim_render",
        "desktop_fresh_ms_median": round(statistics.median(r["fresh_ms"] for r in rows if r["platform"] == "desktop"), 2),
        "phone_fresh_ms_median": round(statistics.median(r["fresh_ms"] for r in rows if r["platform"] == "phone"), 2),
        "desktop_fresh_ms_max": max(r["fresh_ms"] for r in rows if r["platform"] == "desktop"),
        "phone_fresh_ms_max": max(r["fresh_ms"] for r in rows if r["platform"] == "phone"),
        "cached_ms": cached, "episode_frames": frames, "episode_actions": steps,
        "episode_frames_per_s": round(frames / secs, 1), "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
