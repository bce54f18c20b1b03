"""The desktop shell: wallpaper with app icons, overlapping windows with title bars and menu bars, a taskbar.

Window rects are drawn from the world's seed. Clicking a window brings it to the front; its title bar
drags it; the taskbar opens / raises apps; desktop icons open apps on double click.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from PIL import Image

from visagent.sim.icons import draw_icon
from visagent.sim.overlays import PopupMenu
from visagent.sim.theme import Canvas, Rect, hue_color, mix, vertical_gradient
from visagent.sim.widgets import Element, IconButton, Pointer, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

TASKBAR_H = 44
TITLE_H = 34
MENUBAR_H = 28
WINDOW_ANIM_S = 0.25


@lru_cache(maxsize=8)
def _wallpaper(w: int, h: int, dark: bool, hue: float) -> Image.Image:
    return vertical_gradient(w, h, hue_color(hue, 0.45, 0.22 if dark else 0.62),
                             hue_color(hue + 0.12, 0.5, 0.12 if dark else 0.42))


class TitleBar(Widget):
    """A window's title bar: pressing raises the window, dragging moves it."""

    role = "titlebar"

    def __init__(self, shell: DesktopShell, name: str) -> None:
        super().__init__(f"{name}.titlebar", "")
        self.shell, self.name = shell, name
        self._start: Rect = (0, 0, 0, 0)

    @property
    def draggable(self) -> bool:
        return True

    def press(self, ev: Pointer) -> bool:
        self._start = self.shell.windows[self.name]
        return False

    def drag(self, ev: Pointer) -> bool:
        x1, y1, x2, y2 = self._start
        dx, dy = int(ev.x - ev.x0), int(ev.y - ev.y0)
        sw, sh = self.shell.world.size
        dy = max(-y1, min(sh - TASKBAR_H - TITLE_H - y1, dy))
        self.shell.windows[self.name] = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        return True


class MenuTitle(Widget):
    role = "menu"

    def __init__(self, shell: DesktopShell, app: str, label: str) -> None:
        super().__init__(f"{app}.menu.{label}", label)
        self.shell, self.app = shell, app

    def click(self, ev: Pointer) -> bool:
        items = dict(self.shell.world.apps[self.app].menus()).get(self.label, [])
        ev.world.open_popup(PopupMenu(f"{self.app}.menu.{self.label}", items, (self.rect[0], self.rect[3]),
                                      app=self.app))
        return True


def _app_tile(cv: Canvas, app: Any, tile: Rect, radius: int, pad: tuple[int, int]) -> None:
    """An app's launcher tile: a filled square in its colour with its white icon inset by `pad` (x, y)."""
    fill = hue_color(app.hue, 0.6, 0.5)
    cv.rect(tile, fill=fill, radius=radius)
    draw_icon(cv, app.icon, (tile[0] + pad[0], tile[1] + pad[1], tile[2] - pad[0], tile[3] - pad[1]), (255, 255, 255),
              fill)


class LaunchButton(Widget):
    """A taskbar button (click opens/raises) or a desktop icon (double click opens)."""

    def __init__(self, shell: DesktopShell, name: str, role: str) -> None:
        super().__init__(f"{role}.{name}", shell.world.apps[name].title)
        self.shell, self.name, self.role = shell, name, role
        self.ui_type = "text" if role == "taskbar_button" else "icon"

    def click(self, ev: Pointer) -> bool:
        if self.role == "taskbar_button":
            self.shell.world.launch(self.name)
        else:
            self.shell.selected_icon = self.name
        return True

    def double_click(self, ev: Pointer) -> bool:
        self.shell.world.launch(self.name)
        return True


class DesktopShell:
    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.rng = world.rng
        self.hue = self.rng.random()
        order = list(world.apps)
        self.rng.shuffle(order)
        self.order = order
        self.windows: dict[str, Rect] = {}
        self.z: list[str] = []  # back to front
        self.minimized: set[str] = set()
        self.selected_icon: str | None = None
        sw, sh = world.size
        self._home_rects: dict[str, Rect] = {}
        for name in world.apps:
            w = self.rng.randint(760, 960)
            h = self.rng.randint(540, 660)
            x = self.rng.randint(110, sw - w - 20)
            y = self.rng.randint(12, sh - TASKBAR_H - h - 8)
            self._home_rects[name] = (x, y, x + w, y + h)
        self.taskbar = {n: LaunchButton(self, n, "taskbar_button") for n in order}
        self.icons = {n: LaunchButton(self, n, "icon") for n in order}
        self.chrome: dict[str, list[Widget]] = {}
        for name in world.apps:
            close = IconButton(f"{name}.close", "Close", "close", on_click=lambda n=name: self.close(n))
            mini = IconButton(f"{name}.minimize", "Minimize", "minimize", on_click=lambda n=name: self.minimize(n))
            menus = [MenuTitle(self, name, label) for label, _ in world.apps[name].menus()]
            self.chrome[name] = [TitleBar(self, name), mini, close, *menus]

    # -- app management ----------------------------------------------------------------------------
    def open_names(self) -> list[str]:
        return list(self.z)

    def foreground(self) -> Any:
        for name in reversed(self.z):
            if name not in self.minimized:
                return self.world.apps[name]
        return None

    def launch(self, name: str, animate: bool) -> None:
        self.minimized.discard(name)
        if name in self.z:
            self.z.remove(name)
            self.z.append(name)
            return
        self.windows[name] = self._home_rects[name]
        self.z.append(name)
        self.world.apps[name].on_open()
        if animate:
            self.world.animate(f"window.{name}", WINDOW_ANIM_S)

    def close(self, name: str) -> None:
        if name in self.z:
            self.z.remove(name)
        self.world.overlays = [o for o in self.world.overlays if o.app != name]
        closer = getattr(self.world.apps[name], "on_close", None)
        if closer:
            closer()

    def minimize(self, name: str) -> None:
        self.minimized.add(name)

    def system_button(self, name: str) -> None:  # pragma: no cover - desktop has none
        pass

    def key(self, k: str, mods: frozenset[str]) -> None:
        fg = self.foreground()
        if k == "f4" and "alt" in mods and fg is not None:
            self.close(fg.name)

    def dialog_area(self, app: str) -> Rect:
        r = self.windows.get(app)
        return r if r is not None else (0, 0, self.world.size[0], self.world.size[1] - TASKBAR_H)

    # -- layout, hits, elements --------------------------------------------------------------------
    def visible_windows(self) -> list[str]:
        return [n for n in self.z if n not in self.minimized]

    def layout(self) -> None:
        sw, sh = self.world.size
        n = len(self.order)
        bw = min(150, (sw - 120) // max(1, n))
        for i, name in enumerate(self.order):
            self.taskbar[name].place((8 + i * (bw + 4), sh - TASKBAR_H + 5, 8 + i * (bw + 4) + bw, sh - 5))
            self.icons[name].place((14, 14 + i * 92, 94, 14 + i * 92 + 84))
        for name in self.visible_windows():
            x1, y1, x2, y2 = self._window_rect(name)
            bar, mini, close, *menus = self.chrome[name]
            bar.place((x1, y1, x2, y1 + TITLE_H))
            close.place((x2 - 40, y1 + 2, x2 - 4, y1 + TITLE_H - 2))
            mini.place((x2 - 78, y1 + 2, x2 - 42, y1 + TITLE_H - 2))
            cy = y1 + TITLE_H
            mx = x1 + 6
            for m in menus:
                from visagent.sim.theme import text_width

                w = text_width(m.label, 13) + 20
                m.place((mx, cy, mx + w, cy + MENUBAR_H))
                mx += w
            top = cy + (MENUBAR_H if menus else 0)
            self.world.apps[name].layout((x1 + 1, top, x2 - 1, y2 - 1))

    def _window_rect(self, name: str) -> Rect:
        x1, y1, x2, y2 = self.windows[name]
        p = self.world.anim_progress(f"window.{name}")
        dy = int((1 - p) * 24)
        return (x1, y1 + dy, x2, y2 + dy)

    def hit(self, x: float, y: float) -> tuple[Widget | None, Any]:
        for w in self.taskbar.values():
            if w.hit(x, y):
                return w, None
        for name in reversed(self.visible_windows()):
            r = self._window_rect(name)
            if r[0] <= x < r[2] and r[1] <= y < r[3]:
                if self.z[-1] != name:
                    self.z.remove(name)
                    self.z.append(name)
                for c in reversed(self.chrome[name]):
                    if c.hit(x, y):
                        return c, None
                app = self.world.apps[name]
                return app.hit(x, y), app
        for w in self.icons.values():
            if w.hit(x, y):
                return w, None
        self.selected_icon = None
        return None, None

    def elements(self) -> list[Element]:
        out: list[Element] = [e for w in self.taskbar.values() for e in w.elements("system")]
        covers: list[Rect] = [(0, self.world.size[1] - TASKBAR_H, self.world.size[0], self.world.size[1])]
        for name in reversed(self.visible_windows()):
            r = self._window_rect(name)
            own = [e for c in self.chrome[name] for e in c.elements(name)] + self.world.apps[name].elements()
            for e in own:
                cx, cy = e.center
                if not any(c[0] <= cx < c[2] and c[1] <= cy < c[3] for c in covers):
                    out.append(e)
            covers.append(r)
        for w in self.icons.values():
            for e in w.elements("system"):
                cx, cy = e.center
                if not any(c[0] <= cx < c[2] and c[1] <= cy < c[3] for c in covers):
                    out.append(e)
        return out

    # -- painting ----------------------------------------------------------------------------------
    def background(self) -> Image.Image:
        sw, sh = self.world.size
        return _wallpaper(sw, sh, self.world.dark, round(self.hue, 3))

    def draw(self, cv: Canvas) -> None:
        world = self.world
        th = world.theme
        for name, w in self.icons.items():
            app = world.apps[name]
            r = w.rect
            if self.selected_icon == name:
                cv.rect(r, fill=mix(th.accent, (255, 255, 255), 0.3), radius=6)
            _app_tile(cv, app, (r[0] + 18, r[1] + 6, r[2] - 18, r[1] + 50), 10, (8, 6))
            cv.text(((r[0] + r[2]) / 2, r[1] + 66), app.title, 12, (255, 255, 255), False, "mm")
        for name in self.visible_windows():
            self._draw_window(cv, name)
        sw, sh = world.size
        cv.rect((0, sh - TASKBAR_H, sw, sh), fill=mix(th.bg, (0, 0, 0), 0.15 if th.dark else 0.04))
        cv.line([(0, sh - TASKBAR_H), (sw, sh - TASKBAR_H)], th.border, 1)
        fg = self.foreground()
        for name, w in self.taskbar.items():
            app = world.apps[name]
            r = w.rect
            if name in self.z:
                cv.rect(r, fill=th.surface2 if fg is not app else mix(th.surface2, hue_color(app.hue), 0.25),
                        radius=5)
                cv.rect((r[0] + 12, r[3] - 3, r[2] - 12, r[3]), fill=hue_color(app.hue, 0.7, 0.55))
            # the app's own tile, as on the desktop and on real taskbars (a filled colour square, not a thin glyph:
            # at the tiny model's 640x384 view a 2-px line in the app's colour is nearly invisible)
            _app_tile(cv, app, (r[0] + 6, r[1] + 3, r[0] + 34, r[1] + 31), 6, (5, 5))
            cv.text_in((r[0] + 40, r[1], r[2] - 4, r[3]), app.title, 13, th.text, False, "left")
        minutes = int(world.clock.now() // 60)
        cv.text((sw - 16, sh - TASKBAR_H / 2), f"{(9 + (41 + minutes) // 60) % 24:02d}:{(41 + minutes) % 60:02d}",
                13, th.text, False, "rm")

    def _draw_window(self, cv: Canvas, name: str) -> None:
        world = self.world
        app = world.apps[name]
        st = app.style()
        th = st.th
        r = self._window_rect(name)
        front = self.foreground() is app
        cv.rect((r[0] + 4, r[1] + 6, r[2] + 4, r[3] + 6), fill=mix(th.shadow, (0, 0, 0), 0.6), radius=8)
        cv.rect(r, fill=th.surface, outline=th.border, radius=8)
        bar = (r[0], r[1], r[2], r[1] + TITLE_H)
        cv.rect(bar, fill=mix(th.surface2, th.accent, 0.18 if front else 0.0), radius=8)
        cv.rect((r[0], r[1] + TITLE_H - 8, r[2], r[1] + TITLE_H), fill=mix(th.surface2, th.accent, 0.18 if front else 0.0))
        draw_icon(cv, app.icon, (r[0] + 10, r[1] + 8, r[0] + 28, r[1] + 26), th.accent, th.surface2)
        cv.text((r[0] + 36, r[1] + TITLE_H / 2), app.page_title(), 14, th.text if front else th.muted, True, "lm")
        _, mini, close, *menus = self.chrome[name]
        for b in (mini, close):
            b.color = th.muted
            b.draw(cv, st, False)
        if menus:
            cy = r[1] + TITLE_H
            cv.rect((r[0] + 1, cy, r[2] - 1, cy + MENUBAR_H), fill=th.surface2)
            cv.line([(r[0], cy + MENUBAR_H - 1), (r[2], cy + MENUBAR_H - 1)], th.border, 1)
            for m in menus:
                cv.text_in(m.rect, m.label, 13, th.text)
        app.draw(cv, st)
