"""Settings: sections of toggles, sliders, radio buttons, dropdowns, checkboxes and a device-name field.

Desktop: a sidebar of sections beside the selected section's controls. Phone: a list of sections; tapping
one pushes its page (Back returns). Dark mode re-themes the whole world.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App, Column
from visagent.sim.lists import Dropdown, ListItem, ListView
from visagent.sim.textfield import TextField
from visagent.sim.controls import RadioGroup, Slider
from visagent.sim.widgets import Button, Checkbox, Label, Toggle, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

# key, section, kind, label, options
CONTROLS: list[tuple[str, str, str, str, Any]] = [
    ("wifi", "Network", "toggle", "Wi-Fi", None),
    ("bluetooth", "Network", "toggle", "Bluetooth", None),
    ("airplane", "Network", "toggle", "Airplane mode", None),
    ("dark_mode", "Display", "toggle", "Dark mode", None),
    ("brightness", "Display", "slider", "Brightness", (0, 100, 5)),
    ("font_size", "Display", "radio", "Font size", ["Small", "Medium", "Large"]),
    ("volume", "Sound", "slider", "Volume", (0, 100, 5)),
    ("dnd", "Sound", "toggle", "Do not disturb", None),
    ("ringtone", "Sound", "dropdown", "Ringtone", ["Chimes", "Marimba", "Beacon", "Ripple", "Silk"]),
    ("email_alerts", "Notifications", "checkbox", "Email alerts", None),
    ("message_previews", "Notifications", "checkbox", "Message previews", None),
    ("calendar_reminders", "Notifications", "checkbox", "Calendar reminders", None),
    ("language", "General", "dropdown", "Language", ["English", "Deutsch", "Español", "Français", "Italiano",
                                                     "Português"]),
    ("auto_update", "General", "checkbox", "Automatic updates", None),
    ("device_name", "General", "text", "Device name", None),
]
SECTIONS = ["Network", "Display", "Sound", "Notifications", "General"]
SECTION_ICONS = {"Network": "wifi", "Display": "star", "Sound": "chat", "Notifications": "note", "General": "gear"}
DEVICE_NAMES = ["Atlas", "Juniper", "Nimbus", "Orchid", "Pebble", "Quartz"]


class SettingsApp(App):
    name = "settings"
    title = "Settings"
    icon = "gear"
    hue = 0.58
    packages = ("com.visagent.settings", "com.android.settings")

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        values: dict[str, Any] = {}
        for key, _, kind, _, opts in CONTROLS:
            if kind in ("toggle", "checkbox"):
                values[key] = rng.random() < 0.5
            elif kind == "slider":
                values[key] = rng.randrange(opts[0], opts[1] + 1, opts[2])
            elif kind in ("radio", "dropdown"):
                values[key] = rng.choice(opts)
            else:
                values[key] = f"{rng.choice(DEVICE_NAMES)}'s {'phone' if self.phone else 'laptop'}"
        values["dark_mode"] = world.dark
        for k, v in setup.items():
            if k in values:
                values[k] = v
            elif k != "section":
                raise ValueError(f"settings setup: unknown key {k!r}; known: {', '.join(values)}")
        world.dark = bool(values["dark_mode"])
        self.values = values
        self.sections = list(SECTIONS)
        rng.shuffle(self.sections)
        self.section: str | None = setup.get("section") if not self.phone else None
        if not self.phone and self.section is None:
            self.section = self.sections[0]
        self.controls: dict[str, Widget] = {}
        self.captions: dict[str, Label] = {}
        for key, _, kind, label, opts in CONTROLS:
            self.controls[key] = self._make(key, kind, label, opts)
        self.apply_btn = Button("apply_name", "Rename", self._rename, kind="primary")
        self.sidebar = ListView("sections", [ListItem(s, s, icon=SECTION_ICONS[s]) for s in self.sections],
                                row_dp=40 if not self.phone else 64, on_item=self._open_section,
                                touch=self.phone, clock=world.clock)
        self.sidebar.selected = self.section

    def _make(self, key: str, kind: str, label: str, opts: Any) -> Widget:
        v = self.values[key]

        def setter(val: Any, key: str = key) -> None:
            self.values[key] = val
            if key == "dark_mode":
                self.world.dark = bool(val)
            self.log(f"{key}={val}")

        if kind == "toggle":
            return Toggle(key, label, bool(v), setter)
        if kind == "checkbox":
            return Checkbox(key, label, bool(v), setter)
        if kind == "slider":
            return Slider(key, label, int(v), opts[0], opts[1], opts[2], setter)
        if kind == "radio":
            self.captions[key] = Label(f"{key}.caption", label, muted=True)
            return RadioGroup(key, label, opts, v, setter, horizontal=True)
        if kind == "dropdown":
            self.captions[key] = Label(f"{key}.caption", label, muted=True)
            return Dropdown(key, label, opts, v, setter)
        self.captions[key] = Label(f"{key}.caption", label, muted=True)
        return TextField(key, label, str(v), on_submit=self._rename, on_change=lambda t: None)

    def _rename(self) -> None:
        field = self.controls["device_name"]
        assert isinstance(field, TextField)
        name = field.value.strip()
        if name:
            self.values["device_name"] = name
            self.log(f"device_name={name}")

    def _open_section(self, item: ListItem) -> None:
        if self.section == item.key:
            return
        self.section = item.key
        self.focus = None
        if self.phone:
            self.world.animate("page", 0.3)

    def after_setup(self) -> None:
        self.world.dark = bool(self.values["dark_mode"])

    # -- layout -----------------------------------------------------------------------------------
    def section_keys(self, section: str) -> list[str]:
        return [k for k, sec, *_ in CONTROLS if sec == section]

    def widgets(self) -> list[Widget]:
        out: list[Widget] = []
        if not self.phone or self.section is None:
            out.append(self.sidebar)
        if self.section is not None:
            for key in self.section_keys(self.section):
                if key in self.captions:
                    out.append(self.captions[key])
                out.append(self.controls[key])
                if key == "device_name":
                    out.append(self.apply_btn)
        return out

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        if self.phone:
            if self.section is None:
                self.sidebar.layout(rect, s)
                return
            pane = rect
        else:
            side = x1 + int(200 * s)
            self.sidebar.layout((x1, y1, side, y2), s)
            pane = (side + 1, y1, x2, y2)
        col = Column(pane, s, 24 if not self.phone else 20)
        col.gap(34 if not self.phone else 4)
        for key in self.section_keys(self.section or ""):
            w = self.controls[key]
            if key in self.captions:
                col.place(self.captions[key], 22, 2)
            if isinstance(w, TextField):
                r = col.take(38, 8)
                w.place((r[0], r[1], r[2] - int(110 * s), r[3]))
                self.apply_btn.place((r[2] - int(100 * s), r[1], r[2], r[3]))
            else:
                col.place(w, 44 if not self.phone else 56, 10)

    def draw(self, cv: Any, st: Any) -> None:
        super().draw(cv, st)
        if not self.phone:
            r = self.sidebar.rect
            cv.line([(r[2], r[1]), (r[2], r[3])], st.th.border, 1)
        if self.section is not None and not self.phone:  # the phone shows the section in its app bar
            x = self.sidebar.rect[2] + st.px(24)
            cv.text((x, self.rect[1] + st.px(16)), self.section, st.px(20), st.th.text, True)

    def page_title(self) -> str:
        return self.section if (self.phone and self.section) else self.title

    def can_go_back(self) -> bool:
        return self.phone and self.section is not None

    def back(self) -> bool:
        if self.phone and self.section is not None:
            self.section = None
            self.focus = None
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {**self.values, "section": self.section}
