"""Processes of the real-desktop world: start them marked, find them again, end them.

Every process a real-desktop world starts (Xvfb, the window manager, the programs) carries the environment
variable `VISAGENT_REAL_TOKEN=<token>` of its world and runs in a session of its own (start_new_session), so
its children stay in its process group. `setpriv --pdeathsig TERM` (util-linux) makes each one get SIGTERM
when the visagent thread that started it dies, whatever the cause.

A SIGKILLed visagent cannot end what it started, and pdeath does not reach grandchildren, so each world also
writes a record under the state directory (`state_dir()`): its token and its owner's pid and start time.
`cleanup_strays()`, called by every world start, finds records whose owner is gone and ends every process that
still carries their token (read from /proc/PID/environ: only processes of this user, only processes a world
marked, never by name), then removes the record and the stale X lock file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TOKEN_VAR = "VISAGENT_REAL_TOKEN"


def state_dir() -> Path:
    """Where world records live: $VISAGENT_REAL_STATE, else <tmp>/visagent-real-<uid> (mode 0700)."""
    raw = os.environ.get("VISAGENT_REAL_STATE")
    path = Path(raw) if raw else Path(tempfile.gettempdir()) / f"visagent-real-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def new_token() -> str:
    return secrets.token_hex(8)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None when it is gone.
    A pid with another start time is another process (pids are reused)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = raw[raw.rindex(")") + 2:].split()
        if fields[0] == "Z":
            return None  # a zombie has ended; only its parent's wait is missing
        return int(fields[19])
    except (ValueError, IndexError):
        return None


def marked_pids(token: str) -> list[int]:
    """Pids of this user's live processes whose environment carries `token` (VISAGENT_REAL_TOKEN=token)."""
    needle = f"{TOKEN_VAR}={token}".encode() + b"\0"
    me = os.getpid()
    out: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        if needle in env + b"\0" and start_time(int(entry.name)) is not None:
            out.append(int(entry.name))
    return out


def kill_marked(token: str, grace_s: float = 2.0) -> int:
    """End every process carrying `token`: SIGTERM, then SIGKILL after `grace_s`. Returns how many were found."""
    pids = marked_pids(token)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if start_time(p) is not None]
    left = marked_pids(token)
    for pid in left:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0  # gone, not just signalled: a dying browser may still write its profile
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if start_time(p) is not None]
    return len(pids)


def remove_tree(path: Path, tries: int = 5) -> None:
    """rmtree that retries: a process that just ended may have written one last file into it."""
    for _ in range(tries):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.1)
    log.warning("could not remove %s", path)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(argv: list[str], env: dict[str, str], log_path: Path | None, *, pass_fds: tuple[int, ...] = (),
          cwd: Path | None = None) -> subprocess.Popen:
    """Start `argv` in a session of its own with `env`, its output to `log_path` (a file: a chatty program never
    blocks on a full pipe), getting SIGTERM when the starting thread dies (setpriv --pdeathsig, when installed)."""
    setpriv = shutil.which("setpriv")
    full = [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen(full, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, pass_fds=pass_fds, close_fds=True, cwd=cwd)
    finally:
        if out is not subprocess.DEVNULL:
            out.close()


def end_process(proc: subprocess.Popen, grace_s: float = 2.0) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it after `grace_s`, and reap `proc`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # what the leader left behind in its group (a browser's renderers)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- world records --------------------------------------------------------------------------------------------
def write_record(token: str, **fields: Any) -> Path:
    """Record a live world (its owner is this process) so a later start can clean up after a SIGKILL."""
    path = state_dir() / f"world-{token}.json"
    data = {"token": token, "owner_pid": os.getpid(), "owner_start": start_time(os.getpid()),
            "created": time.time(), **fields}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
    return path


def update_record(token: str, **fields: Any) -> None:
    path = state_dir() / f"world-{token}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    data.update(fields)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def remove_record(token: str) -> None:
    (state_dir() / f"world-{token}.json").unlink(missing_ok=True)


def cleanup_strays() -> list[str]:
    """End what worlds whose owner died (SIGKILL) left running; returns one line per world cleaned up.
    Worlds of live owners (another scenario running right now, in this process or another) are left alone."""
    lines: list[str] = []
    for path in sorted(state_dir().glob("world-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            token = str(data["token"])
            owner, owner_start = int(data["owner_pid"]), data.get("owner_start")
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable world record %s", path)
            continue
        if start_time(owner) is not None and start_time(owner) == owner_start:
            continue  # its owner lives: that world is in use
        killed = kill_marked(token)
        _remove_stale_x_lock(data.get("display"), data.get("xvfb_pid"))
        _remove_world_dir(data.get("root"))
        path.unlink(missing_ok=True)
        lines.append(f"cleaned up world {token} of dead process {owner}"
                     + (f" (display {data.get('display')}, {killed} process(es) ended)" if killed else ""))
    for line in lines:
        log.warning(line)
    return lines


def _remove_world_dir(root: Any) -> None:
    """Remove a dead world's private directory: only a `visagent-real-*` directory directly in the temp dir."""
    if not root:
        return
    path = Path(str(root))
    if path.name.startswith("visagent-real-") and path.parent == Path(tempfile.gettempdir()) and path.is_dir() \
            and path.resolve() != state_dir().resolve() \
            and not path.is_symlink():
        remove_tree(path)


def _remove_stale_x_lock(display: Any, xvfb_pid: Any) -> None:
    """Remove /tmp/.X<N>-lock and its socket when they belong to our Xvfb, now dead."""
    if not display or not xvfb_pid:
        return
    number = str(display).lstrip(":")
    lock = Path(f"/tmp/.X{number}-lock")
    try:
        if int(lock.read_text().strip()) != int(xvfb_pid) or start_time(int(xvfb_pid)) is not None:
            return
    except (OSError, ValueError):
        return
    lock.unlink(missing_ok=True)
    Path(f"/tmp/.X11-unix/X{number}").unlink(missing_ok=True)
