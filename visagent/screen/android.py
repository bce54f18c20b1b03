"""Android executor over the `adb` command line (no on-device agent needed).

Capture: `adb exec-out screencap -p` (PNG, device pixels; input uses the same pixels, so scale is 1.0).
Input: `input tap` / `input swipe` (a long press is a zero-distance swipe held for its time), `input text` with
the text quoted for the device shell and spaces written `%s`, `input keyevent` for keys and system buttons.
Text with characters `input text` cannot type (anything beyond printable ASCII) goes through the ADBKeyboard
IME (`com.android.adbkeyboard/.AdbIME`, broadcast `ADB_INPUT_B64`, base64 so nothing needs escaping) when it
is installed, else raises a clear ExecutorError. Apps open by package or label via `monkey -p PKG -c
android.intent.category.LAUNCHER 1`. Every adb call has a timeout; a missing adb, no device, an unauthorized
device or one that disconnects mid-run raises a one-line ExecutorError.
"""

from __future__ import annotations

import base64
import io
import re
import time

from PIL import Image, UnidentifiedImageError

from visagent.core import actions as A
from visagent.core.actions import Action, scroll_clicks, scroll_note
from visagent.core.errors import ExecutorError
from visagent.screen.adb import (
    AndroidDevice, choose_device, default_serial, failure_message, list_devices, run_adb, shell_quote,
)
from visagent.screen.base import ExecResult, Observation, ScreenGeometry
from visagent.screen.settle import SettleDetector, resolve_settle

ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"

#: System buttons of the mobile_use schema → Android keycodes.
SYSTEM_BUTTON_KEYCODES: dict[str, int] = {"Back": 4, "Home": 3, "Menu": 82, "Enter": 66}

#: Key names (Qwen computer_use / mobile_use, lower-case) → Android keycodes.
KEYCODES: dict[str, int] = {
    "home": 3, "back": 4, "call": 5, "endcall": 6, "up": 19, "down": 20, "left": 21, "right": 22,
    "center": 23, "volume_up": 24, "volume_down": 25, "power": 26, "camera": 27, "tab": 61, "space": 62,
    "enter": 66, "return": 66, "backspace": 67, "del": 67, "menu": 82, "search": 84, "page_up": 92,
    "pageup": 92, "page_down": 93, "pagedown": 93, "esc": 111, "escape": 111, "delete": 112,
    "forward_del": 112, "ctrl": 113, "control": 113, "alt": 57, "shift": 59, "meta": 117, "super": 117,
    "move_home": 122, "move_end": 123, "end": 123, "app_switch": 187, "recent": 187, "recents": 187,
    "sleep": 223, "wakeup": 224, "mute": 164, "volume_mute": 164,
}

#: Common app labels → packages (Google / AOSP builds); a user's `label_map` and installed packages come first.
APP_LABELS: dict[str, str] = {
    "settings": "com.android.settings", "chrome": "com.android.chrome", "camera": "com.android.camera2",
    "clock": "com.google.android.deskclock", "contacts": "com.google.android.contacts",
    "phone": "com.google.android.dialer", "messages": "com.google.android.apps.messaging",
    "gmail": "com.google.android.gm", "maps": "com.google.android.apps.maps",
    "youtube": "com.google.android.youtube", "play store": "com.android.vending",
    "photos": "com.google.android.apps.photos", "calendar": "com.google.android.calendar",
    "files": "com.google.android.documentsui", "calculator": "com.google.android.calculator",
}

_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_WM_SIZE = re.compile(r"(Physical|Override) size:\s*(\d+)x(\d+)")
_WM_DENSITY = re.compile(r"(Physical|Override) density:\s*(\d+)")
_DEFAULT_LONG_PRESS_S = 1.0
_DEFAULT_SWIPE_S = 0.3
# A scroll's `pixels` counts wheel clicks; on a phone one click is a finger move of 48 dp (the sim's wheel step,
# visagent.sim.lists.WHEEL_CLICK_DP), in pixels from `wm density` (160 dpi = 1 px per dp).
_SCROLL_CLICK_DP = 48
_MAX_SWIPE_FRACTION = 0.6  # one swipe moves at most this share of the screen; longer scrolls take several


def default_android_settle() -> SettleDetector:
    """Settle parameters for a phone: a screencap takes 0.1-1 s, so few, spaced captures."""
    return SettleDetector(threshold=0.0, consecutive=2, interval_s=0.1, max_wait_s=5.0, wait_for_change_s=0.3)


def input_text_chunks(text: str) -> list[str]:
    """Split printable-ASCII `text` into `input text` arguments (unquoted): spaces become `%s`.

    `input text` turns every `%s` into a space, so a literal "%s" in the text is split across two calls
    ("50%" then "sale") to survive. Raises ValueError for characters `input text` cannot type.
    """
    bad = [c for c in text if not (32 <= ord(c) <= 126)]
    if bad:
        raise ValueError(f"input text cannot type {bad[0]!r}")
    pieces = text.split("%s")
    chunks = [p + "%" if i < len(pieces) - 1 else p for i, p in enumerate(pieces)]
    chunks = [chunks[0]] + ["s" + c for c in chunks[1:]]
    return [c.replace(" ", "%s") for c in chunks if c]


def input_text_commands(text: str) -> list[str]:
    """Device shell commands that type printable-ASCII `text` (newlines as ENTER, tabs as TAB key events)."""
    commands: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            commands.append(f"input keyevent {KEYCODES['enter']}")
        for j, part in enumerate(line.split("\t")):
            if j:
                commands.append(f"input keyevent {KEYCODES['tab']}")
            commands += [f"input text {shell_quote(chunk)}" for chunk in input_text_chunks(part)]
    return commands


def needs_ime(text: str) -> bool:
    """Whether `text` has characters `input text` cannot type (anything but printable ASCII, newline, tab)."""
    return any(not (32 <= ord(c) <= 126) and c not in "\n\t" for c in text)


def keycode_for(name: str) -> str:
    """An Android keycode argument for a key name: a number, `KEYCODE_*`, or a name from KEYCODES.

    Raises ExecutorError for an unknown name (with the fix).
    """
    key = name.strip()
    if key.isdigit() or key.upper().startswith("KEYCODE_"):
        return key.upper()
    low = key.lower().replace("-", "_")
    if low in KEYCODES:
        return str(KEYCODES[low])
    if len(key) == 1 and key.isalnum():
        return f"KEYCODE_{key.upper()}"
    if re.fullmatch(r"f([1-9]|1[0-2])", low):
        return str(131 + int(low[1:]) - 1)
    raise ExecutorError(f"unknown Android key {name!r}; use a KEYCODE_* name, a keycode number or one of: "
                        f"{', '.join(sorted(KEYCODES))}")


class AndroidExecutor:
    """Drives one Android device through adb. Coordinates: device pixels ("screen" space; scale 1.0).

    serial: which device (default: ANDROID_SERIAL, else the only ready device). adb: the adb program.
    timeout_s: limit for every adb call. settle: how a Screen over this executor settles after an action: True
    (default phone parameters), a SettleDetector, or False (the Screen's default detector). A Screen compares the
    settled screen with the last one captured (a screencap costs 0.1-1 s). label_map: extra app label → package
    names for `open`.
    Raises ExecutorError on construction when adb is missing or no usable device is found.
    """

    platform = "phone"
    name = "android"

    def __init__(
        self,
        serial: str | None = None,
        adb: str = "adb",
        timeout_s: float = 15.0,
        settle: SettleDetector | bool = True,
        label_map: dict[str, str] | None = None,
    ) -> None:
        self.adb = adb
        self.timeout_s = timeout_s
        self.settle = resolve_settle(settle, default_android_settle)
        self.label_map = {k.lower(): v for k, v in (label_map or {}).items()}
        self.device: AndroidDevice = choose_device(list_devices(adb, timeout_s), serial or default_serial())
        self.serial = self.device.serial
        self._geometry: ScreenGeometry | None = None
        self._dpi: int | None = None  # `wm density`, read at the first scroll
        self.closed = False
        self._packages: list[str] | None = None

    # -- adb plumbing ---------------------------------------------------------------------------------
    def _adb(self, args: list[str], what: str) -> bytes:
        proc = run_adb(self.adb, ["-s", self.serial, *args], self.timeout_s, what=what)
        if proc.returncode != 0:
            raise ExecutorError(failure_message(self.serial, what, proc))
        return proc.stdout

    def shell(self, command: str) -> str:
        """Run one device shell command line (already quoted) and return its stdout. Raises ExecutorError."""
        what = "shell " + " ".join(command.split()[:2])
        return self._adb(["shell", command], what).decode("utf-8", "replace")

    # -- screen -------------------------------------------------------------------------------------
    def screen_size(self) -> tuple[int, int]:
        """(width, height) in pixels from `wm size` (the override size when one is set), portrait order."""
        out = self.shell("wm size")
        sizes = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _WM_SIZE.finditer(out)}
        size = sizes.get("Override") or sizes.get("Physical")
        if size is None:
            raise ExecutorError(f"cannot read the screen size from `wm size` on {self.serial}: {out.strip()!r}")
        return size

    def density(self) -> int:
        """Screen density in dpi from `wm density` (the override when set); 160 dpi = 1 dp per pixel."""
        out = self.shell("wm density")
        found = {m.group(1): int(m.group(2)) for m in _WM_DENSITY.finditer(out)}
        dpi = found.get("Override") or found.get("Physical")
        if dpi is None:
            raise ExecutorError(f"cannot read the density from `wm density` on {self.serial}: {out.strip()!r}")
        return dpi

    def _px_per_dp(self) -> float:
        """Device pixels per dp (from `wm density`, read once)."""
        if self._dpi is None:
            self._dpi = self.density()
        return self._dpi / 160

    def geometry(self) -> ScreenGeometry:
        """The screen as last captured (rotation included), else from `wm size`."""
        if self._geometry is None:
            w, h = self.screen_size()
            self._geometry = ScreenGeometry.simple(w, h)
        return self._geometry

    def capture(self) -> Image.Image:
        """One screenshot via `exec-out screencap -p`, as RGB. Raises ExecutorError on a bad or missing PNG."""
        data = self._adb(["exec-out", "screencap", "-p"], "exec-out screencap -p")
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError):
            head = data[:60].decode("utf-8", "replace").strip()
            raise ExecutorError(
                f"screencap on {self.serial} returned no PNG ({len(data)} bytes: {head!r}); is the screen on "
                "and the device unlocked?"
            ) from None
        image = image.convert("RGB")
        if self._geometry is None or self._geometry.physical_width != image.width:
            self._geometry = ScreenGeometry.simple(image.width, image.height)
        return image

    def screenshot(self) -> Observation:
        image = self.capture()
        return Observation(image, self.geometry(), time.time())

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        """Nothing to release (each adb call is its own process); marks the executor closed for its Screen."""
        self.closed = True

    # -- actions ------------------------------------------------------------------------------------
    def execute(self, action: Action) -> ExecResult:
        """Execute a "screen"-space action (settling is the Screen's: visagent.screen.seam).

        Unsupported actions (right/middle click, mouse_move) return ok=False with a message for the model.
        Raises ExecutorError when adb or the device fails.
        """
        if action.space != "screen" and action.coordinate is not None:
            raise ExecutorError(f"AndroidExecutor needs screen-space actions; convert with visagent.loop.coords.to_screen "
                                f"first (got space {action.space!r})")
        start = time.monotonic()
        message = self._perform(action)
        execute_s = time.monotonic() - start
        if message is not None:
            return ExecResult(ok=False, message=message, execute_s=execute_s)
        done = action.summary()
        if action.action in (A.SCROLL, A.HSCROLL) and action.pixels and scroll_note(action.pixels):
            done += f" ({scroll_note(action.pixels)})"
        return ExecResult(ok=True, message=done, execute_s=execute_s)

    def _perform(self, action: Action) -> str | None:
        """Send the adb commands for `action`; return a message when the action is not supported here."""
        name = action.action
        if name in (A.CLICK, A.LEFT_CLICK):
            if action.keys:
                return f"{name} with held keys is not supported on Android"
            x, y = self._point(action.coordinate)
            self.shell(f"input tap {x} {y}")
        elif name == A.DOUBLE_CLICK:
            x, y = self._point(action.coordinate)
            self.shell(f"input tap {x} {y}; input tap {x} {y}")
        elif name == A.TRIPLE_CLICK:
            x, y = self._point(action.coordinate)
            self.shell(f"input tap {x} {y}; input tap {x} {y}; input tap {x} {y}")
        elif name == A.LONG_PRESS:
            x, y = self._point(action.coordinate)
            ms = round(1000 * (action.time if action.time is not None else _DEFAULT_LONG_PRESS_S))
            self.shell(f"input swipe {x} {y} {x} {y} {ms}")
        elif name == A.SWIPE or (name == A.LEFT_CLICK_DRAG and action.coordinate2 is not None):
            x1, y1 = self._point(action.coordinate)
            x2, y2 = self._point(action.coordinate2)
            ms = round(1000 * (action.time if action.time is not None else _DEFAULT_SWIPE_S))
            self.shell(f"input swipe {x1} {y1} {x2} {y2} {ms}")
        elif name in (A.SCROLL, A.HSCROLL):
            self._scroll(action)
        elif name == A.TYPE:
            if action.coordinate is not None:
                x, y = self._point(action.coordinate)
                self.shell(f"input tap {x} {y}")
            self.type_text(action.text or "")
        elif name == A.KEY:
            keys = list(action.keys) if action.keys else [action.text or ""]
            codes = [keycode_for(k) for k in keys]
            if len(codes) == 1:
                self.shell(f"input keyevent {codes[0]}")
            else:  # Android 13+; older versions print usage and fail with a clear adb error
                self.shell("input keycombination " + " ".join(codes))
        elif name == A.SYSTEM_BUTTON:
            self.shell(f"input keyevent {SYSTEM_BUTTON_KEYCODES[action.button or '']}")
        elif name == A.OPEN:
            self.open_app(action.text or "")
        elif name == A.WAIT:
            self.sleep(action.time if action.time is not None else 1.0)
        elif name in (A.TERMINATE, A.ANSWER, A.CALL_USER):
            pass
        else:  # mouse_move, right/middle click, drag from the current pointer: no pointer on a phone
            return f"action {name!r} is not supported on Android; use click, long_press, swipe, type, key, open"
        return None

    def _point(self, point: tuple[float, float] | None) -> tuple[int, int]:
        if point is None:
            g = self.geometry()
            return g.width // 2, g.height // 2
        return round(point[0]), round(point[1])

    def _scroll(self, action: Action) -> None:
        """A scroll as finger swipes: `pixels` wheel clicks (capped, visagent.core.actions.scroll_clicks) of 48 dp each;
        positive scrolls up/left (the finger moves down/right); each swipe is centred on the point, and a scroll
        longer than 60% of the screen takes several."""
        g = self.geometry()
        x, y = self._point(action.coordinate)
        clicks = scroll_clicks(action.pixels or 0)
        span = g.height if action.action == A.SCROLL else g.width
        total = round(abs(clicks) * _SCROLL_CLICK_DP * self._px_per_dp())
        most = max(1, int(_MAX_SWIPE_FRACTION * span))
        swipes = []
        while total > 0:  # each swipe centred on the point, moved inside the screen when it would leave it
            dist = min(total, most)
            total -= dist
            at = y if action.action == A.SCROLL else x
            start = min(max(at - dist // 2, 0), span - 1 - dist) if clicks > 0 else \
                min(max(at + dist // 2, dist), span - 1)
            end = start + dist if clicks > 0 else start - dist
            points = (x, start, x, end) if action.action == A.SCROLL else (start, y, end, y)
            swipes.append("input swipe {} {} {} {} ".format(*points) + str(round(1000 * _DEFAULT_SWIPE_S)))
        self.shell("; ".join(swipes))

    def type_text(self, text: str) -> None:
        """Type `text` into the focused field. Raises ExecutorError when it needs an IME that is not installed."""
        if not text:
            return
        if needs_ime(text):
            self._type_with_ime(text)
            return
        # one shell call per line keeps each command short (shell command lines are limited to a few KB)
        for command in input_text_commands(text):
            self.shell(command)

    def _type_with_ime(self, text: str) -> None:
        imes = self.shell("ime list -s").split()
        if ADB_KEYBOARD_IME not in imes:
            raise ExecutorError(
                f"cannot type {text[:20]!r} on {self.serial}: `input text` types only ASCII; install ADBKeyboard "
                f"(github.com/senzhk/ADBKeyBoard) so {ADB_KEYBOARD_IME} is listed by `adb shell ime list -s`"
            )
        previous = self.shell("settings get secure default_input_method").strip()
        if previous != ADB_KEYBOARD_IME:
            self.shell(f"ime enable {ADB_KEYBOARD_IME}; ime set {ADB_KEYBOARD_IME}")
        try:
            msg = base64.b64encode(text.encode("utf-8")).decode("ascii")
            out = self.shell(f"am broadcast -a ADB_INPUT_B64 --es msg {msg}")
            if "Broadcast completed" not in out:
                raise ExecutorError(f"ADBKeyboard broadcast on {self.serial} did not complete: {out.strip()[:120]!r}")
        finally:
            if previous and previous != "null" and previous != ADB_KEYBOARD_IME:
                self.shell(f"ime set {shell_quote(previous)}")

    # -- apps ---------------------------------------------------------------------------------------
    def packages(self) -> list[str]:
        """Installed package names (`cmd package list packages`), cached per executor."""
        if self._packages is None:
            out = self.shell("cmd package list packages")
            self._packages = sorted(line[8:].strip() for line in out.splitlines() if line.startswith("package:"))
        return self._packages

    def resolve_app(self, name: str) -> str:
        """A package name for an app given by package or label. Raises ExecutorError when none or several match.

        Order: an installed package name; the executor's label_map; APP_LABELS; installed packages whose
        name contains the label's words (case-insensitive, spaces ignored).
        """
        wanted = name.strip()
        packages = self.packages()
        if wanted in packages:
            return wanted
        low = wanted.lower()
        for table in (self.label_map, APP_LABELS):
            if low in table and table[low] in packages:
                return table[low]
        squashed = re.sub(r"[^a-z0-9]", "", low)
        if squashed:
            hits = [p for p in packages if squashed in p.lower().replace("_", "")]
            tail_hits = [p for p in hits if p.lower().rsplit(".", 1)[-1].startswith(squashed)]
            hits = tail_hits or hits
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise ExecutorError(f"app {name!r} matches several packages ({', '.join(hits[:6])}); "
                                    "open it by package name")
        kind = "package" if _PACKAGE.fullmatch(wanted) else "app"
        raise ExecutorError(f"{kind} {name!r} is not installed on {self.serial}; "
                            "check `adb shell cmd package list packages` for its package name")

    def open_app(self, name: str) -> str:
        """Launch an app by package or label via monkey; returns the package. Raises ExecutorError."""
        package = self.resolve_app(name)
        out = self.shell(f"monkey -p {shell_quote(package)} -c android.intent.category.LAUNCHER 1")
        if "No activities found" in out or "aborted" in out.lower():
            raise ExecutorError(f"{package} has no launcher activity to open on {self.serial} ({out.strip()[:120]})")
        return package


def list_android_devices(adb: str = "adb", timeout_s: float = 10.0) -> list[AndroidDevice]:
    """Devices for pickers (any state). Raises ExecutorError when adb is missing or fails."""
    return list_devices(adb, timeout_s)
