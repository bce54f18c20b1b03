"""`visagent serve`: expose a model over an OpenAI-compatible API (/v1/chat/completions, /v1/models, /health).

Several agents, the dashboard and eval workers can then share one in-process model, or any OpenAI client can
drive it. Binds loopback by default; any other address requires an API key.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from visagent.core.errors import ConfigError

DEFAULT_PORT = 8000


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API (vLLM/SGLang-style)")
    p.add_argument("--model", help="model spec: 'tiny', a checkpoint directory, or an http(s)://host/v1 URL")
    p.add_argument("--model-name", help="name clients send as 'model' (default: 'tiny', the directory name, or "
                   "the upstream server's model for a URL)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1); a non-loopback address needs --api-key")
    p.add_argument("--port", type=int, help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free port)")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1/* (default: $VISAGENT_API_KEY)")
    p.add_argument("--device", help="torch device for an in-process model (auto, cpu, cuda, cuda:1...)")
    p.add_argument("--dtype", help="weights dtype for an in-process model (auto, float32, bfloat16, float16)")
    p.add_argument("--device-map", help="accelerate device map for an in-process model (e.g. auto)")
    # Limits that bound what one request may cost (memory and time) before the model sees it; see README.
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body in MiB (default 64)")
    p.add_argument("--max-text-chars", type=int, help="characters of text per request, checked before tokenizing "
                   "(default: 4 per token of the model's context, at most 1048576)")
    p.add_argument("--max-images", type=int, help="images per request (default: the model's own limit, else 16)")
    p.add_argument("--max-image-pixels", type=int, help=f"pixels (width x height) of one image, read from its header "
                   f"before decoding (default {1 << 24}: 4096x4096)")
    p.add_argument("--max-request-pixels", type=int, help=f"pixels of all images of one request together "
                   f"(default {1 << 25}: four 4K screenshots fit)")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds a client has to send its request "
                   "headers (default 10)")
    p.add_argument("--body-timeout", type=float, default=30.0, help="longest pause, in seconds, while a client "
                   "sends its request body (default 30)")
    p.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address. Raises ConfigError if unresolvable."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} cannot be resolved ({exc.strerror}); use an IP address") from None
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def _served_name(spec: str, engine: object, explicit: str | None) -> str:
    if explicit:
        return explicit
    if spec.startswith(("http://", "https://")):
        return str(getattr(engine, "model_name", spec))
    path = Path(spec).expanduser()
    return path.resolve().name if path.exists() else spec


def run(args) -> int:
    s = args.settings
    host = s.host
    port = DEFAULT_PORT if s.port is None else s.port
    for flag, value in (("--max-images", args.max_images), ("--max-text-chars", args.max_text_chars),
                        ("--max-image-pixels", args.max_image_pixels), ("--max-request-pixels", args.max_request_pixels)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    for flag, value in (("--max-body-mb", args.max_body_mb), ("--header-timeout", args.header_timeout),
                        ("--body-timeout", args.body_timeout)):
        if not value > 0:
            raise ConfigError(f"{flag} must be positive, got {value}")
    if s.api_key is not None and (not s.api_key.strip() or s.api_key != s.api_key.strip()):
        raise ConfigError("--api-key (or VISAGENT_API_KEY) is blank or has surrounding whitespace, so no client "
                          "could send it; pass the key itself, or leave it unset on loopback")
    if not s.api_key and not is_loopback(host):
        raise ConfigError(f"refusing to serve on non-loopback host {host!r} without an API key; pass --api-key KEY "
                          "(or set VISAGENT_API_KEY), or bind 127.0.0.1")

    _check_port_free(host, port)  # before a model loads for minutes only to find the port taken
    from engine import ChatServer
    from visagent.loop.engines import open_engine

    engine = open_engine(s)
    try:
        try:
            server = ChatServer(engine, model_name=_served_name(s.model, engine, s.model_name), host=host, port=port,
                                api_key=s.api_key, max_images=args.max_images,
                                max_body_bytes=int(args.max_body_mb * (1 << 20)), max_text_chars=args.max_text_chars,
                                max_image_pixels=args.max_image_pixels, max_request_pixels=args.max_request_pixels,
                                header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
                              "or stop the process using it") from None
        auth = "API key required" if s.api_key else "no API key"
        print(f"visagent serve: model {server.model_name!r} at {server.url} ({auth}; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("visagent serve: stopping", file=sys.stderr, flush=True)
        finally:
            server.shutdown()
    finally:
        engine.close()
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when `host:port` cannot be bound now (taken, or not an address of this machine).
    Port 0 always binds. The server binds again for real later; this only fails early."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} cannot be resolved ({exc.strerror}); use an IP address") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no clash
        try:
            probe.bind(addr)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
                              "or stop the process using it") from None
