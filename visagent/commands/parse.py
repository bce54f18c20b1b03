"""`visagent parse`: model output on stdin → actions as JSON (model coordinates, screen pixels, mapping).

Exit 0 with JSON on stdout; a ParseError (or a bad flag) prints `visagent: error: ...` on one line and
exits 2 (through visagent.cli).
"""

from __future__ import annotations

import json
import re
import sys

from visagent.loop.coords import to_screen
from visagent.core.errors import ConfigError
from visagent.screen.base import ScreenGeometry
from visagent.loop.parsing import FORMATS, PARSE_SPACES, parse_output


def register(sub) -> None:
    p = sub.add_parser("parse", help="parse model output from stdin into actions (JSON with screen pixels)")
    p.add_argument("--format", dest="fmt", default="auto", choices=[f for f in FORMATS if f != "openai"],
                   help="output format to expect (default: detect)")
    p.add_argument("--space", default="norm1000", choices=list(PARSE_SPACES),
                   help="coordinate space the model answers in (default: norm1000)")
    p.add_argument("--screen", required=True, metavar="WxH", help="logical screen size, e.g. 1920x1080")
    p.add_argument("--resized", metavar="WxH", help="smart-resized image size (needed for --space resized)")
    p.add_argument("--offset", default="0,0", metavar="X,Y", help="monitor origin in global logical pixels")
    p.add_argument("--scale", type=float, default=1.0, metavar="S", help="physical/logical pixels (HiDPI: 2)")
    p.add_argument("--platform", choices=["desktop", "phone"], default=None,
                   help="what UI-TARS click/drag mean; rejects the other platform's tool")
    p.set_defaults(handler=run)


def run(args) -> int:
    width, height = _size(args.screen, "--screen")
    resized = _size(args.resized, "--resized") if args.resized else None
    offset = _pair(args.offset)
    if not (args.scale > 0 and args.scale < 16):
        raise ConfigError(f"--scale must be a positive factor like 2, got {args.scale}")
    geometry = ScreenGeometry(width, height, round(width * args.scale), round(height * args.scale),
                              offset_x=offset[0], offset_y=offset[1])
    if args.space == "resized" and resized is None:
        raise ConfigError("--space resized needs --resized WxH (the smart-resized image size)")
    parsed = parse_output(sys.stdin.read(), fmt=args.fmt, space=args.space, platform=args.platform)
    actions = []
    for action in parsed.actions:
        screen = to_screen(action, geometry, resized_size=resized)
        actions.append({"model": action.to_dict(), "screen": screen.to_dict(), "summary": screen.summary()})
    out = {"format": parsed.format, "thinking": parsed.thinking, "text": parsed.text,
           "geometry": geometry.to_dict(), "actions": actions}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _size(value: str, flag: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value or "")
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise ConfigError(f"{flag} must be WIDTHxHEIGHT like 1920x1080, got {value!r}")
    return int(m.group(1)), int(m.group(2))


def _pair(value: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*", value)
    if not m:
        raise ConfigError(f"--offset must be X,Y like 1920,0, got {value!r}")
    return int(m.group(1)), int(m.group(2))
