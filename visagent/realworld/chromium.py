"""Chromium (Debian's `chromium`) as a kiosk window on a world's display, with a profile inside the world."""

from __future__ import annotations

import os

from visagent.realworld.programs import Program
from visagent.realworld.webapps import WebApps

PACKAGE = "chromium"


def flags(world, url: str) -> list[str]:
    w, h = world.scenario.size
    out = [
        "chromium", f"--user-data-dir={world.root / 'chromium-profile'}", "--no-first-run",
        "--no-default-browser-check", "--password-store=basic", "--use-mock-keychain", "--disable-gpu",
        "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync", "--disable-background-networking",
        "--disable-component-update", "--disable-default-apps", "--disable-features=Translate,MediaRouter",
        "--disable-smooth-scrolling", "--disable-session-crashed-bubble", "--noerrdialogs", "--test-type",
        "--force-device-scale-factor=1", "--lang=en-US", f"--window-size={w},{h}", "--window-position=0,0",
        "--kiosk", url,
    ]
    if os.geteuid() == 0:
        out.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return out


def open_page(world, apps: WebApps, page: str, ready: str) -> Program:
    """Launch Chromium on `page` of `apps` and wait until its window is up and the page has reported element
    `ready` (the page is rendered and its layout known)."""
    program = world.launch(flags(world, apps.url(page)), package=PACKAGE, name="chromium", wait_class="chromium",
                           timeout_s=60.0)
    world.data["chromium"] = program
    apps.locate(ready, page, timeout_s=60.0)
    return program


def screen_point(world, apps: WebApps, name: str, page: str | None = None, *, dx: float = 0.5,
                 dy: float = 0.5) -> tuple[int, int]:
    """Where element `name` is on the screen: the page's reported box (viewport pixels) placed at the viewport's
    origin, read from the Chromium window's geometry (xdotool). `dx`, `dy`: the point inside the box (0..1)."""
    box = apps.locate(name, page)
    gx, gy, gw, gh = world.geometry(world.data["windows"]["chromium"])
    top = gy + max(0, gh - int(box["vh"]))  # any browser chrome above the page
    return round(gx + box["x"] + box["w"] * dx), round(top + box["y"] + box["h"] * dy)
