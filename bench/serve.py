"""OpenAI-compatible serving: what the HTTP hop costs, and how `visagent serve` handles concurrent clients.

Runs the tiny model in-process, serves it with `engine.server.ChatServer` on loopback and measures, as the
median of `--rounds` (interleaved):
- encode/decode of one 1920x1080 screenshot as a PNG data URL (what every remote request pays per image);
- one generation (a screenshot + a question, `--tokens` new tokens) in-process vs through RemoteEngine over
  HTTP, non-streamed and streamed (time to the first delta);
- `--clients` concurrent clients x `--per-client` requests: wall time vs the same requests sequentially
  (the server runs one generation at a time; overlap comes only from request parsing, image decoding and
  response writing running beside the model), and the median and 95th-percentile latency of one request
  under that load.

    .venv/bin/python bench/serve.py [--rounds 5] [--tokens 8] [--clients 8] [--per-client 5]

To compare two trees' servers, run the same script with PYTHONPATH pointing at the other tree (the JSON line's
`stack` says which HTTP stack answered). Prints a table, then one JSON line:
{"bench": "serve", "stack", "results": [{"case", "seconds"}...], "requests_per_s_concurrent", ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from engine import load_engine
from engine.api import GenerationConfig
from engine.openai_wire import data_url_to_image, image_to_data_url
from engine.remote import RemoteEngine
import engine.server as engine_server
from engine.server import ChatServer


def screenshot() -> Image.Image:
    """A screenshot-like frame: flat background, a busy panel, a few bars."""
    rng = np.random.default_rng(0)
    frame = np.full((1080, 1920, 3), 235, np.uint8)
    frame[100:300, 100:900] = rng.integers(0, 255, (200, 800, 3))
    frame[0:40] = (40, 40, 60)
    frame[500:540, 300:1600] = (30, 120, 220)
    return Image.fromarray(frame)


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per-client", type=int, default=5)
    args = ap.parse_args()

    image = screenshot()
    url = image_to_data_url(image)
    results: list[dict] = [
        {"case": "png data url encode 1920x1080", "seconds": median_time(lambda: image_to_data_url(image), args.rounds)},
        {"case": "png data url decode 1920x1080", "seconds": median_time(lambda: data_url_to_image(url), args.rounds)},
    ]
    local = load_engine("tiny")
    server = ChatServer(local, model_name="tiny", port=0).start()
    remote = RemoteEngine(server.url)
    small = image.resize((640, 360))
    messages = [{"role": "user", "content": [{"type": "image", "image": small}, {"type": "text", "text": "Click OK."}]}]
    cfg = GenerationConfig(max_new_tokens=args.tokens)
    local.generate(messages, config=cfg)  # warm-up
    # Interleaved, so load from other processes hits both sides alike.
    timings: dict[str, list[float]] = {"local": [], "http": [], "stream": [], "first": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        local.generate(messages, config=cfg)
        timings["local"].append(time.perf_counter() - start)
        start = time.perf_counter()
        remote.generate(messages, config=cfg)
        timings["http"].append(time.perf_counter() - start)
        seen: list[float] = []
        start = time.perf_counter()
        remote.generate(messages, config=cfg, on_delta=lambda d: seen or seen.append(time.perf_counter() - start))
        timings["stream"].append(time.perf_counter() - start)
        timings["first"].append(seen[0] if seen else float("nan"))
    results += [
        {"case": f"generate in-process ({args.tokens} tok)", "seconds": statistics.median(timings["local"])},
        {"case": f"generate via HTTP ({args.tokens} tok)", "seconds": statistics.median(timings["http"])},
        {"case": "generate via HTTP, streamed", "seconds": statistics.median(timings["stream"])},
        {"case": "  time to first delta", "seconds": statistics.median(timings["first"])},
    ]

    prompts = [[{"role": "user", "content": f"client {c} request {i}"}]
               for c in range(args.clients) for i in range(args.per_client)]
    start = time.perf_counter()
    for p in prompts:
        remote.generate(p, config=cfg)
    sequential = time.perf_counter() - start
    # one client = one thread sending its requests one after another, as an agent does
    per_client = [prompts[c * args.per_client:(c + 1) * args.per_client] for c in range(args.clients)]

    def client(mine: list) -> list[float]:
        latencies = []
        for p in mine:
            t0 = time.perf_counter()
            remote.generate(p, config=cfg)
            latencies.append(time.perf_counter() - t0)
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        latencies = sorted(x for part in pool.map(client, per_client) for x in part)
    concurrent = time.perf_counter() - start
    n = len(prompts)
    results.append({"case": f"{n} requests sequential", "seconds": sequential})
    results.append({"case": f"{n} requests, {args.clients} clients", "seconds": concurrent})
    results.append({"case": "  latency p50 under load", "seconds": statistics.median(latencies)})
    results.append({"case": "  latency p95 under load", "seconds": latencies[min(n - 1, int(0.95 * n))]})
    server.shutdown()
    local.close()

    print(f"{'case':<36} {'seconds':>10}")
    for r in results:
        r["seconds"] = round(r["seconds"], 4)
        print(f"{r['case']:<36} {r['seconds']:>10.4f}")
    overhead = results[3]["seconds"] - results[2]["seconds"]
    stack = "starlette+uvicorn" if hasattr(engine_server, "uvicorn") else "http.server"
    print(json.dumps({"bench": "serve", "stack": stack, "results": results, "http_overhead_s": round(overhead, 4),
                      "requests_per_s_concurrent": round(n / concurrent, 2)}))


if __name__ == "__main__":
    main()
