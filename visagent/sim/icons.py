"""Line-art icons drawn with Pillow primitives, so no image assets are needed.

`draw_icon(cv, name, rect, color)` paints icon `name` centred in `rect` (screen pixels).
"""

from __future__ import annotations

import math

from visagent.sim.theme import Canvas, Color, Rect


def draw_icon(cv: Canvas, name: str, rect: Rect, color: Color, bg: Color | None = None) -> None:
    """Paint icon `name` in a square inside `rect`; unknown names draw the name's first letter."""
    x1, y1, x2, y2 = rect
    n = min(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    u = n / 24.0  # icons are designed on a 24-unit grid
    w = max(1, int(round(2 * u)))

    def P(px: float, py: float) -> tuple[float, float]:
        return (cx + (px - 12) * u, cy + (py - 12) * u)

    def R(ax: float, ay: float, bx: float, by: float) -> Rect:
        a, b = P(ax, ay), P(bx, by)
        return (int(a[0]), int(a[1]), int(b[0]), int(b[1]))

    if name == "gear":
        cv.ellipse(R(6, 6, 18, 18), outline=color, width=w)
        for k in range(8):
            ang = k * math.pi / 4
            cv.line([P(12 + 6 * math.cos(ang), 12 + 6 * math.sin(ang)),
                     P(12 + 9.5 * math.cos(ang), 12 + 9.5 * math.sin(ang))], color, w + 1)
        cv.ellipse(R(10, 10, 14, 14), fill=color)
    elif name in ("note", "file"):
        cv.polygon([P(5, 2), P(15, 2), P(19, 6), P(19, 22), P(5, 22)], fill=color)
        inner = bg or (255, 255, 255)
        cv.polygon([P(6.5, 3.5), P(14.3, 3.5), P(17.5, 6.7), P(17.5, 20.5), P(6.5, 20.5)], fill=inner)
        if name == "note":
            for yy in (9, 13, 17):
                cv.line([P(8.5, yy), P(15.5, yy)], color, w)
    elif name == "folder":
        cv.polygon([P(2, 5), P(9, 5), P(11, 7.5), P(22, 7.5), P(22, 20), P(2, 20)], fill=color)
    elif name == "calculator":
        cv.rect(R(5, 2, 19, 22), outline=color, width=w, radius=int(2 * u))
        cv.rect(R(7.5, 4.5, 16.5, 8.5), fill=color)
        for yy in (12, 15.5, 19):
            for xx in (8.5, 12, 15.5):
                cv.ellipse(R(xx - 1, yy - 1, xx + 1, yy + 1), fill=color)
    elif name == "person":
        cv.ellipse(R(8, 3, 16, 11), fill=color)
        cv.draw.pieslice(cv._r(R(4, 13, 20, 29)), 180, 360, fill=color)
    elif name == "cart":
        cv.line([P(2, 4), P(5, 4), P(8, 16), P(19, 16), P(21, 8), P(6, 8)], color, w)
        cv.ellipse(R(7.5, 18, 10.5, 21), fill=color)
        cv.ellipse(R(16, 18, 19, 21), fill=color)
    elif name == "chat":
        cv.rect(R(2, 3, 22, 17), fill=color, radius=int(4 * u))
        cv.polygon([P(6, 16), P(6, 22), P(12, 16)], fill=color)
    elif name == "plus":
        cv.line([P(12, 4), P(12, 20)], color, w + 1)
        cv.line([P(4, 12), P(20, 12)], color, w + 1)
    elif name == "close":
        cv.line([P(6, 6), P(18, 18)], color, w)
        cv.line([P(18, 6), P(6, 18)], color, w)
    elif name == "minimize":
        cv.line([P(6, 16), P(18, 16)], color, w)
    elif name == "trash":
        cv.line([P(4, 6), P(20, 6)], color, w)
        cv.line([P(9, 6), P(10, 3), P(14, 3), P(15, 6)], color, w)
        cv.polygon([P(6, 8), P(18, 8), P(17, 21), P(7, 21)], fill=color)
    elif name == "search":
        cv.ellipse(R(3, 3, 16, 16), outline=color, width=w)
        cv.line([P(14, 14), P(21, 21)], color, w + 1)
    elif name == "back":
        cv.line([P(16, 4), P(8, 12), P(16, 20)], color, w + 1)
    elif name == "forward":
        cv.line([P(8, 4), P(16, 12), P(8, 20)], color, w + 1)
    elif name == "nav_back":
        cv.polygon([P(17, 4), P(17, 20), P(5, 12)], fill=color)
    elif name == "home":
        cv.ellipse(R(4, 4, 20, 20), outline=color, width=w)
    elif name == "menu":
        for yy in (6, 12, 18):
            cv.line([P(4, yy), P(20, yy)], color, w)
    elif name == "more":
        for yy in (5, 12, 19):
            cv.ellipse(R(10.5, yy - 1.5, 13.5, yy + 1.5), fill=color)
    elif name == "send":
        cv.polygon([P(2, 3), P(22, 12), P(2, 21), P(5, 12)], fill=color)
    elif name == "check":
        cv.line([P(5, 12), P(10, 17), P(19, 7)], color, w + 1)
    elif name == "down":
        cv.polygon([P(6, 9), P(18, 9), P(12, 15)], fill=color)
    elif name == "wifi":
        for k, rr in enumerate((10, 6.5)):
            cv.arc(R(12 - rr, 14 - rr, 12 + rr, 14 + rr), 225, 315, color, w)
        cv.ellipse(R(10.5, 17, 13.5, 20), fill=color)
    elif name == "battery":
        cv.rect(R(3, 7, 19, 17), outline=color, width=w)
        cv.rect(R(5, 9, 15, 15), fill=color)
        cv.rect(R(19, 10, 21, 14), fill=color)
    elif name == "star":
        pts = []
        for k in range(10):
            rr = 10 if k % 2 == 0 else 4.2
            ang = -math.pi / 2 + k * math.pi / 5
            pts.append(P(12 + rr * math.cos(ang), 12.5 + rr * math.sin(ang)))
        cv.polygon(pts, fill=color)
    elif name == "edit":
        cv.polygon([P(4, 20), P(5, 15), P(16, 4), P(20, 8), P(9, 19)], fill=color)
    elif name == "save":
        cv.rect(R(3, 3, 21, 21), fill=color, radius=int(2 * u))
        cv.rect(R(7, 3, 17, 9), fill=bg or (255, 255, 255))
        cv.ellipse(R(9, 12, 15, 18), fill=bg or (255, 255, 255))
    else:
        cv.ellipse(R(2, 2, 22, 22), outline=color, width=w)
        cv.text((cx, cy), (name[:1] or "?").upper(), max(6, int(12 * u)), color, True, "mm")
