"""The `adb` command line, wrapped: device listing and selection, and one call with a timeout and clear errors.

Every call runs `adb -s SERIAL ...` as a subprocess with a timeout; failures become one-line
`ExecutorError`s that say what to do (install platform-tools, accept the USB-debugging prompt, reconnect).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass, field

from visagent.core.errors import ExecutorError

_PROP = re.compile(r"[a-z_]+:\S*")  # "model:Pixel_7" in `adb devices -l`
#: What adb prints on stderr when a device vanished (unplugged, emulator closed, adb server restarted).
_GONE_MARKERS = ("not found", "no devices", "no emulators", "device offline", "closed", "disconnected")


@dataclass(frozen=True)
class AndroidDevice:
    """One line of `adb devices -l`: serial, state ("device", "unauthorized", "offline", ...) and properties."""

    serial: str
    state: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.properties.get("model", "")

    def describe(self) -> str:
        model = f" ({self.model})" if self.model else ""
        return f"{self.serial}{model} [{self.state}]"


def parse_devices(output: str) -> list[AndroidDevice]:
    """Parse `adb devices -l` output. Skips the header and daemon start-up lines (`* daemon ...`)."""
    devices: list[AndroidDevice] = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.lower().startswith("list of devices"):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        serial, state = parts[0], parts[1]
        props: dict[str, str] = {}
        if state == "no":  # "no permissions (user in plugdev group; ...)"
            state = "no permissions"
        else:
            for word in parts[2:]:
                if _PROP.fullmatch(word):
                    key, _, value = word.partition(":")
                    props[key] = value
        devices.append(AndroidDevice(serial, state, props))
    return devices


def run_adb(adb: str, args: list[str], timeout_s: float, *, what: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `adb ARGS` and return the completed process (stdout/stderr as bytes), whatever its exit status.

    Raises ExecutorError when adb is missing or not executable, or the call runs past `timeout_s` seconds.
    """
    what = what or " ".join(args)
    try:
        # its own process group, so that a timeout ends adb and everything it started (a wrapper script's child,
        # an `adb shell` helper): killing adb alone left those running after the run had ended
        proc = subprocess.Popen([adb, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except FileNotFoundError:
        raise ExecutorError(
            f"adb not found ({adb!r}); install Android platform-tools (apt install adb) and put adb on PATH"
        ) from None
    except PermissionError:
        raise ExecutorError(f"adb at {adb!r} is not executable; fix its permissions (chmod +x) or put a working adb first on PATH") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ExecutorError(
            f"adb {what} timed out after {timeout_s:g}s; the device may be busy or disconnected "
            "(check `adb devices`, reconnect, or raise the timeout)"
        ) from None
    except BaseException:  # Ctrl-C or a stop while adb runs: leave nothing of it behind
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL adb's whole process group and reap adb (its pipes are closed, not drained: a leftover holder of
    them must not keep us waiting)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    proc.wait()


def list_devices(adb: str = "adb", timeout_s: float = 10.0) -> list[AndroidDevice]:
    """All devices adb knows, in any state. Raises ExecutorError (missing adb, timeout, adb failure)."""
    proc = run_adb(adb, ["devices", "-l"], timeout_s)
    if proc.returncode != 0:
        raise ExecutorError(f"adb devices failed: {_tail(proc)}; try `adb kill-server` and retry")
    return parse_devices(proc.stdout.decode("utf-8", "replace"))


def choose_device(devices: list[AndroidDevice], serial: str | None) -> AndroidDevice:
    """Pick the device to drive: the one with `serial`, else the only ready one. Raises ExecutorError."""
    listing = ", ".join(d.describe() for d in devices) or "none"
    if serial is not None:
        match = [d for d in devices if d.serial == serial]
        if not match:
            raise ExecutorError(f"no Android device with serial {serial!r}; connected: {listing}")
        device = match[0]
        _check_state(device)
        return device
    ready = [d for d in devices if d.state == "device"]
    if len(ready) == 1:
        return ready[0]
    if len(ready) > 1:
        raise ExecutorError(
            f"several Android devices connected ({listing}); choose one with --serial SERIAL (or ANDROID_SERIAL)"
        )
    if devices:
        _check_state(devices[0])
    raise ExecutorError(
        "no Android device connected (`adb devices` lists none); plug one in with USB debugging on, "
        "or start an emulator"
    )


def _check_state(device: AndroidDevice) -> None:
    if device.state == "device":
        return
    if device.state == "unauthorized":
        raise ExecutorError(
            f"Android device {device.serial} is unauthorized: unlock it and accept the USB-debugging prompt "
            "(then rerun)"
        )
    if device.state == "offline":
        raise ExecutorError(f"Android device {device.serial} is offline: reconnect it (or `adb reconnect`) and rerun")
    if device.state == "no permissions":
        raise ExecutorError(
            f"no permission to use Android device {device.serial}: add a udev rule / plugdev group, then "
            "`adb kill-server` and rerun"
        )
    raise ExecutorError(f"Android device {device.serial} is in state {device.state!r}, not ready; reconnect it")


def shell_quote(text: str) -> str:
    """Quote `text` as one word for the device's POSIX shell (`adb shell` joins its arguments into a command line)."""
    return shlex.quote(text)


def default_serial() -> str | None:
    """The serial in ANDROID_SERIAL (adb's own variable), if set."""
    return os.environ.get("ANDROID_SERIAL") or None


def _tail(proc: subprocess.CompletedProcess[bytes], limit: int = 200) -> str:
    text = (proc.stderr or b"").decode("utf-8", "replace").strip() or (proc.stdout or b"").decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return (text[:limit] + "...") if len(text) > limit else (text or f"exit status {proc.returncode}")


def failure_message(serial: str, what: str, proc: subprocess.CompletedProcess[bytes]) -> str:
    """One line explaining a failed `adb -s SERIAL ...` call, with the likely fix."""
    tail = _tail(proc)
    low = tail.lower()
    if "unauthorized" in low:
        return (f"Android device {serial} is unauthorized (adb {what}: {tail}); accept the USB-debugging "
                "prompt on the phone and rerun")
    if any(m in low for m in _GONE_MARKERS):
        return f"Android device {serial} disconnected during adb {what} ({tail}); reconnect it and rerun"
    return f"adb {what} failed on {serial}: {tail}"
