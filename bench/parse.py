"""Model-output parsing and coordinate conversion: microseconds per call for each format.

Each case parses one realistic assistant turn (thinking + one call, or several calls) and converts the
actions to screen pixels; the median of `--rounds` batches of `--n` calls is reported. Then 2 MB answers of
each format, realistic and adversarial (a huge value, thousands of calls, 2 MB of openers without closers),
are parsed `--large-rounds` times each (median; parsing is linear, see tests/test_parse_linear.py).

    .venv/bin/python bench/parse.py [--rounds 7] [--n 2000] [--large-rounds 3]

Prints tables, then one JSON line: {"bench": "parse", "results": [{"case", "us_per_call"}...], "max_us": x,
"large": [{"case", "mb", "ms", "mb_per_s", "actions"}...], "max_large_ms": y}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from visagent.core.actions import Action
from visagent.loop.coords import to_screen
from visagent.core.errors import ParseError
from visagent.screen.base import ScreenGeometry
from visagent.loop.parsing import parse_output, render_action, render_tool_call

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
MB2 = 2 * 1024 * 1024
_BIG_TEXT = ("lorem ipsum " * (MB2 // 12 + 1))[:MB2]
_XML_CALL = render_action(Action("wait", space=N), "qwen35") + "\n"
_UITARS_KEY = "hotkey(key=ctrl)\n"


def _fill(unit: str, prefix: str = "") -> str:
    return prefix + unit * ((MB2 - len(prefix)) // len(unit))


LARGE: dict[str, str] = {
    "qwen35 2MB text value": render_action(Action("type", text=_BIG_TEXT, space=N), "qwen35"),
    "qwen35 2MB of calls": _fill(_XML_CALL),
    "qwen35 2MB <parameter= openers": _fill("<parameter=", "<tool_call>\n<function=computer_use>\n"),
    "nous 2MB text value": render_action(Action("type", text=_BIG_TEXT, space=N), "nous"),
    "nous 2MB <tool_call>{ openers": _fill("<tool_call>{"),
    "uitars 2MB quoted value": render_action(Action("type", text=_BIG_TEXT, space=N), "uitars"),
    "uitars 2MB unquoted values": _fill(_UITARS_KEY, "Action: "),
}


def time_case(case: dict, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        parsed = parse_output(case["text"], tool_calls=case.get("tool_calls"))
        for action in parsed.actions:
            to_screen(action, GEOMETRY)
    return (time.perf_counter() - start) / n * 1e6


def time_large(text: str) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        actions = len(parse_output(text).actions)
    except ParseError:
        actions = 0
    return (time.perf_counter() - start) * 1e3, actions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--large-rounds", type=int, default=3)
    args = ap.parse_args()
    results = []
    print(f"{'case':<18} {'us/call':>10}")
    for name, case in CASES.items():
        us = statistics.median(time_case(case, args.n) for _ in range(args.rounds))
        results.append({"case": name, "us_per_call": round(us, 2)})
        print(f"{name:<18} {us:>10.2f}")
    large = []
    print(f"\n{'2 MB case':<32} {'MB':>5} {'ms':>9} {'MB/s':>7} {'actions':>8}")
    for name, text in LARGE.items():
        runs = [time_large(text) for _ in range(args.large_rounds)]
        ms, actions = statistics.median(r[0] for r in runs), runs[0][1]
        mb = len(text.encode()) / 1e6
        large.append({"case": name, "mb": round(mb, 2), "ms": round(ms, 1), "mb_per_s": round(mb / ms * 1e3, 1),
                      "actions": actions})
        print(f"{name:<32} {mb:>5.2f} {ms:>9.1f} {mb / ms * 1e3:>7.1f} {actions:>8}")
    print(json.dumps({"bench": "parse", "results": results, "max_us": max(r["us_per_call"] for r in results),
                      "large": large, "max_large_ms": max(r["ms"] for r in large)}))


if __name__ == "__main__":
    main()
