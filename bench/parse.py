"""Model-output parsing and coordinate conversion: microseconds per call for each format.

Each case parses one realistic assistant turn (thinking + one call, or several calls) and converts the
actions to screen pixels; the median of `--rounds` batches of `--n` calls is reported.

    .venv/bin/python bench/parse.py [--rounds 7] [--n 2000]

Prints a table, then one JSON line: {"bench": "parse", "results": [{"case", "us_per_call"}...], "max_us": x}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from visagent.actions import Action
from visagent.coords import to_screen
from visagent.executors.base import ScreenGeometry
from visagent.parsing import parse_output, render_action, render_tool_call

N = "norm1000"
THINK = "The search box is at the top; I click it, then type the query.\n</think>\n\n"
CLICK = Action("left_click", coordinate=(512, 88), space=N)
TYPE = Action("type", text="weather in Lisbon\n", space=N)
CASES: dict[str, dict] = {
    "qwen35 1 call": {"text": THINK + render_action(CLICK, "qwen35")},
    "qwen35 2 calls": {"text": THINK + render_action(CLICK, "qwen35") + "\n" + render_action(TYPE, "qwen35")},
    "nous 1 call": {"text": THINK + render_action(CLICK, "nous")},
    "openai 1 call": {"text": THINK, "tool_calls": [render_tool_call(CLICK)]},
    "uitars 2 calls": {"text": "Thought: click the box and type\n" + render_action(CLICK, "uitars") + "\n"
                               + render_action(TYPE, "uitars")},
}
GEOMETRY = ScreenGeometry(1440, 900, 2880, 1800, offset_x=1920)


def time_case(case: dict, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        parsed = parse_output(case["text"], tool_calls=case.get("tool_calls"))
        for action in parsed.actions:
            to_screen(action, GEOMETRY)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    results = []
    print(f"{'case':<18} {'us/call':>10}")
    for name, case in CASES.items():
        us = statistics.median(time_case(case, args.n) for _ in range(args.rounds))
        results.append({"case": name, "us_per_call": round(us, 2)})
        print(f"{name:<18} {us:>10.2f}")
    print(json.dumps({"bench": "parse", "results": results, "max_us": max(r["us_per_call"] for r in results)}))


if __name__ == "__main__":
    main()
