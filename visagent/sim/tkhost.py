"""Show a SimWorld in a real Tk window and forward raw Tk events into its low-level input.

Button press/release and motion become `pointer_down/move/up`; X11 wheel buttons 4/5 (vertical) and 6/7
(horizontal) become `wheel` (Tk 8.6 reports 6/7 as Shift+4/5); key presses become `key(name, modifiers)` or, for printable characters without
ctrl/alt/super, `text(char)` (so XTEST-typed Unicode from xdotool arrives as text). The world's virtual
clock follows real time (advanced before every event and on a ~30 ms tick), so animations, double clicks and
long presses behave as on a real screen. After every event the window is re-rendered and, with
`state_file`, the world's `state()` is written there as JSON (atomically), so a test can read the app state
from outside the process.

Run: `python -m visagent.sim.tkhost --scenario ID --seed N --state-file PATH [--geometry +X+Y] [--zoom Z]`
(or `--platform desktop|phone` for a bare world). The window shows the world at `zoom` (default: fit the
screen); events are mapped back to world pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tkinter as tk
from pathlib import Path
from typing import Any

from PIL import Image, ImageTk

from visagent.core.errors import VisagentError

# Tk event.state bits on X11
_SHIFT, _CONTROL, _ALT, _SUPER = 0x1, 0x4, 0x8, 0x40
_BUTTONS = {1: "left", 2: "middle", 3: "right"}
_KEYSYMS = {
    "return": "enter", "kp_enter": "enter", "backspace": "backspace", "prior": "pageup", "next": "pagedown",
    "iso_left_tab": "tab", "escape": "escape", "delete": "delete", "space": "space",
}
_MODIFIER_KEYSYMS = {"shift_l", "shift_r", "control_l", "control_r", "alt_l", "alt_r", "super_l", "super_r",
                     "meta_l", "meta_r", "caps_lock", "num_lock", "iso_level3_shift", "mode_switch"}


def modifiers_of(state: int) -> tuple[str, ...]:
    """World modifier names for a Tk event state mask."""
    mods = []
    if state & _CONTROL:
        mods.append("ctrl")
    if state & _SHIFT:
        mods.append("shift")
    if state & _ALT:
        mods.append("alt")
    if state & _SUPER:
        mods.append("meta")
    return tuple(mods)


class TkHost:
    """A Tk window showing `world`. `zoom`: window pixels per world pixel. `state_file`: JSON state path.

    Call `run()` for the Tk main loop (or `pump()` from a test). Raises tk.TclError when no display is reachable.
    """

    def __init__(self, world: Any, *, state_file: str | Path | None = None, geometry: str = "+0+0",
                 zoom: float | None = None, title: str = "visagent sim") -> None:
        self.world = world
        self.state_file = Path(state_file) if state_file else None
        self.root = tk.Tk(className="visagent-sim")
        self.root.title(title)
        w, h = world.size
        if zoom is None:
            fit = min(self.root.winfo_screenwidth() / w, (self.root.winfo_screenheight() - 40) / h)
            zoom = min(1.0, fit)
        self.zoom = zoom
        self.view_size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
        self.label = tk.Label(self.root, borderwidth=0, highlightthickness=0, cursor="left_ptr")
        self.label.pack()
        self.root.geometry(f"{self.view_size[0]}x{self.view_size[1]}{geometry}")
        self.root.resizable(False, False)
        self._photo: ImageTk.PhotoImage | None = None
        self._shown_key: Any = None
        self._last_t = time.monotonic()
        self._was_busy = False
        for seq, fn in (("<ButtonPress>", self._on_press), ("<ButtonRelease>", self._on_release),
                        ("<Motion>", self._on_motion), ("<KeyPress>", self._on_key)):
            self.label.bind(seq, fn)
        self.root.bind("<KeyPress>", self._on_key)
        self.label.focus_set()
        self.redraw(force=True)
        self.root.after(30, self._tick)

    # -- time and drawing ---------------------------------------------------------------------------
    def _advance(self) -> None:
        now = time.monotonic()
        self.world.clock.advance(max(0.0, now - self._last_t))
        self._last_t = now

    def redraw(self, force: bool = False) -> None:
        """Re-render the world into the window when it changed (or always with `force`)."""
        key = (self.world.version, self.world.clock.now() if self.world.busy() else None)
        if not force and key == self._shown_key:
            return
        image: Image.Image = self.world.render()
        if self.zoom != 1.0:
            image = image.resize(self.view_size, Image.BILINEAR)
        self._photo = ImageTk.PhotoImage(image)
        self.label.configure(image=self._photo)
        self._shown_key = key

    def write_state(self) -> None:
        """Write `world.state()` to the state file atomically (temp file + rename)."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.world.state(), default=str), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _tick(self) -> None:
        self._advance()
        busy = self.world.busy()
        self.redraw()
        if self._was_busy and not busy:
            self.write_state()  # an animation finished: its end state is observable
        self._was_busy = busy
        self.root.after(30, self._tick)

    def _after_event(self) -> None:
        self.redraw()
        self.write_state()

    # -- events -------------------------------------------------------------------------------------
    def _xy(self, event: tk.Event) -> tuple[float, float]:
        w, h = self.world.size
        x = min(max(event.x / self.zoom, 0), w - 1)
        y = min(max(event.y / self.zoom, 0), h - 1)
        return x, y

    def _on_press(self, event: tk.Event) -> None:
        self._advance()
        x, y = self._xy(event)
        num = int(event.num)
        if num in (4, 5) and int(event.state) & _SHIFT:
            # Tk 8.6 reports X11 horizontal wheel buttons 6/7 as Shift + 4/5 (as a shifted wheel is, by convention)
            self.world.wheel(x, y, 1 if num == 4 else -1, 0)
        elif num in (4, 5):
            self.world.wheel(x, y, 0, 1 if num == 4 else -1)
        elif num in (6, 7):
            self.world.wheel(x, y, 1 if num == 6 else -1, 0)
        elif num in _BUTTONS:
            self.world.pointer_down(x, y, _BUTTONS[num])
        self._after_event()

    def _on_release(self, event: tk.Event) -> None:
        num = int(event.num)
        if num not in _BUTTONS:
            return  # wheel buttons act on press
        self._advance()
        self.world.pointer_up(*self._xy(event), _BUTTONS[num])
        self._after_event()

    def _on_motion(self, event: tk.Event) -> None:
        self._advance()
        self.world.pointer_move(*self._xy(event))
        self.redraw()

    def _on_key(self, event: tk.Event) -> str:
        keysym = str(event.keysym)
        low = keysym.lower()
        if low in _MODIFIER_KEYSYMS:
            return "break"
        self._advance()
        mods = modifiers_of(int(event.state))
        char = event.char or ""
        if char and char.isprintable() and not set(mods) & {"ctrl", "alt", "meta"}:
            self.world.text(char)
        else:
            name = _KEYSYMS.get(low, low if len(keysym) > 1 else keysym.lower())
            if low == "iso_left_tab" and "shift" not in mods:
                mods = mods + ("shift",)
            self.world.key(name, mods)
        self._after_event()
        return "break"  # the root binding must not handle it twice

    # -- loop ---------------------------------------------------------------------------------------
    def pump(self, seconds: float = 0.0) -> None:
        """Process Tk events for about `seconds` (for in-process use)."""
        end = time.monotonic() + seconds
        while True:
            self.root.update()
            if time.monotonic() >= end:
                return
            time.sleep(0.01)

    def run(self) -> None:
        """The Tk main loop. The first state file is written once the window is on screen (first Expose),
        so its existence tells a test the window can take input."""
        def on_expose(_event: tk.Event) -> None:
            self.label.unbind("<Expose>", bind_id)
            self.root.after(50, self.write_state)

        bind_id = self.label.bind("<Expose>", on_expose, add="+")
        self.root.mainloop()


def build_world(scenario: str | None, seed: int, platform: str | None) -> Any:
    """The world to show: the scenario's (seeded), else a bare SimWorld of `platform`. Raises VisagentError."""
    if scenario:
        from visagent.sim.scenarios import get_scenario

        return get_scenario(scenario).make_world(seed)
    from visagent.sim.world import SimWorld

    return SimWorld(platform or "desktop", seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visagent.sim.tkhost",
                                     description="Show a sim world in a Tk window driven by real input events.")
    parser.add_argument("--scenario", help="scenario id (default: a bare world of --platform)")
    parser.add_argument("--platform", choices=("desktop", "phone"), help="bare world platform (no --scenario)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--state-file", help="write the world's state() JSON here after every event")
    parser.add_argument("--geometry", default="+0+0", help="window position +X+Y on the screen")
    parser.add_argument("--zoom", type=float, help="window pixels per world pixel (default: fit the screen)")
    args = parser.parse_args(argv)
    try:
        world = build_world(args.scenario, args.seed, args.platform)
        host = TkHost(world, state_file=args.state_file, geometry=args.geometry, zoom=args.zoom)
    except VisagentError as exc:
        print(f"tkhost: error: {exc}", file=sys.stderr)
        return 2
    except tk.TclError as exc:
        print(f"tkhost: error: cannot open a Tk window ({exc}); set DISPLAY to a running X server", file=sys.stderr)
        return 2
    host.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
