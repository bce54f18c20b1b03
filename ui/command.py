"""`visagent ui`: the Gradio dashboard (registered through the `visagent.commands` entry point group).

Binds loopback by default. Any other address, or a public share link, needs `--auth user:pass`: the page
can drive this machine's screen and run models on it.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from pathlib import Path

from engine import is_server_spec
from visagent.core.errors import ConfigError

DEFAULT_PORT = 7860


def register(sub) -> None:
    p = sub.add_parser("ui", help="the dashboard: watch, steer and review runs in the browser")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; anything else needs --auth)")
    p.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--auth", metavar="USER:PASS", help="require this login (needed off loopback and with --share)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs --auth)")
    p.add_argument("--model", help="model spec: tiny, a checkpoint directory, or an http(s)://host/v1 URL")
    p.add_argument("--model-name", help="model name to request from an OpenAI-compatible server")
    p.add_argument("--scenario", help="scenario pre-selected in the Run view (sim, or real-desktop: `visagent "
                   "scenarios list --world real-desktop`)")
    p.add_argument("--trace-dir", help="where runs are written and listed (default: runs)")
    p.add_argument("--no-preload", action="store_true", help="load the model on the first run, not at start")
    p.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:pass` → (user, pass). Raises ConfigError when either part is empty."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"--auth {value!r} must be USER:PASS with both parts non-empty")
    return user, password


def check_exposure(host: str, auth: tuple[str, str] | None, share: bool) -> None:
    """Refuse to expose the dashboard without a login. Raises ConfigError with the fix."""
    if share and auth is None:
        raise ConfigError("--share publishes the dashboard on the internet; add --auth USER:PASS")
    if not is_loopback(host) and auth is None:
        raise ConfigError(f"--host {host} lets other machines drive this screen; add --auth USER:PASS "
                          "or bind 127.0.0.1")


def run(args) -> int:
    settings = args.settings
    host = settings.host or "127.0.0.1"
    auth = parse_auth(args.auth)
    check_exposure(host, auth, args.share)
    spec = settings.model.strip()
    if spec != "tiny" and not is_server_spec(spec) and not Path(spec).expanduser().exists():
        raise ConfigError(f"--model {spec!r} is neither 'tiny', an http(s):// URL nor an existing checkpoint directory")

    from ui.app import build_app, launch
    from ui.forms import Dashboard

    dash = Dashboard.create(settings)
    if settings.scenario:
        from visagent.realworld.registry import is_real_scenario
        from visagent.sim.scenarios import get_scenario

        if not is_real_scenario(settings.scenario):
            get_scenario(settings.scenario)  # an unknown id fails here, with close matches
    if not args.no_preload:
        dash.runs.warm(dash.default_model)
    app = build_app(dash)
    url = launch(app, dash, host=host, port=settings.port or DEFAULT_PORT, auth=auth, share=args.share)
    print(f"visagent dashboard: {url}", flush=True)
    print(f"  model {dash.default_model.label} · scenario {dash.default_scenario} · traces in "
          f"{dash.trace_root} · Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("visagent: stopping the dashboard", file=sys.stderr)
    finally:
        dash.close()
        app.close()
    return 0
