"""`visagent serve`: an OpenAI-compatible HTTP server over one in-process Engine.

HTTP stack: the standard library's `ThreadingHTTPServer`. The work is one model on one worker thread, so an
async framework buys nothing; the stdlib needs no new dependency, lets SSE be plain socket writes, and makes
a vanished client visible (a failed write, or EOF on the socket) so its generation can be cancelled.

Concurrency: each connection gets a thread that validates its request and puts a job on one queue; a single
worker thread owns the engine and runs jobs one at a time (the Engine protocol has no batch call), streaming
deltas back through the job's own queue, so no request ever sees another's state. When a client disconnects
its job's cancel Event is set: a queued job is skipped, a running one stops within a token.

Endpoints: POST /v1/chat/completions (stream or not), GET /v1/models, GET /health. Every refusal is a JSON
body {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status; no input takes the server down.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.api import Delta, Engine, GenerationResult
from engine.chat_protocol import (ChatRequest, RequestError, chunk_body, completion_body, error_body, extension_body,
                                  finish_reason, new_completion_id, parse_chat_request, split_answer, usage_body, wire_tool_calls)
from engine.errors import EngineError
from engine.toolcall_text import ToolCallStreamFilter

log = logging.getLogger(__name__)

_POLL_S = 0.2  # how often a waiting request thread checks whether its client is still connected


@dataclass
class _Job:
    request: ChatRequest
    cancel: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)  # ("delta", Delta) | ("done", result) | ("error", exc)


class ChatServer:
    """Serves `engine` under `model_name` on host:port (port 0 picks a free one; see `.port`).

    `api_key`: when set, /v1/* requires `Authorization: Bearer <key>`. `max_images`: per-request image limit
    (None: the engine's `info.max_images`, else unlimited). `max_body_bytes`: larger bodies get 413. `max_queue`: waiting requests beyond this get
    503 (clients retry). Raises OSError when the address cannot be bound.
    """

    def __init__(self, engine: Engine, *, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                 api_key: str | None = None, max_images: int | None = None, max_body_bytes: int = 64 << 20,
                 max_queue: int = 256) -> None:
        self.engine = engine
        self.model_name = model_name
        self.api_key = api_key
        # The engine's own per-request limit applies when no tighter one is given.
        self.max_images = max_images if max_images is not None else getattr(engine.info, "max_images", None)
        self.max_body_bytes = max_body_bytes
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._httpd = _HTTPServer(host, port, self)
        self._worker = threading.Thread(target=self._work, name="visagent-engine-worker", daemon=True)
        self._worker.start()
        self._serving: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def serve_forever(self) -> None:
        """Serve until `shutdown()` (from another thread) or KeyboardInterrupt."""
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ChatServer:
        """Serve on a background thread (for embedding and tests); returns self."""
        self._serving = threading.Thread(target=self.serve_forever, name="visagent-http", daemon=True)
        self._serving.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting requests and stop the worker (the engine itself is the caller's to close)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._jobs.put(None)
        self._worker.join(timeout=5)

    def queued(self) -> int:
        return self._jobs.qsize()

    # ------------------------------------------------------------ worker

    def submit(self, request: ChatRequest) -> _Job:
        job = _Job(request)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise RequestError(503, f"server busy: {self._jobs.maxsize} requests already waiting; retry later",
                               type="server_error", code="overloaded") from None
        return job

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():  # its client left while it waited
                continue
            req = job.request
            try:
                result = self.engine.generate(req.messages, tools=req.tools, config=req.config,
                                              on_delta=lambda d, q=job.events: q.put(("delta", d)),
                                              cancel=job.cancel, session_id=req.session_id)
            except Exception as exc:  # reported to this request's client; the worker lives on
                if not isinstance(exc, EngineError):
                    log.exception("generation failed")
                job.events.put(("error", exc))
            else:
                job.events.put(("done", result))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: ChatServer) -> None:
        self.app = app
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line and headers back
    server_version = "visagent"
    _checked_at = 0.0  # when _client_gone last looked
    timeout = 120  # seconds a client may take to send its request; frees threads held by stalled clients
    server: _HTTPServer

    # ------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (bad request line, unknown method...) as OpenAI error bodies."""
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "error"
        self.close_connection = True
        self._send_json(code, error_body(message or phrase, code=phrase.lower().replace(" ", "_")))

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _refuse(self, exc: RequestError) -> None:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        self._send_json(exc.status, exc.body(), headers)

    def _authorized(self) -> bool:
        key = self.server.app.api_key
        if not key:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), key.encode())

    def _client_gone(self) -> bool:
        """True when the client closed its side (EOF pending on the socket)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # ------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0].rstrip("/")
        app = self.server.app
        if path == "/health":
            self._send_json(200, {"status": "ok", "model": app.model_name, "queued": app.queued()})
        elif path == "/v1/models":
            if not self._authorized():
                return self._refuse(_unauthorized())
            info = getattr(app.engine, "info", None)
            self._send_json(200, {"object": "list", "data": [{
                "id": app.model_name, "object": "model", "created": int(time.time()), "owned_by": "visagent",
                "max_model_len": getattr(info, "context_length", None),
                # what a visagent client needs to prompt and click as with the model in process
                "visagent": {"prompt_profile": getattr(info, "prompt_profile", "full"),
                             "points": bool(getattr(info, "points", False)),
                             "history_images": getattr(info, "history_images", None),
                             "coord_space": getattr(info, "coord_space", None)}}]})
        else:
            self._refuse(RequestError(404, f"no route GET {path}; try /v1/models or /health", code="not_found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_body()  # always drained first so keep-alive stays in sync
            if path != "/v1/chat/completions":
                raise RequestError(404, f"no route POST {path}; use /v1/chat/completions", code="not_found")
            if not self._authorized():
                raise _unauthorized()
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RequestError(400, f"request body is not valid JSON ({exc})", code="invalid_json") from None
            app = self.server.app
            req = parse_chat_request(data, served_model=app.model_name, max_images=app.max_images,
                                     session_header=self.headers.get("X-Session-Id"))
            job = app.submit(req)
        except RequestError as exc:
            return self._refuse(exc)
        except Exception:  # a bug of ours must not take the server down or hang the client
            log.exception("request handling failed")
            self.close_connection = True
            return self._send_json(500, error_body("internal server error", type="server_error"))
        if req.stream:
            self._stream(job)
        else:
            self._respond(job)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise RequestError(411, "chunked request bodies are not supported; send Content-Length",
                               code="length_required")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.close_connection = True
            raise RequestError(400, "Content-Length is not a number", code="invalid_header") from None
        limit = self.server.app.max_body_bytes
        if length < 0 or length > limit:
            self.close_connection = True
            if 0 < length <= 16 * limit:  # drain it, so the client finishes sending and can read our answer
                self._discard(length)
            raise RequestError(413, f"request body is {length} bytes, above the {limit} byte limit; send fewer or "
                               "smaller images, or restart the server with a higher --max-body-mb",
                               code="body_too_large")
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise RequestError(400, f"request body ended after {len(body)} of {length} bytes", code="incomplete_body")
        return body

    def _discard(self, length: int) -> None:
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            pass  # the client gave up sending; the 413 goes out anyway (or nobody is left to read it)

    # ------------------------------------------------------------ answering

    def _next_event(self, job: _Job) -> tuple[str, Any] | None:
        """The job's next event, or None when the client disconnected (the job is then cancelled)."""
        while True:
            now = time.monotonic()
            if now - self._checked_at >= _POLL_S:  # checked on a clock: a busy event queue must not hide it
                self._checked_at = now
                if self._client_gone():
                    job.cancel.set()
                    self.close_connection = True
                    return None
            try:
                return job.events.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _respond(self, job: _Job) -> None:
        while True:
            event = self._next_event(job)
            if event is None:
                return
            kind, value = event
            if kind == "done":
                app = self.server.app
                return self._send_json(200, completion_body(value, job.request, completion_id=new_completion_id(),
                                                            model=app.model_name))
            if kind == "error":
                return self._refuse(_engine_failure(value))

    def _stream(self, job: _Job) -> None:
        app = self.server.app
        cid = new_completion_id()
        req = job.request
        self.close_connection = True  # the stream ends when the connection does
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self._sse(chunk_body(cid, app.model_name, {"role": "assistant", "content": ""}))
            tool_filter = ToolCallStreamFilter(req.tools) if req.parse_tools else None
            while True:
                event = self._next_event(job)
                if event is None:
                    return
                kind, value = event
                if kind == "delta":
                    self._stream_delta(cid, value, tool_filter)
                elif kind == "done":
                    self._stream_end(cid, value, req, tool_filter)
                    return
                else:
                    failure = _engine_failure(value)
                    self._sse(failure.body())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            job.cancel.set()  # the client left mid-stream: stop generating for it

    def _sse(self, body: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()

    def _stream_delta(self, cid: str, delta: Delta, tool_filter: ToolCallStreamFilter | None) -> None:
        model = self.server.app.model_name
        if delta.kind == "thinking":
            self._sse(chunk_body(cid, model, {"reasoning_content": delta.text}))
            return
        text = tool_filter.feed(delta.text) if tool_filter else delta.text
        if text:
            self._sse(chunk_body(cid, model, {"content": text}))

    def _stream_end(self, cid: str, result: GenerationResult, req: ChatRequest,
                    tool_filter: ToolCallStreamFilter | None) -> None:
        model = self.server.app.model_name
        calls = []
        if tool_filter is not None:
            rest, calls = tool_filter.finish()
            if result.tool_calls:  # structured calls from the engine win, as in the non-streaming path
                _, calls = split_answer(result, req)
            if rest:
                self._sse(chunk_body(cid, model, {"content": rest}))
            if calls:
                self._sse(chunk_body(cid, model, {"tool_calls": wire_tool_calls(calls, with_index=True)}))
        self._sse({**chunk_body(cid, model, {}, finish_reason(result, calls)), **extension_body(result)})
        if req.include_usage:
            self._sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [], "usage": usage_body(result)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _unauthorized() -> RequestError:
    return RequestError(401, "missing or wrong API key; send 'Authorization: Bearer <key>' with the server's "
                        "--api-key", code="invalid_api_key")


def _engine_failure(exc: BaseException) -> RequestError:
    if isinstance(exc, EngineError):  # the engine says what was wrong with this request (context too long, ...)
        return RequestError(400, str(exc), code="engine_error")
    return RequestError(500, f"generation failed ({type(exc).__name__}); see the server log", type="server_error")
