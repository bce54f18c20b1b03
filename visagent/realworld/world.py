"""The real-desktop world: a scenario declaration, the running world it sets up, the executor that drives it
and the scripted oracle engine that solves it.

    RealScenario(id, apps, instruction, setup, check, oracle, ...)
        setup(world)   start programs / serve pages / write files on `world` (a fresh RealWorld)
        check(world)   -> bool, judged on REAL state: a file on disk, a web app's server-side state,
                       a window title read with xdotool; never on pixels, never on the model's claim
        oracle(world)  -> iterator of visagent Actions in screen pixels ("screen" space); the generator runs
                       between steps, so it can read the world (window geometry, a page's layout) right
                       before each action it yields

    RealWorld         one private display (visagent.realworld.display) + the programs and servers of one
                      run; `close()` ends all of them (also on Ctrl-C: callers close it in `finally`)
    RealExecutor      the ordinary DesktopExecutor on the world's display; before each capture and action it
                      checks that the world's programs still run (ProgramError -> the run ends `error`)
    RealOracleEngine  the scripted engine of `--model oracle` / `--policy oracle`: the oracle's next action
                      written as a Qwen3.5 tool call, like the sim's OracleEngine (visagent.loop.scripted)
A run in this world is assembled like any other (visagent.loop.runs.open_run): it calls the scenario's
`open_executor`, `executor_meta` and `oracle_engine`, so the loop and the evaluation never import this package.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.loop.scripted import OracleEngine
from visagent.screen.desktop import DesktopExecutor
from visagent.realworld import procs
from visagent.realworld import programs as P
from visagent.realworld.display import Display
from visagent.realworld.errors import ProgramError, require

log = logging.getLogger(__name__)

WORLD = "real-desktop"
DEFAULT_SIZE = (1280, 800)
#: Debian package of a program in RealScenario.apps, where its name differs from the program's.
PACKAGES: dict[str, str] = {"xmessage": "x11-utils"}


@dataclass
class RealScenario:
    """A real-desktop scenario (module docstring). `apps`: the Debian programs it runs (for listing and tags)."""

    id: str
    apps: tuple[str, ...]
    instruction: str
    setup: Callable[["RealWorld"], None]
    check: Callable[["RealWorld"], bool]
    oracle: Callable[["RealWorld"], Iterator[Action]]
    max_steps: int = 10
    tags: dict[str, str] = field(default_factory=dict)
    size: tuple[int, int] = DEFAULT_SIZE
    # what the sim's Scenario also carries, so listing, eval and reports treat both alike
    platform: str = "desktop"
    split: str = "heldout"
    seed: int = 0
    world_kind: str = WORLD

    def __post_init__(self) -> None:
        self.tags = {"world": WORLD, "app": self.apps[0], **self.tags}

    def instruction_for(self, world: Any = None) -> str:
        return self.instruction

    def is_success(self, world: "RealWorld") -> bool:
        return bool(self.check(world))

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "world": WORLD, "platform": self.platform, "max_steps": self.max_steps,
                "split": self.split, "apps": list(self.apps), "tags": dict(self.tags),
                "instruction": self.instruction}

    def open_executor(self) -> "RealExecutor":
        """Start a fresh world of this scenario and an executor on it (visagent.loop.runs.open_run calls this;
        closing the executor closes the world)."""
        return open_world_executor(self)

    def executor_meta(self, executor: "RealExecutor") -> dict[str, Any]:
        """meta.json `executor` fields of a run in this world (replay reads `world` and `scenario`)."""
        return {"scenario": self.id, "world": WORLD, "display": executor.display}

    def oracle_engine(self, executor: "RealExecutor") -> "RealOracleEngine":
        """The scripted engine that plays this scenario's oracle on `executor`'s world."""
        return RealOracleEngine(self, executor)

    def require_programs(self) -> None:
        """MissingProgram (naming the Debian package and the setup command) unless the X server, the window
        manager and every program in `apps` are installed: checked before anything starts."""
        require("Xvfb", "xvfb")
        require("openbox", "openbox")
        require("xdotool", "xdotool")
        require("wmctrl", "wmctrl")
        for app in self.apps:
            require(app, PACKAGES.get(app, app))

    def make_world(self, seed: int | None = None) -> "RealWorld":
        """Start a fresh world for this scenario (display, programs, setup). The caller closes it."""
        self.require_programs()
        world = RealWorld(self)
        try:
            world.start()
        except BaseException:
            world.close()
            raise
        return world


class RealWorld:
    """One running real-desktop world (module docstring). Usable as a context manager.

    `root`: its private directory (logs, homes, `files/` for the scenario's documents), removed on close.
    `data`: a dict where setup leaves what check and oracle need (a server, a file path, a window id).
    """

    def __init__(self, scenario: RealScenario) -> None:
        self.scenario = scenario
        self.token = procs.new_token()
        self.root = Path(tempfile.mkdtemp(prefix=f"visagent-real-{scenario.id}-"))
        self.files = self.root / "files"
        self.files.mkdir()
        self.display = Display(self.token, self.root, *scenario.size)
        self.programs: list[P.Program] = []
        self.data: dict[str, Any] = {}
        self.known_windows: set[int] = set()
        self.expected_titles: list[re.Pattern[str]] = []
        self._closers: list[Callable[[], None]] = []
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        procs.cleanup_strays()
        procs.write_record(self.token, root=str(self.root), scenario=self.scenario.id)
        self.display.start()
        self.scenario.setup(self)
        self.known_windows = {w.wid for w in self.windows()}

    def close(self) -> None:
        """End every program, server and the display; remove the world's directory. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for program in reversed(self.programs):
            program.close()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - one part failing to stop must not keep the others alive
                log.warning("closing part of world %s: %s", self.scenario.id, exc)
        self.display.close()
        procs.kill_marked(self.token)  # anything a program started that left its process group
        procs.remove_record(self.token)
        procs.remove_tree(self.root)

    def __enter__(self) -> "RealWorld":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run `closer` when the world closes (a web server's shutdown)."""
        self._closers.append(closer)

    # -- programs ---------------------------------------------------------------------------------------
    def launch(self, argv: list[str], *, package: str, name: str | None = None, wait_class: str | None = None,
               wait_title: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout_s: float = 40.0, home: Path | None = None) -> P.Program:
        """Launch a program on this world's display (own home: `home`, a folder inside the world that setup may
        have filled with files and config first, else a fresh one); with `wait_class`/`wait_title`, wait for its
        window (ProgramError when it exits first or no window shows)."""
        program = P.Program.launch(self.display, argv, package=package, name=name, env=env, cwd=cwd, home=home)
        self.programs.append(program)
        if wait_class or wait_title:
            self.data.setdefault("windows", {})[program.name] = P.wait_window(
                self.display, program, cls=wait_class, title=wait_title, timeout_s=timeout_s)
        return program

    def check_alive(self) -> None:
        """ProgramError (one line) when the display or a program of the world has died."""
        if self._closed:
            raise ProgramError(f"the world of scenario {self.scenario.id} is closed")
        if not self.display.alive():
            raise ProgramError(f"the X server of scenario {self.scenario.id} ({self.display.name}) died")
        for program in self.programs:
            if not program.expected_exit and not program.alive():
                raise ProgramError(program.death_line(" during the run"))

    # -- reading the screen's windows (for oracles and checkers) -------------------------------------------
    def windows(self) -> list[P.Window]:
        return P.windows(self.display)

    def geometry(self, wid: int) -> tuple[int, int, int, int]:
        return P.geometry(self.display, wid)

    def active_window(self) -> int | None:
        return P.active_window(self.display)

    def title(self, wid: int) -> str:
        return P.window_title(self.display, wid)

    def unexpected_windows(self) -> list[P.Window]:
        """Top-level windows that appeared after setup and that the oracle has not been told to expect."""
        return [w for w in self.windows() if w.wid not in self.known_windows
                and not any(p.search(w.title) for p in self.expected_titles)]

    def expect_window(self, wid: int) -> None:
        """Tell the modal guard that window `wid` (opened by the task itself, e.g. a Save dialog) is expected."""
        self.known_windows.add(wid)

    def expect_title(self, pattern: str) -> None:
        """Tell the modal guard that windows whose title matches `pattern` (a regex, searched) are expected: for
        a dialog the oracle's next action opens, which does not exist yet when the guard looks after that action."""
        self.expected_titles.append(re.compile(pattern))

    def x(self, *argv: str, check: bool = False) -> str:
        """Run an X tool on this display (programs.x)."""
        return P.x(self.display, *argv, check=check)


class RealExecutor(DesktopExecutor):
    """The desktop executor on a world's display; closing it closes the world. See the module docstring.

    pyautogui's X11 backend holds one module-wide connection that every DesktopExecutor re-points at its
    own display before each call; with several worlds in one process (eval workers) the input calls are
    therefore serialised behind one lock (construction too, which re-points it), so no call lands on another
    world's display."""

    name = WORLD
    _input_lock = threading.RLock()

    def __init__(self, world: RealWorld, *, settle: Any = True) -> None:
        self.world = world
        with RealExecutor._input_lock:  # the constructor re-points pyautogui too: never under another's input
            super().__init__(display=world.display.name, settle=settle)

    def _input(self, fn, what: str):
        with RealExecutor._input_lock:
            return super()._input(fn, what)

    def screenshot(self):
        self.world.check_alive()
        return super().screenshot()

    def execute(self, action: Action):
        self.world.check_alive()
        return super().execute(action)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.world.close()


def open_world_executor(scenario: RealScenario) -> RealExecutor:
    """Start the scenario's world and an executor on it (closing the executor closes the world)."""
    world = scenario.make_world()
    try:
        return RealExecutor(world)
    except BaseException:
        world.close()
        raise


class OracleStream:
    """The oracle's actions one at a time, with a guard for modal windows the task did not expect: when such a
    window is in front, the next action closes it (alt+F4, the window manager's close) before the script goes
    on. When the script has no more actions, `terminate success`."""

    def __init__(self, scenario: RealScenario, world: RealWorld) -> None:
        self.scenario = scenario
        self.world = world
        self._actions = iter(scenario.oracle(world))
        self.dismissed: list[str] = []

    def next(self) -> Action:
        intruder = self._intruder()
        if intruder is not None:
            self.dismissed.append(intruder.title)
            self.world.known_windows.add(intruder.wid)  # asked once; a window that refuses to close is not re-asked
            return Action(A.KEY, keys=("alt", "F4"), space="screen")
        return next(self._actions, None) or Action(A.TERMINATE, status="success", space="screen")

    def _intruder(self) -> P.Window | None:
        active = self.world.active_window()
        for w in self.world.unexpected_windows():
            if w.wid == active:
                return w
        return None


class RealOracleEngine(OracleEngine):
    """OracleEngine (visagent.loop.scripted) whose actions come from a real scenario's oracle (OracleStream)."""

    def __init__(self, scenario: RealScenario, executor: RealExecutor, **kwargs: Any) -> None:
        super().__init__(scenario, lambda: executor.world, geometry=executor.geometry, **kwargs)
        self.stream = OracleStream(scenario, executor.world)

    def next_text(self) -> str:
        from engine.api import smart_resize
        from visagent.loop.coords import from_screen
        from visagent.loop.parsing import render_action

        from engine.errors import EngineError

        try:  # a dead program is the run's error, not the oracle's
            self.stream.world.check_alive()
        except ProgramError as exc:
            raise EngineError(str(exc)) from None
        action = self.stream.next()
        geometry = self.geometry()
        image_size = (geometry.physical_width, geometry.physical_height)
        resized = smart_resize(image_size[0], image_size[1], self.info.vision)
        model_action = from_screen(action, geometry, space=self.info.coord_space, image_size=image_size,
                                   resized_size=resized)
        return render_action(model_action, "qwen35", platform="desktop")
