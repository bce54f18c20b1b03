"""The phone shell: status bar, a home screen that is the app drawer, full-screen apps with a top app bar,
and the Back / Home / Menu system buttons in a navigation bar. Pages and apps slide in (PAGE_ANIM_S)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from PIL import Image

from visagent.sim.icons import draw_icon
from visagent.sim.overlays import MenuItem, PopupMenu
from visagent.sim.theme import Canvas, Rect, hue_color, mix, vertical_gradient
from visagent.sim.widgets import Element, IconButton, Pointer, Style, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

STATUS_DP = 28
NAV_DP = 52
APPBAR_DP = 56
PAGE_ANIM_S = 0.3
COLUMNS = 4


@lru_cache(maxsize=8)
def _wallpaper(w: int, h: int, dark: bool, hue: float) -> Image.Image:
    return vertical_gradient(w, h, hue_color(hue, 0.55, 0.25 if dark else 0.7),
                             hue_color(hue - 0.15, 0.55, 0.1 if dark else 0.5))


class HomeIcon(Widget):
    role = "icon"
    ui_type = "icon"

    def __init__(self, shell: PhoneShell, name: str) -> None:
        super().__init__(f"home.{name}", shell.world.apps[name].title)
        self.shell, self.name = shell, name

    def click(self, ev: Pointer) -> bool:
        self.shell.world.launch(self.name)
        return True


class PhoneShell:
    def __init__(self, world: SimWorld) -> None:
        self.world = world
        s = world.ui_scale
        self.s = s
        self.hue = world.rng.random()
        order = list(world.apps)
        world.rng.shuffle(order)
        self.order = order
        self.icons = {n: HomeIcon(self, n) for n in order}
        self.stack: list[str] = []  # open apps, last = foreground
        self.at_home = True
        sw, sh = world.size
        self.status_h = int(STATUS_DP * s)
        self.nav_h = int(NAV_DP * s)
        nb = int(48 * s)
        y1 = sh - self.nav_h + (self.nav_h - nb) // 2
        self.nav = [IconButton(f"nav.{label}", label, icon, on_click=lambda l=label: self.system_button(l))
                    for label, icon in (("Back", "nav_back"), ("Home", "home"), ("Menu", "menu"))]
        for i, b in enumerate(self.nav):
            cx = sw * (i + 1) // 4
            b.place((cx - nb, y1, cx + nb, y1 + nb))
            b.role = "system_button"
        self.up = IconButton("appbar.up", "Navigate up", "back", on_click=lambda: self.system_button("Back"))
        self.more = IconButton("appbar.more", "More options", "more", on_click=self.open_menu)

    # -- app management ----------------------------------------------------------------------------
    def open_names(self) -> list[str]:
        return list(self.stack)

    def foreground(self) -> Any:
        return None if self.at_home or not self.stack else self.world.apps[self.stack[-1]]

    def launch(self, name: str, animate: bool) -> None:
        first = name not in self.stack
        if not first:
            self.stack.remove(name)
        self.stack.append(name)
        self.at_home = False
        if first:
            self.world.apps[name].on_open()
        if animate:
            self.world.animate("page", PAGE_ANIM_S)

    def system_button(self, name: str) -> None:
        world = self.world
        if name == "Home":
            world.overlays.clear()
            self.at_home = True
        elif name == "Back":
            if world.overlays:
                top = world.overlays[-1]
                cancel = getattr(top, "cancel", None)
                if cancel is not None:
                    cancel.click(Pointer(0, 0, 0, 0, "left", world))
                elif not top.modal:
                    world.close_overlay(top)
                return
            fg = self.foreground()
            if fg is None:
                return
            if fg.back():
                world.animate("page", PAGE_ANIM_S)
            else:
                self.at_home = True
        elif name == "Menu":
            if world.overlays:
                return
            self.open_menu()
        world.version += 1

    def open_menu(self) -> None:
        fg = self.foreground()
        if fg is None:
            return
        items: list[MenuItem] = [it for _, group in fg.menus() for it in group]
        if items:
            r = self.more.rect
            self.world.open_popup(PopupMenu(f"{fg.name}.options", items, (r[2], r[3]), app=fg.name))

    def key(self, k: str, mods: frozenset[str]) -> None:
        if k == "escape":
            self.system_button("Back")

    def dialog_area(self, app: str) -> Rect:
        sw, sh = self.world.size
        return (0, self.status_h, sw, sh - self.nav_h)

    # -- layout, hits, elements --------------------------------------------------------------------
    def content_rect(self) -> Rect:
        sw, sh = self.world.size
        return (0, self.status_h + int(APPBAR_DP * self.s), sw, sh - self.nav_h)

    def layout(self) -> None:
        s, sw = self.s, self.world.size[0]
        cell_w = sw // COLUMNS
        cell_h = int(110 * s)
        top = self.status_h + int(40 * s)
        for i, name in enumerate(self.order):
            c, r = i % COLUMNS, i // COLUMNS
            self.icons[name].place((c * cell_w + int(8 * s), top + r * cell_h, (c + 1) * cell_w - int(8 * s),
                                    top + r * cell_h + int(96 * s)))
        fg = self.foreground()
        if fg is None:
            return
        dx = int((1 - self.world.anim_progress("page")) * sw)
        bar_y = self.status_h
        ab = int(APPBAR_DP * s)
        b = int(44 * s)
        self.up.visible = fg.can_go_back()
        self.up.place((int(6 * s) + dx, bar_y + (ab - b) // 2, int(6 * s) + b + dx, bar_y + (ab - b) // 2 + b))
        self.up.visible = fg.can_go_back()
        self.more.place((sw - int(6 * s) - b + dx, bar_y + (ab - b) // 2, sw - int(6 * s) + dx,
                         bar_y + (ab - b) // 2 + b))
        self.more.visible = bool(fg.menus())
        x1, y1, x2, y2 = self.content_rect()
        fg.layout((x1 + dx, y1, x2 + dx, y2))

    def hit(self, x: float, y: float) -> tuple[Widget | None, Any]:
        for b in self.nav:
            if b.hit(x, y):
                return b, None
        fg = self.foreground()
        if fg is None:
            for w in self.icons.values():
                if w.hit(x, y):
                    return w, None
            return None, None
        for b in (self.up, self.more):
            if b.hit(x, y):
                return b, None
        return fg.hit(x, y), fg

    def elements(self) -> list[Element]:
        out = [e for b in self.nav for e in b.elements("system")]
        fg = self.foreground()
        if fg is None:
            return [e for w in self.icons.values() for e in w.elements("system")] + out
        bars = [e for b in (self.up, self.more) if b.visible for e in b.elements(fg.name)]
        return bars + fg.elements() + out

    # -- painting ----------------------------------------------------------------------------------
    def background(self) -> Image.Image:
        sw, sh = self.world.size
        return _wallpaper(sw, sh, self.world.dark, round(self.hue, 3))

    def draw(self, cv: Canvas) -> None:
        world, s = self.world, self.s
        th = world.theme
        sw, sh = world.size
        st = Style(th, s, world.clock.now())
        fg = self.foreground()
        if fg is None:
            for name, w in self.icons.items():
                app = world.apps[name]
                r = w.rect
                d = int(60 * s)
                cx = (r[0] + r[2]) // 2
                tile = (cx - d // 2, r[1], cx + d // 2, r[1] + d)
                cv.rect(tile, fill=hue_color(app.hue, 0.6, 0.5), radius=int(16 * s))
                draw_icon(cv, app.icon, (tile[0] + int(12 * s), tile[1] + int(12 * s), tile[2] - int(12 * s),
                                         tile[3] - int(12 * s)), (255, 255, 255), hue_color(app.hue, 0.6, 0.5))
                cv.text((cx, r[1] + d + int(16 * s)), app.title, int(12 * s), (255, 255, 255), False, "mm")
        else:
            ast = fg.style()
            ath = ast.th
            dx = int((1 - world.anim_progress("page")) * sw)
            cv.rect((dx, self.status_h, sw + dx, sh - self.nav_h), fill=ath.surface)
            ab = (dx, self.status_h, sw + dx, self.status_h + int(APPBAR_DP * s))
            cv.rect(ab, fill=mix(ath.surface, ath.accent, 0.85 if not ath.dark else 0.35))
            tx = (self.up.rect[2] + int(10 * s)) if self.up.visible else dx + int(20 * s)
            cv.text_in((tx, ab[1], self.more.rect[0], ab[3]), fg.page_title(), int(19 * s), (255, 255, 255), True,
                       "left")
            for b in (self.up, self.more):
                if b.visible:
                    b.color = (255, 255, 255)
                    b.draw(cv, ast, False)
            fg.draw(cv, ast)
        # status bar and navigation bar are drawn last so sliding pages pass under them
        bar = mix(th.bg, (0, 0, 0), 0.25) if fg is None else mix(th.surface2, (0, 0, 0), 0.08)
        cv.rect((0, 0, sw, self.status_h), fill=bar)
        minutes = int(world.clock.now() // 60)
        fgc = (255, 255, 255) if fg is None or th.dark else th.text
        cv.text((int(20 * s), self.status_h / 2), f"{(9 + (41 + minutes) // 60) % 24}:{(41 + minutes) % 60:02d}",
                int(13 * s), fgc, True, "lm")
        i = int(18 * s)
        y = (self.status_h - i) // 2
        draw_icon(cv, "battery", (sw - int(16 * s) - i, y, sw - int(16 * s), y + i), fgc)
        draw_icon(cv, "wifi", (sw - int(22 * s) - 2 * i, y, sw - int(22 * s) - i, y + i), fgc)
        cv.rect((0, sh - self.nav_h, sw, sh), fill=mix(th.bg, (0, 0, 0), 0.3 if th.dark else 0.05))
        for b in self.nav:
            b.color = th.muted if fg is not None else (230, 230, 230)
            b.draw(cv, st, False)
