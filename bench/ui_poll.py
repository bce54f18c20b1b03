"""How responsive the dashboard stays while the model works: latency of the page's status poll (the same
buffer the Run view's 0.4 s timer reads, through the /run_status endpoint) with no run, and during a
tiny-model run (prefill + decode on this machine's CPU). Prints a table and a final JSON line.

    .venv/bin/python bench/ui_poll.py [--polls 30] [--model tiny]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_client import Client  # noqa: E402

from tests.fixtures.dashboard import SCENARIO, launched, make_dashboard  # noqa: E402


def poll_latencies(client: Client, run_id: str, n: int, every_s: float = 0.4) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.predict(run_id, api_name="/run_status")
        out.append(time.perf_counter() - t)
        time.sleep(every_s)
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[max(0, int(0.95 * len(ordered)) - 1)], 1),
            "max_ms": round(1000 * ordered[-1], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--model", default="tiny")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dash = make_dashboard(Path(tmp), model=args.model)
        warm = dash.runs.warm(dash.default_model)
        with launched(dash) as url:
            client = Client(url, verbose=False)
            idle = poll_latencies(client, "run-0", args.polls)
            warm.join()
            run = client.predict("Switch the system to dark mode.", SCENARIO, args.model, max_steps=1,
                                 api_name="/start_run")["run_id"]
            while not client.predict(run, api_name="/run_status")["has_screenshot"]:
                time.sleep(0.2)
            busy = poll_latencies(client, run, args.polls)
            state = client.predict(run, api_name="/run_status")
            client.predict(run, "stop", api_name="/control_run")
    rows = {"idle": summary(idle), f"{args.model} model working": summary(busy)}
    print(f"{'situation':<24}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, s in rows.items():
        print(f"{name:<24}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['max_ms']:>10}")
    print(f"(the run was at step {state['step']}, {state['phase'] or state['state']}, after the polls)")
    print(json.dumps({"bench": "ui_poll", "polls": args.polls, "model": args.model, **{
        k.replace(" ", "_"): v for k, v in rows.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
