"""Desktop monitors: mss's list, or a layout given by configuration (VISAGENT_MONITORS / monitor_layout)."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from visagent.core.errors import ExecutorError
from visagent.screen.xsession import check_session

_LAYOUT = re.compile(r"(\d+)x(\d+)([+-]\d+)([+-]\d+)")


def mss_factory() -> Any:
    """mss's constructor: `mss.MSS` (10.2+) or the older `mss.mss`."""
    import mss

    return getattr(mss, "MSS", None) or mss.mss


def parse_monitor_layout(text: str) -> list[dict[str, int]]:
    """"WxH+X+Y,WxH+X+Y" → mss-style monitor dicts (left, top, width, height). Raises ExecutorError."""
    monitors = []
    for part in text.split(","):
        m = _LAYOUT.fullmatch(part.strip())
        if not m:
            raise ExecutorError(f"bad monitor layout {part.strip()!r} in {text!r}; write WxH+X+Y, comma-separated "
                                "(e.g. 1280x800+0+0,1280x800+1280+0)")
        w, h, x, y = (int(g) for g in m.groups())
        monitors.append({"left": x, "top": y, "width": w, "height": h})
    return monitors


def describe_monitor(mon: dict[str, int]) -> str:
    return f"{mon['width']}x{mon['height']}+{mon['left']}+{mon['top']}"


def list_monitors(display: str | None = None) -> list[dict[str, int]]:
    """mss's monitors (1-based order; each with left, top, width, height), or VISAGENT_MONITORS's layout.

    Raises ExecutorError when the display cannot be reached.
    """
    layout = os.environ.get("VISAGENT_MONITORS")
    if layout:
        return parse_monitor_layout(layout)
    check_session(display)
    factory = mss_factory()
    kwargs = {"display": display} if display and sys.platform.startswith("linux") else {}
    try:
        with factory(**kwargs) as inst:
            mons = [dict(m) for m in inst.monitors]
    except Exception as exc:
        raise ExecutorError(f"cannot list monitors on {display or os.environ.get('DISPLAY')!r} ({exc})") from None
    return mons[1:] or mons[:1]
