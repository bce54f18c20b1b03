"""The screen side: where actions land and screenshots come from.

Owns: the executor protocol and screen geometry (base), the backends — the sim world (simulated), a real desktop
through mss + pyautogui (desktop, monitors, xsession, keynames, xtype) and an Android phone through adb (android,
adb) — settle detection (settle) and the seam every caller drives a backend through (seam: closed check, time
limit, one worker thread, one-line errors, settling once). `open_executor(kind, ...)` builds one by name;
`list_monitors()` and `list_android_devices()` feed pickers. Backends import their libraries lazily, so
`import visagent.screen` needs no display and no adb.

May import: visagent.core and visagent.sim. Never the engine, the loop or anything above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visagent.core.errors import ConfigError, ExecutorError

if TYPE_CHECKING:
    from visagent.screen.adb import AndroidDevice
    from visagent.screen.base import Executor

EXECUTORS: tuple[str, ...] = ("sim", "desktop", "android")


def default_sim_scenario() -> str:
    """The id of the first desktop scenario (the sim's default when none is given)."""
    from visagent.sim.scenarios import load_scenarios

    for sc in load_scenarios():
        if sc.platform == "desktop":
            return sc.id
    raise ExecutorError("no desktop scenario found in scenarios/; pass --scenario ID")


def open_executor(
    kind: str,
    *,
    scenario: str | None = None,
    seed: int | None = None,
    monitor: int = 1,
    serial: str | None = None,
    scale: float = 1.0,
) -> Executor:
    """Open an executor by name.

    "sim": the world of `scenario` (default: the first desktop scenario) with `seed` (default: the
    scenario's own), screenshots at `scale` physical pixels per logical pixel. "desktop": monitor `monitor`
    of $DISPLAY. "android": the device `serial` (default: ANDROID_SERIAL or the only one connected).
    Raises ConfigError for an unknown kind, ScenarioError for an unknown scenario, ExecutorError when the
    screen or device cannot be reached.
    """
    if kind == "sim":
        from visagent.screen.simulated import SimExecutor
        from visagent.sim.scenarios import get_scenario

        world = get_scenario(scenario or default_sim_scenario()).make_world(seed)
        return SimExecutor(world, scale=scale)
    if kind == "desktop":
        from visagent.screen.desktop import DesktopExecutor

        return DesktopExecutor(monitor=monitor)
    if kind == "android":
        from visagent.screen.android import AndroidExecutor

        return AndroidExecutor(serial=serial)
    raise ConfigError(f"unknown executor {kind!r}; expected one of: {', '.join(EXECUTORS)}")


def list_monitors(display: str | None = None) -> list[dict[str, int]]:
    """Monitors of the desktop (1-based order; left, top, width, height in pixels). Raises ExecutorError."""
    from visagent.screen.desktop import list_monitors as _list

    return _list(display)


def list_android_devices(adb: str = "adb", timeout_s: float = 10.0) -> list[AndroidDevice]:
    """Devices adb knows, in any state (serial, state, properties). Raises ExecutorError without adb."""
    from visagent.screen.adb import list_devices

    return list_devices(adb, timeout_s)
