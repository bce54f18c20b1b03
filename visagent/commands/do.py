"""`visagent do`: execute one action on an executor, wait for the screen to settle, save it — a debugging tool.

    visagent do --executor sim --scenario desktop-settings-wifi-off \
        --action '{"action": "left_click", "coordinate": [640, 400]}' --space norm1000 --screenshot out.png

Prints one JSON object: the action in the model's space and in screen space (with the mapping), the
executor's result (ok, message, execute/settle seconds, changed), the geometry and the screenshot path.
Exit status 0 when the action executed, 1 when the executor refused it (message says why), 2 for bad input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from visagent.core.actions import Action
from visagent.core.errors import ActionError, ConfigError


def register(sub) -> None:
    p = sub.add_parser("do", help="execute one action on sim/desktop/android and save the settled screen")
    p.add_argument("--executor", choices=("sim", "desktop", "android"), help="where to act (default: settings)")
    p.add_argument("--scenario", help="sim scenario id (default: the first desktop scenario)")
    p.add_argument("--seed", type=int, help="sim seed (default: the scenario's)")
    p.add_argument("--monitor", type=int, default=1, help="desktop monitor, 1-based (default 1)")
    p.add_argument("--serial", help="android device serial (default: the only one connected)")
    p.add_argument("--action", required=True, metavar="JSON",
                   help='the action, e.g. \'{"action": "left_click", "coordinate": [640, 400]}\'')
    p.add_argument("--space", choices=("absolute", "norm1000"), default="absolute",
                   help="coordinate space of --action (absolute: screenshot pixels; norm1000: 0..1000 grid)")
    p.add_argument("--screenshot", metavar="PNG", help="save the settled screen here")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="limit of each call to the screen, incl. settling (default 60 s)")
    p.set_defaults(handler=run)


def parse_action(text: str, space: str) -> Action:
    """The --action JSON as an Action in `space` (a "space" key inside the JSON wins). Raises ActionError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionError(f"--action is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(data, dict):
        raise ActionError(f"--action must be a JSON object like {{\"action\": \"left_click\", ...}}, got {text!r}")
    data.setdefault("space", space)
    return Action.from_dict(data)


def check_writable_path(name: str, flag: str) -> None:
    """Raise ConfigError unless file `name` can be created: its nearest existing ancestor is a writable
    directory (missing folders are made later). Creates nothing."""
    path = Path(name).expanduser().absolute()
    if path.is_dir():
        raise ConfigError(f"{flag} {name!r} is a directory; give a file name such as shot.png")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag} {name!r} cannot be written: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {name!r} cannot be written: {existing} is not writable")


def run(args) -> int:
    from visagent.loop.coords import to_screen
    from visagent.screen import open_executor
    from visagent.screen.seam import Screen

    kind = args.settings.executor
    if args.screenshot and Path(args.screenshot).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ConfigError(f"--screenshot {args.screenshot!r} needs an image suffix (.png)")
    action = parse_action(args.action, args.space)
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.screenshot:
        check_writable_path(args.screenshot, "--screenshot")  # before the action runs, not after
    executor = open_executor(kind, scenario=args.settings.scenario, seed=args.seed, monitor=args.monitor,
                             serial=args.serial)
    screen = Screen(executor, timeout_s=args.timeout)  # closed check, time limit, one thread, settling
    try:
        before = screen.screenshot()
        screen_action = to_screen(action, before.geometry, image_size=before.image.size)
        result = screen.act(screen_action, before=before)
        final = result.observation.image if result.observation is not None else screen.screenshot().image
        out: dict[str, Any] = {
            "executor": kind,
            "action": {"model": action.to_dict(), "screen": screen_action.to_dict()},
            "result": result.to_dict(),
            "geometry": before.geometry.to_dict(),
            "screenshot": None,
        }
        if args.screenshot:
            path = Path(args.screenshot)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                final.save(path)
            except OSError as exc:
                raise ConfigError(f"--screenshot {args.screenshot!r} could not be written ({exc.strerror or exc}); "
                                  "the action did run") from None
            out["screenshot"] = str(path)
        world = getattr(executor, "world", None)
        if world is not None:
            out["state"] = world.state()
        print(json.dumps(out, ensure_ascii=False, default=str))
        return 0 if result.ok else 1
    finally:
        screen.close()
