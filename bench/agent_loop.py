"""Agent-loop overhead: milliseconds per step spent outside the model and the screen's settling, per path and size.

Three paths drive the same sim scenarios side by side in one run:

- `oracle`: the OracleEngine in-process (answers at once);
- `remote`: a RemoteEngine against a loopback OpenAI-compatible server (a thread of this process) that answers
  the oracle's action at once, streamed; the server's own handling time is subtracted, so request building
  (screenshot encoding, JSON), HTTP and stream parsing count as overhead;
- `tiny`: the project's tiny Qwen3.5 checkpoint in-process, each generate() call's time subtracted (it does not
  solve the scenarios; it runs `--tiny-steps` steps).

`overhead_ms_per_step` = step wall time minus model time (as above) minus settle waiting (virtual in the sim,
so only the detector's captures remain, shown as `settle_capture`). Sizes are the sim's desktop at scale 1.0
(1280x800) and 1.5 (1920x1200: the sim has no 16:9 desktop; 11% more pixels than 1920x1080).

    .venv/bin/python bench/agent_loop.py [--rounds 2] [--paths oracle remote tiny] [--scales 1.0 1.5]
    .venv/bin/python bench/agent_loop.py --steps 500      # peak RSS of remote runs of 50 and 500 steps

Prints a table of per-phase medians (ms per step), then one JSON line:
{"bench": "agent_loop", "results": [{"path", "size", "steps", "ms_per_step", "capture", "trace_wait", "wire",
 "execute", "settle_capture", "record", "other", "overhead_ms_per_step"}...], "overhead_ms_per_step": {"<path> <size>": ms}}
or, with --steps, {"bench": "agent_loop_memory", "rss_mb": {"50": x, "500": y}, "difference_mb": d}.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file from anywhere: this checkout's code

from visagent.loop import events as E  # noqa: E402
from visagent.loop.agent import Agent, AgentConfig  # noqa: E402
from visagent.screen.simulated import SimExecutor  # noqa: E402
from visagent.sim.scenarios import get_scenario  # noqa: E402
from visagent.loop.scripted import OracleEngine  # noqa: E402
from visagent.core.trace import read_trace  # noqa: E402

DEFAULT = ["desktop-settings-wifi-off", "desktop-contacts-add"]
PATHS = ("oracle", "remote", "tiny")
PHASES = ("capture", "trace_wait", "wire", "execute", "settle_capture", "record", "other")


class LoopbackServer:
    """An OpenAI-compatible chat server on 127.0.0.1 answering `answer()` at once (SSE when asked to stream).
    `handling` holds each completion request's own time (reading and parsing the body, answering)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.handling: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802
                self._send(json.dumps({"object": "list", "data": [{"id": "oracle", "object": "model"}]}).encode(),
                           "application/json")

            def do_POST(self) -> None:  # noqa: N802
                t = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = outer.answer()
                if body.get("stream"):
                    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                            "finish_reason": None}]},
                              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
                    out = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                    self._send(out.encode(), "text/event-stream")
                else:
                    self._send(json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": text}}]}).encode(), "application/json")
                outer.handling.append(time.perf_counter() - t)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Timed:
    """An engine whose generate() calls are timed (`spent`), for subtracting the model's own time."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.info, self.spent = engine, engine.info, []

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.engine.generate(*args, **kwargs)
        finally:
            self.spent.append(time.perf_counter() - t)


_TINY: Any = None


def tiny_engine() -> Any:
    global _TINY
    if _TINY is None:
        from engine import load_engine

        _TINY = load_engine("tiny", device="cpu")
    return _TINY


def one_run(path: str, scenario_id: str, scale: float, trace_root: str, tiny_steps: int) -> list[dict[str, float]]:
    """Per-step phase times (seconds) of one run."""
    scenario = get_scenario(scenario_id)
    executor = SimExecutor(scenario.make_world(0), scale=scale)
    oracle = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
    server = None
    config = AgentConfig(max_steps=scenario.max_steps * 4 + 10, loop_limit=6)
    if path == "oracle":
        engine: Any = Timed(oracle)
        spent = engine.spent
    elif path == "remote":
        from engine.remote import RemoteEngine

        server = LoopbackServer(oracle.next_text)
        engine = RemoteEngine(server.url, model_name="oracle", coord_space="norm1000")
        spent = server.handling
    else:
        engine = Timed(tiny_engine())
        spent = engine.spent
        config = AgentConfig(max_steps=tiny_steps, loop_limit=tiny_steps + 1, parse_retries=tiny_steps)
    marks: dict[int, list[float]] = {}

    def on_event(event: Any) -> None:  # a step's wall time: StepStarted to StepFinished (its line is on disk)
        if isinstance(event, (E.StepStarted, E.StepFinished)):
            marks.setdefault(event.step, []).append(time.perf_counter())

    try:
        result = Agent(engine, executor, config, trace_root=trace_root, on_event=on_event).run(
            scenario.instruction_for(executor.world))
    finally:
        if server is not None:
            server.close()
    if path != "tiny" and result.status != "success":
        raise SystemExit(f"{path} {scenario_id}: the run ended {result.status}: {result.reason}")
    steps = read_trace(result.trace_dir).steps
    calls = iter(spent)
    out = []
    for s in steps:
        t = s["timings"]
        model_own = sum(next(calls, 0.0) for _ in range(max(1, s.get("attempts") or 1)))
        start, end = marks[s["step"]][:2]
        row = {"total": end - start, "capture": t.get("capture", 0.0), "trace_wait": t.get("trace_wait", 0.0),
               "wire": t.get("model", 0.0) - model_own, "execute": t.get("execute", 0.0),
               "settle_capture": t.get("settle_capture", 0.0), "record": max(0.0, end - start - t["total"])}
        row["other"] = row["total"] - sum(row[p] for p in PHASES if p != "other") - model_own
        row["overhead"] = row["total"] - model_own  # settle waiting is virtual: no wall time
        out.append(row)
    return out


def run_table(args: argparse.Namespace) -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.paths:
            for scale in args.scales:
                rows: list[dict[str, float]] = []
                scenarios = args.scenarios[:1] if path == "tiny" else args.scenarios
                for _ in range(args.rounds):
                    for sid in scenarios:
                        rows += one_run(path, sid, scale, tmp, args.tiny_steps)
                size = f"{round(1280 * scale)}x{round(800 * scale)}"
                row: dict[str, Any] = {"path": path, "size": size, "steps": len(rows)}
                for key in ("total", *PHASES):
                    row["ms_per_step" if key == "total" else key] = round(
                        1000 * statistics.median(r[key] for r in rows), 2)
                row["overhead_ms_per_step"] = round(1000 * statistics.median(r["overhead"] for r in rows), 2)
                results.append(row)
    keys = ("steps", "ms_per_step", *PHASES, "overhead_ms_per_step")
    print(f"{'path':8}{'size':>11}" + "".join(f"{k[:14]:>15}" for k in keys))
    for row in results:
        print(f"{row['path']:8}{row['size']:>11}" + "".join(f"{row[k]:>15}" for k in keys))
    print("(medians in ms per step, StepStarted to StepFinished; trace_wait: waiting for the screenshot to be in the "
          "trace before the model call (its PNG encoding); wire: the model phase minus the model's own time (request "
          "building, encoding, HTTP); settle_capture: the settle detector's captures and comparisons, its waiting is "
          "virtual; record: writing the step line (fsync) after the step's timings; other: prompt building, parsing, "
          "events, the loop's bookkeeping)")
    print(json.dumps({"bench": "agent_loop", "results": results,
                      "overhead_ms_per_step": {f"{r['path']} {r['size']}": r["overhead_ms_per_step"]
                                               for r in results}}))


def rss_child(steps: int, scale: float) -> None:
    """One remote run of `steps` wait actions; prints its peak RSS in MB."""
    from engine.remote import RemoteEngine
    from visagent.core.actions import Action
    from visagent.loop.parsing import render_action

    scenario = get_scenario(DEFAULT[0])
    executor = SimExecutor(scenario.make_world(0), scale=scale)
    wait = render_action(Action("wait", space="norm1000", time=0.1), "qwen35")
    server = LoopbackServer(lambda: wait)
    engine = RemoteEngine(server.url, model_name="oracle", coord_space="norm1000")
    config = AgentConfig(max_steps=steps, loop_limit=steps + 1, max_seconds=3600)
    with tempfile.TemporaryDirectory() as tmp:
        result = Agent(engine, executor, config, trace_root=tmp).run("wait")
    server.close()
    if result.steps != steps:
        raise SystemExit(f"the run stopped after {result.steps} steps: {result.status} {result.reason}")
    print(json.dumps({"steps": steps, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_memory(args: argparse.Namespace) -> None:
    rss = {}
    for steps in (50, args.steps):
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(steps), "--scales", str(args.scales[0])],
                             capture_output=True, text=True, check=True)
        rss[str(steps)] = round(json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"], 1)
        print(f"remote path, {steps} steps at scale {args.scales[0]}: peak RSS {rss[str(steps)]} MB")
    print(json.dumps({"bench": "agent_loop_memory", "rss_mb": rss,
                      "difference_mb": round(rss[str(args.steps)] - rss["50"], 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", nargs="*", default=DEFAULT)
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=PATHS)
    parser.add_argument("--scales", nargs="*", type=float, default=[1.0, 1.5])
    parser.add_argument("--tiny-steps", type=int, default=6)
    parser.add_argument("--steps", type=int, help="measure peak RSS of remote runs of 50 and this many steps")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.scales[0])
    elif args.steps:
        run_memory(args)
    else:
        run_table(args)


if __name__ == "__main__":
    main()
