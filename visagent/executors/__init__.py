"""Executors: the sim world, a real desktop (mss + pyautogui) and an Android phone (adb), behind one protocol.

`open_executor(kind, ...)` builds one by name; `list_monitors()` and `list_android_devices()` feed pickers.
Backends import their libraries lazily, so `import visagent.executors` needs no display and no adb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visagent.errors import ConfigError, ExecutorError
from visagent.settings import EXECUTOR_KINDS

if TYPE_CHECKING:
    from visagent.executors.adb import AndroidDevice
    from visagent.executors.base import Executor
    from visagent.scenarios import Scenario


def default_sim_scenario() -> str:
    """The id of the first desktop scenario (the sim's default when none is given)."""
    from visagent.scenarios import load_scenarios

    for sc in load_scenarios():
        if sc.platform == "desktop":
            return sc.id
    raise ExecutorError("no desktop scenario found in scenarios/; pass --scenario ID")


def open_executor(
    kind: str,
    *,
    scenario: str | Scenario | None = None,
    seed: int | None = None,
    monitor: int = 1,
    serial: str | None = None,
    scale: float = 1.0,
) -> Executor:
    """Open an executor by name.

    "sim": the world of `scenario` (an id or a Scenario; default: the first desktop scenario) with `seed`
    (default: the scenario's own), screenshots at `scale` physical pixels per logical pixel. "desktop": monitor `monitor`
    of $DISPLAY. "android": the device `serial` (default: ANDROID_SERIAL or the only one connected).
    Raises ConfigError for an unknown kind, ScenarioError for an unknown scenario, ExecutorError when the
    screen or device cannot be reached.
    """
    if kind == "sim":
        from visagent.executors.sim import SimExecutor
        from visagent.scenarios import get_scenario

        if scenario is None or isinstance(scenario, str):
            scenario = get_scenario(scenario or default_sim_scenario())
        world = scenario.make_world(seed)
        return SimExecutor(world, scale=scale)
    if kind == "desktop":
        from visagent.executors.desktop import DesktopExecutor

        return DesktopExecutor(monitor=monitor)
    if kind == "android":
        from visagent.executors.android import AndroidExecutor

        return AndroidExecutor(serial=serial)
    raise ConfigError(f"unknown executor {kind!r}; expected one of: {', '.join(EXECUTOR_KINDS)}")


def list_monitors(display: str | None = None) -> list[dict[str, int]]:
    """Monitors of the desktop (1-based order; left, top, width, height in pixels). Raises ExecutorError."""
    from visagent.executors.desktop import list_monitors as _list

    return _list(display)


def list_android_devices(adb: str = "adb", timeout_s: float = 10.0) -> list[AndroidDevice]:
    """Devices adb knows, in any state (serial, state, properties). Raises ExecutorError without adb."""
    from visagent.executors.adb import list_devices

    return list_devices(adb, timeout_s)
