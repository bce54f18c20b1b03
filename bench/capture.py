"""Benchmark: screen capture latency at 1920x1080 on X11 — mss against the alternatives available here.

Every method ends with an RGB PIL image (what the agent needs), so conversion costs count. Methods:
mss (its default XCB backend with MIT-SHM, and plain XGetImage), visagent's DesktopExecutor.capture (mss +
conversion), pyautogui.screenshot (pyscreeze), PIL.ImageGrab.grab(xdisplay=...), and the `xwd` / ImageMagick
`import` programs when installed (reported as unavailable otherwise). Starts its own Xvfb (1920x1080, an xterm
on it for content) unless --display is given.

Prints a table and, last, one JSON line. Usage: python bench/capture.py [--n 30] [--display :N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fixtures.xserver

WIDTH, HEIGHT = 1920, 1080


def measure(fn: Callable[[], Image.Image], n: int) -> dict:
    img = fn()  # warm-up (connections, SHM segments)
    assert img.size == (WIDTH, HEIGHT), f"captured {img.size}, expected {(WIDTH, HEIGHT)}"
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
            "min_ms": round(times[0], 2)}


def methods(display: str) -> dict[str, Callable[[], Image.Image] | str]:
    import mss

    factory = getattr(mss, "MSS", None) or mss.mss
    out: dict[str, Callable[[], Image.Image] | str] = {}
    region = {"left": 0, "top": 0, "width": WIDTH, "height": HEIGHT}
    for backend in ("default", "xgetimage"):
        try:
            inst = factory(display=display, backend=backend)
        except TypeError:  # mss < 10.2 has one backend
            inst = factory(display=display)

        def grab(inst=inst) -> Image.Image:
            shot = inst.grab(region)
            return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")

        out[f"mss ({backend})"] = grab
    from visagent.screen.desktop import DesktopExecutor

    ex = DesktopExecutor(display=display, settle=False)
    out["DesktopExecutor.capture"] = ex.capture
    import pyautogui

    out["pyautogui.screenshot"] = lambda: pyautogui.screenshot().convert("RGB")
    from PIL import ImageGrab

    out["PIL.ImageGrab.grab"] = lambda: ImageGrab.grab(xdisplay=display).convert("RGB")
    env = dict(os.environ, DISPLAY=display)
    if shutil.which("xwd"):
        def xwd() -> Image.Image:
            raw = subprocess.run(["xwd", "-root", "-silent"], env=env, capture_output=True, check=True).stdout
            return Image.open(io.BytesIO(raw)).convert("RGB")

        out["xwd -root"] = xwd
    else:
        out["xwd -root"] = "unavailable (x11-apps not installed)"
    if shutil.which("import"):
        out["import -window root"] = lambda: Image.open(io.BytesIO(subprocess.run(
            ["import", "-window", "root", "png:-"], env=env, capture_output=True, check=True).stdout)).convert("RGB")
    else:
        out["import -window root"] = "unavailable (ImageMagick not installed)"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="captures per method")
    ap.add_argument("--display", help="an existing 1920x1080 X display (default: start Xvfb)")
    args = ap.parse_args()
    server = term = None
    display = args.display
    if display is None:
        from tests.fixtures.xserver import start_xvfb

        server = start_xvfb(WIDTH, HEIGHT)
        display = server.display
        term = subprocess.Popen(["xterm", "-geometry", "120x40+100+100", "-e", "top"],
                                env=dict(os.environ, DISPLAY=display), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) if shutil.which("xterm") else None
        time.sleep(1.0)
    os.environ["DISPLAY"] = display
    rows: dict[str, dict | str] = {}
    try:
        print(f"{'method':<26} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
        for name, fn in methods(display).items():
            if isinstance(fn, str):
                rows[name] = fn
                print(f"{name:<26} {fn}")
                continue
            try:
                rows[name] = measure(fn, args.n)
            except Exception as exc:  # noqa: BLE001 - a method that fails here is reported, not fatal
                rows[name] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
                print(f"{name:<26} {rows[name]}")
                continue
            r = rows[name]
            print(f"{name:<26} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['min_ms']:>8.2f}")
    finally:
        if term is not None:
            term.terminate()
            term.wait()
        if server is not None:
            server.stop()
    timed = {k: v for k, v in rows.items() if isinstance(v, dict)}
    fastest = min(timed, key=lambda k: timed[k]["median_ms"]) if timed else None
    print(json.dumps({"bench": "capture", "size": [WIDTH, HEIGHT], "n": args.n, "fastest": fastest,
                      "methods": rows}))


if __name__ == "__main__":
    main()
