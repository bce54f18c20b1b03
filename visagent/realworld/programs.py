"""Programs on a world's display: launch with an isolated home, wait for their window, notice when they die,
and the X tools (xdotool, wmctrl) the oracles and checkers use to read windows.

`Program.launch` starts a Debian program (MissingProgram when it is not installed) with HOME and the XDG
directories inside the world, so no user config is read or written. `wait_window` polls xdotool until the
program maps a window, failing fast (ProgramError with the log's tail) when the program exits first.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from visagent.realworld import procs
from visagent.realworld.display import Display, _tail
from visagent.realworld.errors import ProgramError, require


@dataclass
class Program:
    """One launched program: its name (for messages), Debian package, process and log file."""

    name: str
    package: str
    proc: subprocess.Popen
    log_path: Path
    expected_exit: bool = False  # set by close(): an exit after that is not a crash

    @classmethod
    def launch(cls, display: Display, argv: list[str], *, package: str, name: str | None = None,
               home: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None) -> "Program":
        """Start `argv` (argv[0] looked up on PATH) on `display` with its own home under the world's directory."""
        exe = require(argv[0], package)
        name = name or Path(argv[0]).name
        home = home or display.root / f"home-{name}"
        full_env = display.env(home)
        full_env.update(env or {})
        log_path = display.root / f"{name}.log"
        proc = procs.spawn([exe, *argv[1:]], full_env, log_path, cwd=cwd)
        return cls(name, package, proc, log_path)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def death_line(self, when: str = "") -> str:
        """One line on how the program ended (exit status or signal, and the log's last words)."""
        code = self.proc.poll()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        last = next((ln for ln in reversed(_tail(self.log_path, 2000, keep_lines=True).splitlines()) if ln.strip()), "")
        return f"{self.name} {how}{when}" + (f" (its log ends: {' '.join(last.split())[:160]})" if last else "")

    def close(self) -> None:
        self.expected_exit = True
        procs.end_process(self.proc)


# -- X tools ------------------------------------------------------------------------------------------------
def x(display: Display, *argv: str, timeout_s: float = 10.0, check: bool = False) -> str:
    """Run an X tool (xdotool, wmctrl, xprop ...) on `display`; its stdout ('' when it fails, unless `check`)."""
    exe = require(argv[0], {"xdotool": "xdotool", "wmctrl": "wmctrl"}.get(argv[0], "x11-utils"))
    done = subprocess.run([exe, *argv[1:]], env=display.env(), capture_output=True, text=True, timeout=timeout_s)
    if check and done.returncode != 0:
        raise ProgramError(f"{' '.join(argv)} failed on {display.name}: {' '.join(done.stderr.split())[:200]}")
    return done.stdout if done.returncode == 0 else ""


@dataclass(frozen=True)
class Window:
    """A top-level window: X id, pid (_NET_WM_PID, 0 when unknown), title and frame-less geometry in pixels."""

    wid: int
    pid: int
    x: int
    y: int
    width: int
    height: int
    title: str

    def center(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2


def windows(display: Display) -> list[Window]:
    """The managed top-level windows (wmctrl -l -p -G), in stacking order of the window manager's list."""
    out: list[Window] = []
    for line in x(display, "wmctrl", "-l", "-p", "-G").splitlines():
        parts = line.split(None, 8)
        if len(parts) < 8:
            continue
        try:
            wid, pid, gx, gy, gw, gh = int(parts[0], 16), int(parts[2]), *map(int, parts[3:7])
        except ValueError:
            continue
        title = parts[8] if len(parts) > 8 else ""
        out.append(Window(wid, pid, gx, gy, gw, gh, title))
    return out


def geometry(display: Display, wid: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the window's client area in screen pixels (xdotool getwindowgeometry)."""
    text = x(display, "xdotool", "getwindowgeometry", str(wid), check=True)
    pos = re.search(r"Position: (-?\d+),(-?\d+)", text)
    size = re.search(r"Geometry: (\d+)x(\d+)", text)
    if not pos or not size:
        raise ProgramError(f"cannot read the geometry of window {wid:#x} on {display.name}")
    return int(pos[1]), int(pos[2]), int(size[1]), int(size[2])


def active_window(display: Display) -> int | None:
    text = x(display, "xdotool", "getactivewindow").strip()
    return int(text) if text.isdigit() else None


def window_title(display: Display, wid: int) -> str:
    return x(display, "xdotool", "getwindowname", str(wid)).rstrip("\n")


def wait_window(display: Display, program: Program | None = None, *, cls: str | None = None,
                title: str | None = None, timeout_s: float = 30.0) -> int:
    """Wait until a visible window of `cls` (WM_CLASS, regex) or `title` (regex) is mapped; its X id.
    ProgramError when `program` exits first or nothing shows within `timeout_s`."""
    if not cls and not title:
        raise ValueError("wait_window needs cls or title")
    args = ["xdotool", "search", "--onlyvisible"] + (["--class", cls] if cls else ["--name", title or ""])
    deadline = time.monotonic() + timeout_s
    while True:
        if program is not None and not program.alive():
            raise ProgramError(f"{program.name} failed to start: {program.death_line()}")
        found = [int(w) for w in x(display, *args).split() if w.isdigit()]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            what = f"class {cls!r}" if cls else f"title {title!r}"
            raise ProgramError(f"no window with {what} appeared on {display.name} within {timeout_s:g} s"
                               + (f" ({program.name} log: {_tail(program.log_path, 160)})" if program else ""))
        time.sleep(0.1)
