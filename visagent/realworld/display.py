"""A private X display for one real-desktop world: Xvfb at a chosen size plus a small window manager (openbox).

Each world gets its own display: Xvfb picks a free number itself (`-displayfd`: it binds the first free one,
so two worlds starting at once never collide), listens on its unix socket only (`-nolisten tcp`), and is
marked and recorded (visagent.realworld.procs) so nothing outlives a killed run beyond the next start's
`cleanup_strays()`. A second scenario started while one holds a display therefore simply gets the next
display; nothing is shared between worlds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from visagent.realworld import procs
from visagent.realworld.errors import ProgramError, require

WM_PACKAGE = {"openbox": "openbox"}


class Display:
    """A running Xvfb (+ window manager). `name` is ":N"; `env()` is the environment its programs get."""

    def __init__(self, token: str, root: Path, width: int, height: int) -> None:
        self.token = token
        self.root = root  # the world's private directory (logs, home)
        self.width = width
        self.height = height
        self.name = ""
        self.xvfb: subprocess.Popen | None = None
        self.wm: subprocess.Popen | None = None

    @property
    def number(self) -> int:
        return int(self.name.lstrip(":"))

    def env(self, home: Path | None = None) -> dict[str, str]:
        """A clean environment for programs on this display: its DISPLAY, the world's marker, and (with `home`)
        HOME and XDG directories inside the world so no program reads or writes the user's own config."""
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.setdefault("LANG", "C.UTF-8")
        env.update({"DISPLAY": self.name, procs.TOKEN_VAR: self.token, "NO_AT_BRIDGE": "1", "GDK_BACKEND": "x11",
                    "XAUTHORITY": str(self.root / "Xauthority")})
        if home is not None:
            runtime = home / ".run"
            for d in (home, home / ".config", home / ".local/share", home / ".cache", runtime):
                d.mkdir(parents=True, exist_ok=True)
            runtime.chmod(0o700)
            env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                        "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
                        "XDG_RUNTIME_DIR": str(runtime)})
        return env

    def start(self, wm: str | None = "openbox", timeout_s: float = 20.0) -> None:
        """Start Xvfb (and `wm`). Raises ProgramError (one line) when a part is missing or does not come up."""
        exe = require("Xvfb", "xvfb")
        if wm is not None:
            require(wm, WM_PACKAGE.get(wm, wm))
        (self.root / "Xauthority").touch()
        read_fd, write_fd = os.pipe()
        try:
            self.xvfb = procs.spawn(
                [exe, "-displayfd", str(write_fd), "-screen", "0", f"{self.width}x{self.height}x24",
                 "-nolisten", "tcp", "-noreset", "+extension", "RANDR"],
                self.env(), self.root / "xvfb.log", pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        number = read_display_number(read_fd, self.xvfb, timeout_s)
        if number is None:
            raise ProgramError(f"Xvfb did not start: {_tail(self.root / 'xvfb.log')}")
        self.name = f":{number}"
        procs.update_record(self.token, display=self.name, xvfb_pid=self.xvfb.pid)
        deadline = time.monotonic() + timeout_s
        while not accepts_connections(self.name):
            if self.xvfb.poll() is not None or time.monotonic() > deadline:
                raise ProgramError(f"Xvfb on {self.name} did not accept connections: {_tail(self.root / 'xvfb.log')}")
            time.sleep(0.05)
        if wm is not None:
            self._start_wm(wm, deadline)

    def _start_wm(self, wm: str, deadline: float) -> None:
        home = self.root / "wm-home"
        self.wm = procs.spawn([shutil.which(wm) or wm, "--sm-disable"] if wm == "openbox" else [wm],
                              self.env(home), self.root / f"{wm}.log")
        wmctrl = shutil.which("wmctrl")
        while True:  # the WM is up when it has claimed the screen (wmctrl -m names it)
            if self.wm.poll() is not None:
                raise ProgramError(f"window manager {wm} exited at start: {_tail(self.root / f'{wm}.log')}")
            if wmctrl is None:
                time.sleep(0.5)
                return
            done = subprocess.run([wmctrl, "-m"], env=self.env(), capture_output=True, text=True, timeout=10)
            if done.returncode == 0 and "Name:" in done.stdout:
                return
            if time.monotonic() > deadline:
                raise ProgramError(f"window manager {wm} did not take the screen {self.name}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.xvfb is not None and self.xvfb.poll() is None

    def close(self) -> None:
        """End the window manager and Xvfb (their whole process groups)."""
        for proc in (self.wm, self.xvfb):
            if proc is not None:
                procs.end_process(proc)
        self.wm = self.xvfb = None


def read_display_number(fd: int, proc: subprocess.Popen, timeout_s: float) -> int | None:
    """The display number an `Xvfb -displayfd FD` writes to the pipe's read end `fd` (closed here), or None when
    it writes none within `timeout_s` or exits first."""
    deadline = time.monotonic() + timeout_s
    data = b""
    try:
        os.set_blocking(fd, False)
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                chunk = os.read(fd, 32)
            except BlockingIOError:
                chunk = None
            if chunk:
                data += chunk
                if data.endswith(b"\n"):
                    break
            elif chunk == b"":
                break
            time.sleep(0.02)
    finally:
        os.close(fd)
    try:
        return int(data.strip())
    except ValueError:
        return None


def accepts_connections(display: str) -> bool:
    """Whether the X server of `display` (":N") accepts connections on its local socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(f"/tmp/.X11-unix/X{display.lstrip(':')}")
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _tail(path: Path, chars: int = 300, *, keep_lines: bool = False) -> str:
    """The end of a log file as one line ("(no log)", "(empty log)"), or with `keep_lines` its raw end."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "" if keep_lines else "(no log)"
    if keep_lines:
        return text[-chars:]
    return " ".join(text[-chars:].split()) or "(empty log)"
