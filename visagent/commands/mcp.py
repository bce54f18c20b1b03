"""`visagent mcp`: serve the executors to MCP clients (stdio by default, streamable HTTP with --http).

    visagent mcp --executor sim --scenario desktop-settings-wifi-off
    visagent mcp --executor desktop --http --port 8765          # http://127.0.0.1:8765/mcp

Tools, trace and safety rules: visagent/mcp_server.py and docs/mcp.md. Over HTTP the server binds loopback
unless --auth-token (or $VISAGENT_MCP_TOKEN) is set; with a token every request needs
`Authorization: Bearer TOKEN`. Needs the `mcp` extra (`pip install 'visagent[mcp]'`).
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
from typing import Any

from visagent.core.errors import ConfigError

log = logging.getLogger(__name__)
DEFAULT_PORT = 8765


def register(sub) -> None:
    p = sub.add_parser("mcp", help="serve screenshot/act/run_task tools to MCP clients (stdio or HTTP)",
                       description="An MCP server over the executors: screenshot, act (validated, executed, "
                       "settled), click/type_text/press_keys/scroll, run_task, list_scenarios and reset. Every "
                       "session writes a trace that `visagent report` and `visagent replay` read.")
    p.add_argument("--executor", choices=("sim", "desktop", "android"), help="what to drive (default: settings)")
    p.add_argument("--scenario", help="sim scenario id (default: the first desktop scenario)")
    p.add_argument("--seed", type=int, help="sim seed (default: the scenario's)")
    p.add_argument("--monitor", type=int, default=1, help="desktop monitor, 1-based (default 1)")
    p.add_argument("--serial", help="android device serial (default: $ANDROID_SERIAL or the only one connected)")
    p.add_argument("--space", choices=("absolute", "norm1000"), default="absolute",
                   help="coordinates clients write: absolute (screenshot pixels, default) or norm1000 (0..1000 grid)")
    p.add_argument("--trace-dir", help="where session traces are written (default: runs)")
    p.add_argument("--model", help="model for run_task: tiny (default), a checkpoint directory or an http(s) URL")
    p.add_argument("--model-name", help="model name to ask an http(s) server for")
    p.add_argument("--api-key", help="API key for the model server of run_task (not the MCP token)")
    p.add_argument("--yes", action="store_true", help="run risky actions without asking the client")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    p.add_argument("--host", help="HTTP address (default 127.0.0.1); another address needs --auth-token")
    p.add_argument("--port", type=int, help=f"HTTP port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--auth-token", help="require 'Authorization: Bearer TOKEN' over HTTP (default: "
                   "$VISAGENT_MCP_TOKEN)")
    p.set_defaults(handler=run)


def _require_sdk() -> None:
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError:
        raise ConfigError("visagent mcp needs the official MCP SDK 2.x: pip install 'visagent[mcp]' "
                          "(or pip install 'mcp>=2')") from None


def bearer_guard(app: Any, token: str) -> Any:
    """ASGI wrapper: HTTP requests without `Authorization: Bearer <token>` get 401 (constant-time compare)."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = b'{"error": "missing or wrong bearer token"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def run(args) -> int:
    from visagent.commands.run import check_trace_root, open_for_run
    from visagent.mcp_server import McpSession, build_server

    _require_sdk()
    s = args.settings
    check_trace_root(s.trace_dir)
    kind = s.executor
    token = args.auth_token or os.environ.get("VISAGENT_MCP_TOKEN") or None
    host = s.host or "127.0.0.1"
    if not args.http and (args.port is not None or args.host is not None or args.auth_token):
        raise ConfigError("--host, --port and --auth-token apply to --http; stdio needs none of them")
    if args.http:
        from visagent.commands.serve import is_loopback

        if not token and not is_loopback(host):
            raise ConfigError(f"refusing to serve MCP on non-loopback host {host!r} without a token; pass "
                              "--auth-token TOKEN (or set VISAGENT_MCP_TOKEN), or bind 127.0.0.1")
    first = {"done": False}

    def open_executor(scenario: str | None, seed: int | None) -> Any:
        if not first["done"]:  # the flags are checked once, as `visagent run` checks them
            first["done"] = True
            executor, _ = open_for_run(kind, scenario, seed, monitor=args.monitor, serial=args.serial)
            return executor
        from visagent.screen import open_executor as _open

        return _open(kind, scenario=scenario, seed=seed, monitor=args.monitor, serial=args.serial)

    meta: dict[str, Any] = {}
    session = McpSession(s, open_executor, kind=kind, space=args.space, scenario=s.scenario, seed=args.seed,
                         auto_approve=args.yes, meta=meta)
    for key in ("serial", "display", "monitor"):  # which phone / screen the session drove, for the trace
        if kind != "sim" and getattr(session.executor, key, None) is not None:
            meta[key] = getattr(session.executor, key)
    session._meta_extra = meta
    try:
        server = build_server(session)
        if not args.http:
            server.run("stdio")
        else:
            _serve_http(server, host, DEFAULT_PORT if s.port is None else s.port, token)
    finally:
        path = session.close()
        if path:
            print(f"visagent mcp: trace {path}", file=sys.stderr)
    return 0


def _serve_http(server: Any, host: str, port: int, token: str | None) -> None:
    import anyio
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    from visagent.commands.serve import is_loopback

    security = None  # the SDK turns its DNS-rebinding check (Host / Origin allow-list) on for these three
    if host not in ("127.0.0.1", "localhost", "::1"):
        if is_loopback(host):  # another loopback name or address: the same check, for that host
            name = f"[{host}]" if ":" in host else host
            security = TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                                 allowed_hosts=[f"{name}:*"], allowed_origins=[f"http://{name}:*"])
        else:  # a token guards this server; the check would refuse every Host a remote client sends
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(host=host, transport_security=security)
    if token:
        app = bearer_guard(app, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    userver = uvicorn.Server(config)
    _announce = userver.startup

    async def startup(sockets: Any = None) -> None:
        await _announce(sockets=sockets)
        for srv in userver.servers:
            for sock in srv.sockets:
                addr = sock.getsockname()
                print(f"visagent mcp: serving http://{host}:{addr[1]}/mcp", file=sys.stderr, flush=True)

    userver.startup = startup  # type: ignore[method-assign]
    anyio.run(userver.serve)
