"""Benchmark: episode wall time with settle detection vs a fixed 1 s sleep after every action.

UI-TARS and Agent-S sleep a fixed time (1 s) after each action; visagent waits until the screen stops
changing (visagent.screen.settle.SettleDetector). Both modes run the state-based oracle (visagent.sim.oracle) on
animated sim scenarios whose world runs on a REAL-TIME clock (animations, spinners and gesture holds take
real seconds), so the measured time is real wall time: the executor-side cost of an episode (capture, act,
wait), excluding model inference, which is the same in both modes. The oracle acts on the screen it finds;
when it finds the world still moving it emits `wait` (counted, and its time too), so a settle that returned
too early costs time here instead of being hidden. Success is the scenario's own predicate.

Prints a table and, last, one JSON line. Usage: python bench/settle.py [--scenarios ID,ID] [--sleep 1.0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from visagent.sim.scenarios import get_scenario
from visagent.screen.settle import SettleDetector
from visagent.sim.clock import VirtualClock
from visagent.sim.oracle import next_action, solve

#: Scenarios whose episodes include page slides, dialogs or list spinners (oracle emits waits when too fast).
DEFAULT_SCENARIOS = (
    "desktop-files-delete", "desktop-files-rename", "desktop-notes-write-save", "phone-files-delete",
    "phone-messages-send", "phone-settings-device-name", "phone-settings-bluetooth-on", "phone-shop-add",
)


class RealTimeClock(VirtualClock):
    """The sim's clock driven by wall time: now() is monotonic seconds since creation; advance() sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance({seconds}))")
        time.sleep(seconds)


def run_episode(scenario_id: str, mode: str, fixed_sleep_s: float, detector: SettleDetector) -> dict:
    """One oracle episode; mode "settle" or "fixed". Returns wall time, steps, waits and success."""
    sc = get_scenario(scenario_id)
    clock = RealTimeClock()
    world = sc.make_world(clock=clock)
    steps = waits = 0
    settle_total = 0.0
    start = time.monotonic()
    for _ in range(sc.max_steps * 4 + 20):
        world.render()  # the screenshot an agent would send to the model
        action = next_action(sc, world)
        if action.action == "terminate":
            break
        if action.action == "wait":
            waits += 1
        before = world.render()
        world.apply(action)
        steps += 1
        if mode == "settle":
            result = detector.wait(world.render, clock.now, time.sleep, before)
            settle_total += result.settle_s
        else:
            time.sleep(fixed_sleep_s)
    wall = time.monotonic() - start
    return {"scenario": scenario_id, "mode": mode, "wall_s": round(wall, 3), "steps": steps, "waits": waits,
            "success": sc.is_success(world), "settle_s": round(settle_total, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS))
    ap.add_argument("--sleep", type=float, default=1.0, help="the fixed sleep to compare against (s)")
    ap.add_argument("--interval", type=float, default=0.05, help="settle capture interval (s)")
    ap.add_argument("--consecutive", type=int, default=2, help="settle: quiet comparisons in a row")
    args = ap.parse_args()
    detector = SettleDetector(consecutive=args.consecutive, interval_s=args.interval, max_wait_s=5.0)
    ids = [sid for sid in args.scenarios.split(",") if sid]
    for sid in ids:  # warm-up on virtual time: font and icon caches, so neither mode pays them
        sc = get_scenario(sid)
        solve(sc, sc.make_world())
    rows = []
    print(f"{'scenario':<30} {'steps':>5} {'settle s':>9} {'ok':>3} {'waits':>5} {'fixed s':>8} {'ok':>3} "
          f"{'waits':>5} {'speedup':>7}")
    for sid in ids:
        s = run_episode(sid, "settle", args.sleep, detector)
        f = run_episode(sid, "fixed", args.sleep, detector)
        speedup = f["wall_s"] / s["wall_s"] if s["wall_s"] else float("nan")
        rows.append({"scenario": sid, "settle": s, "fixed": f, "speedup": round(speedup, 2)})
        print(f"{sid:<30} {s['steps']:>5} {s['wall_s']:>9.2f} {'y' if s['success'] else 'n':>3} {s['waits']:>5} "
              f"{f['wall_s']:>8.2f} {'y' if f['success'] else 'n':>3} {f['waits']:>5} {speedup:>6.2f}x")
    settle_total = sum(r["settle"]["wall_s"] for r in rows)
    fixed_total = sum(r["fixed"]["wall_s"] for r in rows)
    settle_steps = sum(r["settle"]["steps"] for r in rows)
    fixed_steps = sum(r["fixed"]["steps"] for r in rows)
    print(f"{'total':<30} {settle_steps:>5} {settle_total:>9.2f} {'':>3} {'':>5} {fixed_total:>8.2f}")
    summary = {
        "bench": "settle", "fixed_sleep_s": args.sleep, "detector": repr(detector), "scenarios": len(rows),
        "settle_total_wall_s": round(settle_total, 2), "fixed_total_wall_s": round(fixed_total, 2),
        "speedup_total": round(fixed_total / settle_total, 2) if settle_total else None,
        "speedup_median": round(statistics.median(r["speedup"] for r in rows), 2) if rows else None,
        "settle_success": sum(r["settle"]["success"] for r in rows),
        "fixed_success": sum(r["fixed"]["success"] for r in rows),
        "settle_steps": settle_steps, "fixed_steps": fixed_steps,
        "settle_waits": sum(r["settle"]["waits"] for r in rows),
        "fixed_waits": sum(r["fixed"]["waits"] for r in rows),
        "mean_settle_per_step_s": round(sum(r["settle"]["settle_s"] for r in rows) / max(1, settle_steps), 3),
        "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
