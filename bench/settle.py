"""Benchmark: episode wall time with settle detection vs a fixed 1 s sleep after every action.

UI-TARS and Agent-S sleep a fixed time (1 s) after each action; visagent waits until the screen stops
changing (visagent.screen.settle.SettleDetector). Both modes run the state-based oracle (visagent.sim.oracle) on
animated sim scenarios whose world runs on a REAL-TIME clock (animations, spinners and gesture holds take
real seconds), so the measured time is real wall time: the executor-side cost of an episode (capture, act,
wait), excluding model inference, which is the same in both modes. The oracle acts on the screen it finds;
when it finds the world still moving it emits `wait` (counted, and its time too), so a settle that returned
too early costs time here instead of being hidden. Success is the scenario's own predicate.

Prints a table and, last, one JSON line. Usage: python bench/settle.py [--scenarios ID,ID] [--sleep 1.0]

`--world real-desktop` runs every real-desktop scenario (visagent.realworld: real programs on a private Xvfb)
with its scripted oracle through the real desktop executor three times: with the desktop settle detector
(visagent.screen.desktop.default_desktop_settle, applied by the screen seam after each action as in a run),
and with fixed 1 s and 2 s sleeps after every action (the peers' defaults; `--sleeps` to change). Waiting
counts the settle (or the fixed sleep) after every action plus the oracle's own `wait` actions (it emits them
when a window it needs has not appeared yet, as an agent would). Success is the scenario's check on the
programs' real state. Each episode starts its own world; the world's start-up and the check are not counted.
Per app: median, 90th percentile and largest settle time of an action. `--apps mousepad,xterm` limits the
scenarios by program.
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


def run_real_episode(scenario, mode: str, fixed_sleep_s: float) -> dict:
    """One oracle episode of a real-desktop scenario: mode "settle" (the desktop detector) or "fixed"
    (no settle, `fixed_sleep_s` after every action). Returns waiting, wall time, steps, waits, success and the
    per-action settle times."""
    from visagent.realworld.world import OracleStream, RealExecutor
    from visagent.screen.desktop import default_desktop_settle
    from visagent.screen.seam import Screen

    world = scenario.make_world()
    executor = screen = None
    try:
        executor = RealExecutor(world, settle=default_desktop_settle() if mode == "settle" else False)
        screen = Screen.over(executor, settle=mode == "settle")  # the seam settles after actions, as in a run
        stream = OracleStream(scenario, world)
        steps = waits = 0
        waiting = 0.0
        settles: list[float] = []
        error = None
        start = time.monotonic()
        try:
            for _ in range(scenario.max_steps * 4 + 20):
                action = stream.next()
                if action.action == "terminate":
                    break
                result = screen.act(action)
                steps += 1
                if action.action == "wait":
                    waits += 1
                    waiting += result.execute_s  # the oracle's own wait, a step an agent would spend too
                if mode == "settle":
                    waiting += result.settle_s
                    settles.append(result.settle_s)
                else:
                    time.sleep(fixed_sleep_s)
                    waiting += fixed_sleep_s
        except Exception as exc:  # noqa: BLE001 - an oracle that gave up (a window never came) is a failure here
            error = f"{type(exc).__name__}: {exc}"
        wall = time.monotonic() - start
        try:
            success = bool(scenario.is_success(world)) and error is None
        except Exception as exc:  # noqa: BLE001
            success, error = False, error or f"check: {type(exc).__name__}: {exc}"
        return {"scenario": scenario.id, "app": scenario.apps[0], "mode": mode, "wall_s": round(wall, 3),
                "waiting_s": round(waiting, 3), "steps": steps, "waits": waits, "success": success,
                "settles": [round(x, 3) for x in settles], **({"error": error} if error else {})}
    finally:
        if executor is not None:
            screen.close()  # closes the executor, and with it the world
        else:
            world.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main_real(args: argparse.Namespace) -> None:
    from visagent.realworld.registry import real_scenarios

    sleeps = [float(x) for x in args.sleeps.split(",") if x]
    apps = {a for a in args.apps.split(",") if a} if args.apps else None
    ids = {i for i in args.scenarios.split(",") if i} if args.scenarios else None
    scenarios = [s for s in real_scenarios() if (apps is None or s.apps[0] in apps) and (ids is None or s.id in ids)]
    if not scenarios:
        raise SystemExit("bench/settle.py: no real-desktop scenario matches --apps/--scenarios")
    modes = [("settle", 0.0)] + [(f"fixed {x:g}s", x) for x in sleeps]
    head = f"{'scenario':<26} {'steps':>5}" + "".join(f" {m:>10} {'ok':>2} {'w':>2}" for m, _ in modes)
    print(head + "   (waiting s, success, oracle waits)")
    rows = []
    for sc in scenarios:
        row = {"scenario": sc.id, "app": sc.apps[0]}
        for name, sleep_s in modes:
            row[name] = run_real_episode(sc, "settle" if name == "settle" else "fixed", sleep_s)
        rows.append(row)
        line = f"{sc.id:<26} {row['settle']['steps']:>5}"
        for name, _ in modes:
            e = row[name]
            line += f" {e['waiting_s']:>10.2f} {'y' if e['success'] else 'n':>2} {e['waits']:>2}"
        print(line + "".join(f"  [{name}: {row[name]['error'][:80]}]" for name, _ in modes if "error" in row[name]),
              flush=True)
    totals = {name: round(sum(r[name]["waiting_s"] for r in rows), 2) for name, _ in modes}
    walls = {name: round(sum(r[name]["wall_s"] for r in rows), 2) for name, _ in modes}
    success = {name: sum(r[name]["success"] for r in rows) for name, _ in modes}
    print(f"{'total waiting (s)':<32}" + "".join(f" {totals[m]:>10.2f}      " for m, _ in modes))
    print(f"{'success':<32}" + "".join(f" {success[m]:>7}/{len(rows):<2}      " for m, _ in modes))
    per_app = {}
    for app in dict.fromkeys(r["app"] for r in rows):
        values = [x for r in rows if r["app"] == app for x in r["settle"]["settles"]]
        per_app[app] = {"actions": len(values), "median_s": round(statistics.median(values), 3) if values else None,
                        "p90_s": round(_pct(values, 0.9), 3) if values else None,
                        "max_s": round(max(values), 3) if values else None,
                        "oracle_waits": sum(r["settle"]["waits"] for r in rows if r["app"] == app)}
    print(f"\n{'app':<12} {'actions':>7} {'median s':>9} {'p90 s':>7} {'max s':>7} {'oracle waits':>12}  "
          "(settle per action)")
    for app, st in per_app.items():
        print(f"{app:<12} {st['actions']:>7} {st['median_s']:>9} {st['p90_s']:>7} {st['max_s']:>7} "
              f"{st['oracle_waits']:>12}")
    summary = {
        "bench": "settle", "world": "real-desktop", "scenarios": len(rows), "fixed_sleeps_s": sleeps,
        "total_waiting_s": totals, "total_wall_s": walls, "success": success,
        "ratio_fixed_to_settle": {m: round(totals[m] / totals["settle"], 2) if totals["settle"] else None
                                  for m, _ in modes if m != "settle"},
        "oracle_waits": {m: sum(r[m]["waits"] for r in rows) for m, _ in modes},
        "per_app_settle": per_app,
        "rows": [{"scenario": r["scenario"], "app": r["app"],
                  **{m: {k: v for k, v in r[m].items() if k not in ("scenario", "app", "mode")} for m, _ in modes}}
                 for r in rows],
    }
    print(json.dumps(summary, ensure_ascii=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=("sim", "real-desktop"), default="sim")
    ap.add_argument("--scenarios", default=None, help="comma-separated ids (default: the animated sim set, or "
                                                      "every real-desktop scenario)")
    ap.add_argument("--sleep", type=float, default=1.0, help="sim: the fixed sleep to compare against (s)")
    ap.add_argument("--sleeps", default="1,2", help="real-desktop: the fixed sleeps to compare against (s)")
    ap.add_argument("--apps", default=None, help="real-desktop: only scenarios of these programs (comma-separated)")
    ap.add_argument("--interval", type=float, default=0.05, help="sim: settle capture interval (s)")
    ap.add_argument("--consecutive", type=int, default=2, help="sim: settle quiet comparisons in a row")
    args = ap.parse_args()
    if args.world == "real-desktop":
        main_real(args)
        return
    args.scenarios = args.scenarios or ",".join(DEFAULT_SCENARIOS)
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
