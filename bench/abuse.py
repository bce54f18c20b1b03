"""What the largest requests `visagent serve` allows by default cost it, and how early it refuses larger ones.

For each case it starts a fresh `visagent serve --model tiny` (default limits) as a child process (so memory
one case leaves behind in the allocator does not count against the next), sends one warm-up request, then the
case: the largest body, text and image requests the defaults allow, and over-limit requests (60 MiB of one letter, a 7999x7999 PNG bomb, 17 images, a header-only request claiming 100 MiB,
Content-Length -1). For each: the HTTP status, the seconds to the answer, the server's peak RSS during the
request (the kernel's high-water mark VmHWM, reset just before it through /proc/PID/clear_refs) and that peak's
growth over the warmed-up idle server.

    .venv/bin/python bench/abuse.py [--model tiny]

Prints a table, then one JSON line: {"bench": "abuse", "idle_rss_mb", "results": [{"case", "status", "seconds",
"peak_rss_mb", "growth_mb"}...], "max_peak_rss_mb", "max_seconds"}.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _png_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _screenshot(width: int, height: int, seed: int) -> Image.Image:
    """A screenshot-like frame: flat background, a noisy panel (so the PNG is not trivially small), bars."""
    rng = np.random.default_rng(seed)
    frame = np.full((height, width, 3), 235, np.uint8)
    frame[height // 10: height // 3, width // 20: width // 2] = rng.integers(0, 255, (height // 3 - height // 10,
                                                                              width // 2 - width // 20, 3))
    frame[: height // 25] = (40, 40, 60)
    return Image.fromarray(frame)


def _chat(content) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 1}


def _images(*urls: str) -> list[dict]:
    return [{"type": "image_url", "image_url": {"url": u}} for u in urls] + [{"type": "text", "text": "Click OK."}]


def _raw(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
    return int(reply.split(b" ", 2)[1]) if reply else 0


class Server:
    """`visagent serve` of this tree on a free port, as a child process."""

    def __init__(self, model: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGENT_")}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen([sys.executable, "-m", "visagent", "serve", "--model", model, "--port", "0"],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            if " at http://" in line:
                self.url = line.split(" at ", 1)[1].split()[0]
                break
        if not self.url:
            raise SystemExit(f"visagent serve did not start (rc={self.proc.wait()})")
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.client = httpx.Client(timeout=300)
        self.client.post(self.url + "/chat/completions", json=_chat("warm up"))

    def stop(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    args = ap.parse_args()

    server = Server(args.model)
    context = server.client.get(server.url + "/models").json()["data"][0].get("max_model_len") or 0
    server.stop()
    text_limit = min(1 << 20, 4 * context) if context else 1 << 20

    shot4k = _png_url(_screenshot(3840, 2160, 0))
    big = _png_url(_screenshot(4096, 4096, 1))
    bomb_buf = io.BytesIO()
    Image.new("RGB", (7999, 7999)).save(bomb_buf, format="PNG", optimize=True)  # the probe's bomb
    bomb = "data:image/png;base64," + base64.b64encode(bomb_buf.getvalue()).decode()
    tiny_png = _png_url(Image.new("RGB", (8, 8), "red"))
    cases: list[tuple[str, object]] = [
        # passes the text limit, so it is tokenized; the engine then finds it over the context (a 400)
        ("allowed: text at the limit, %d chars" % text_limit, lambda: _chat("a" * text_limit)),
        ("allowed: 4 screenshots 3840x2160", lambda: _chat(_images(*[shot4k] * 4))),
        ("allowed: 2 images 4096x4096 (pixel limit)", lambda: _chat(_images(big, big))),
        ("allowed size: 64 MiB body (text over limit)", lambda: _chat("a" * (64 * MiB - 200))),
        ("refused: 60 MiB of one letter", lambda: _chat("a" * (60 * MiB))),
        ("refused: body over 64 MiB", lambda: _chat("a" * (64 * MiB + 10))),
        ("refused: 7999x7999 PNG (%d KiB)" % (len(bomb_buf.getvalue()) >> 10), lambda: _chat(_images(bomb))),
        ("refused: 3 images 4096x4096", lambda: _chat(_images(big, big, big))),
        ("refused: 17 images", lambda: _chat(_images(*[tiny_png] * 17))),
        ("refused: header-only, Content-Length 100 MiB",
         b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (100 * MiB)),
        ("refused: Content-Length -1",
         b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}"),
    ]
    results = []
    alive = True
    for name, payload in cases:
        data = payload if isinstance(payload, bytes) else json.dumps(payload()).encode()  # type: ignore[operator]
        server = Server(args.model)
        try:
            idle_kb = _rss_kb(server.proc.pid, "VmRSS")
            _reset_peak(server.proc.pid)
            start = time.perf_counter()
            if isinstance(payload, bytes):
                status = _raw(server.port, data)
            else:
                status = server.client.post(server.url + "/chat/completions", content=data,
                                            headers={"Content-Type": "application/json"}).status_code
            seconds = time.perf_counter() - start
            peak_kb = _rss_kb(server.proc.pid, "VmHWM")
            alive = alive and server.client.get(server.url.removesuffix("/v1") + "/health").status_code == 200
        finally:
            server.stop()
        del data
        results.append({"case": name, "status": status, "seconds": round(seconds, 3),
                        "idle_rss_mb": round(idle_kb / 1024, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
                        "growth_mb": round((peak_kb - idle_kb) / 1024, 1)})

    print(f"default text limit {text_limit} characters (4 per token of the model's {context}-token context)")
    print(f"{'case':<46} {'status':>6} {'seconds':>8} {'idle MB':>8} {'peak MB':>8} {'+MB':>7}")
    for r in results:
        print(f"{r['case']:<46} {r['status']:>6} {r['seconds']:>8.3f} {r['idle_rss_mb']:>8.0f} "
              f"{r['peak_rss_mb']:>8.0f} {r['growth_mb']:>7.0f}")
    print(f"server up after every case: {alive}")
    print(json.dumps({"bench": "abuse", "text_limit_chars": text_limit, "results": results, "server_alive": alive,
                      "max_peak_rss_mb": max(r["peak_rss_mb"] for r in results),
                      "max_growth_mb": max(r["growth_mb"] for r in results),
                      "max_seconds": max(r["seconds"] for r in results)}))


if __name__ == "__main__":
    main()
