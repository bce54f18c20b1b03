"""`visagent serve`: an OpenAI-compatible HTTP server over one in-process Engine.

HTTP stack: Starlette under uvicorn (the ASGI stack vLLM, SGLang and llama.cpp's Python server use for the same
API), request bodies validated by the pydantic models of engine.chat_schema. uvicorn's h11 protocol parses HTTP
(bad request lines, bad or negative Content-Length, oversized headers: a 4xx); a small subclass of it adds what
uvicorn leaves out and answers in the OpenAI error shape: a deadline for the request headers, an idle deadline
for the body, and JSON bodies for protocol-level refusals.

Concurrency: requests are handled on one event loop; the CPU-heavy part of a request (JSON decoding, validation,
image decoding) runs in a thread, then the request goes on one queue; a single worker thread owns the engine and
runs jobs one at a time (the Engine protocol has no batch call), handing deltas back to the event loop, so no
request ever sees another's state. When a client disconnects its job's cancel Event is set: a queued job is
skipped, a running one stops within a token.

Limits (engine.chat_protocol.RequestLimits, plus the body size and the two deadlines here) bound what one
request may cost before the engine sees it; each refusal names the `visagent serve` flag that raises it.

Endpoints: POST /v1/chat/completions (stream or not), GET /v1/models, GET /health. Every refusal is a JSON
body {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status; no input takes the server down.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import queue
import socket
import threading
import time
from http import HTTPStatus
from dataclasses import dataclass, field, replace
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.api import Delta, Engine, GenerationResult
from engine.chat_protocol import (ChatRequest, RequestError, RequestLimits, chunk_body, completion_body, error_body,
                                  extension_body, finish_reason, new_completion_id, parse_chat_request, split_answer,
                                  usage_body, wire_tool_calls)
from engine.errors import EngineError
from engine.toolcall_text import ToolCallStreamFilter

log = logging.getLogger(__name__)

DEFAULT_MAX_IMAGES = 16
CHARS_PER_TOKEN = 4  # the default text limit: this many characters per token of the model's context
DEFAULT_MAX_TEXT_CHARS = 1 << 20  # when the model states no context length
_INLINE_PARSE_BYTES = 64 << 10
# Many requests at once: at most this many limit-sized request bodies are buffered, and this many limit-sized
# requests' decoded images wait for (or sit in) the model; more get 503 with Retry-After (clients retry).
IN_FLIGHT_REQUESTS = 4
_PARSING_AT_ONCE = 2  # JSON and image decoding of big bodies (each costs a few times its body in memory)


@dataclass
class _Job:
    request: ChatRequest
    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    events: asyncio.Queue = field(default_factory=asyncio.Queue)  # ("delta", Delta) | ("done", result) | ("error", exc)

    def post(self, kind: str, value: Any) -> None:
        """From the worker thread: hand an event to the request's coroutine."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shut down): nobody is waiting
            self.cancel.set()


class ChatServer:
    """Serves `engine` under `model_name` on host:port (port 0 picks a free one; see `.port`).

    `api_key`: when set, /v1/* requires `Authorization: Bearer <key>` (a blank key or one with surrounding
    whitespace, which no client could send, is a ValueError). Per-request limits: `max_images` (None: the
    engine's `info.max_images`, else 16), `max_text_chars` (None: 4 per token of the model's context, else 1 Mi;
    counted before tokenizing), `max_image_pixels` and `max_request_pixels` (read from image headers before
    decoding), `max_body_bytes` (larger bodies get 413). `header_timeout_s`: a client must send its request
    headers within this; `body_timeout_s`: and never pause longer than this while sending the body (408
    otherwise). `max_queue`: waiting requests beyond this get 503 (clients retry); so do requests beyond
    IN_FLIGHT_REQUESTS x `max_body_bytes` of bodies being received, or IN_FLIGHT_REQUESTS x
    `max_request_pixels` of decoded images waiting for or in the model. Raises OSError when the address
    cannot be bound.
    """

    def __init__(self, engine: Engine, *, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                 api_key: str | None = None, max_images: int | None = None, max_body_bytes: int = 64 << 20,
                 max_text_chars: int | None = None, max_image_pixels: int | None = None,
                 max_request_pixels: int | None = None, header_timeout_s: float = 10.0, body_timeout_s: float = 30.0,
                 max_queue: int = 256) -> None:
        if api_key is not None and (not api_key.strip() or api_key != api_key.strip()):
            raise ValueError("the API key is blank or has surrounding whitespace; no client could send it")
        self.engine = engine
        self.model_name = model_name
        self.api_key = api_key
        info = getattr(engine, "info", None)
        context = getattr(info, "context_length", None)
        defaults = RequestLimits()
        self.limits = replace(
            defaults,
            max_images=max_images if max_images is not None else getattr(info, "max_images", None) or DEFAULT_MAX_IMAGES,
            max_text_chars=max_text_chars if max_text_chars is not None else (
                min(DEFAULT_MAX_TEXT_CHARS, CHARS_PER_TOKEN * context) if context else DEFAULT_MAX_TEXT_CHARS),
            max_image_pixels=max_image_pixels or defaults.max_image_pixels,
            max_request_pixels=max_request_pixels or defaults.max_request_pixels)
        self.max_body_bytes = max_body_bytes
        self._body_budget = IN_FLIGHT_REQUESTS * max_body_bytes
        self._body_bytes = 0  # bodies being received and parsed (touched on the event loop only)
        self._pixel_budget = IN_FLIGHT_REQUESTS * self.limits.max_request_pixels
        self._held_pixels = 0  # decoded pixels of queued and running jobs
        self._held_lock = threading.Lock()
        self._parsing: asyncio.Semaphore | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._running: _Job | None = None
        self._socket = _bind(host, port)
        config = uvicorn.Config(
            _app(self), http=_protocol(header_timeout_s, body_timeout_s), ws="none", lifespan="off",
            log_config=None, server_header=False, headers=[("server", "visagent")], timeout_keep_alive=5,
            timeout_graceful_shutdown=3, h11_max_incomplete_event_size=64 << 10)
        self._uvicorn = uvicorn.Server(config)
        self._worker = threading.Thread(target=self._work, name="visagent-engine-worker", daemon=True)
        self._worker.start()
        self._serving: threading.Thread | None = None

    @property
    def max_images(self) -> int | None:
        return self.limits.max_images

    @property
    def max_text_chars(self) -> int | None:
        return self.limits.max_text_chars

    @property
    def host(self) -> str:
        return self._socket.getsockname()[0]

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def serve_forever(self) -> None:
        """Serve until `shutdown()` (from another thread) or KeyboardInterrupt (which propagates)."""
        self.start()
        assert self._serving is not None
        while self._serving.is_alive():
            self._serving.join(timeout=0.5)  # a short join, so Ctrl-C / SIGTERM reach the main thread

    def start(self) -> ChatServer:
        """Serve on a background thread (for embedding and tests); returns self."""
        if self._serving is None:
            self._serving = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self._socket]},
                                             name="visagent-http", daemon=True)
            self._serving.start()
        return self

    def shutdown(self) -> None:
        """Cancel what is queued or running (so no one waits for a generation nobody will read), stop accepting
        requests, and stop the worker (the engine itself is the caller's to close)."""
        running = self._running
        if running is not None:
            running.cancel.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel.set()
                job.post("error", EngineError("the server is shutting down"))
        self._uvicorn.should_exit = True
        if self._serving is not None:
            self._serving.join(timeout=10)
        self._socket.close()
        self._jobs.put(None)
        self._worker.join(timeout=5)

    def queued(self) -> int:
        return self._jobs.qsize()

    # ------------------------------------------------------------ worker

    def submit(self, request: ChatRequest) -> _Job:
        job = _Job(request, asyncio.get_running_loop())
        with self._held_lock:
            if request.n_pixels and self._held_pixels + request.n_pixels > self._pixel_budget:
                raise _busy(f"{self._held_pixels} decoded image pixels already wait for the model")
            self._held_pixels += request.n_pixels
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._release(job)
            raise _busy(f"{self._jobs.maxsize} requests already waiting") from None
        return job

    def _release(self, job: _Job) -> None:
        with self._held_lock:
            self._held_pixels -= job.request.n_pixels

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():  # its client left while it waited
                self._release(job)
                continue
            req = job.request
            self._running = job
            try:
                result = self.engine.generate(req.messages, tools=req.tools, config=req.config,
                                              on_delta=(lambda d, j=job: j.post("delta", d)) if req.stream else None,
                                              cancel=job.cancel, session_id=req.session_id)
            except Exception as exc:  # reported to this request's client; the worker lives on
                if not isinstance(exc, EngineError):
                    log.exception("generation failed")
                job.post("error", exc)
            else:
                job.post("done", result)
            finally:
                self._running = None
                self._release(job)

    def authorized(self, header: str | None) -> bool:
        if not self.api_key:
            return True
        given = header or ""
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), self.api_key.encode())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


# ---------------------------------------------------------------- the ASGI application

def _app(server: ChatServer) -> Any:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": server.model_name, "queued": server.queued()})

    async def models(request: Request) -> Response:
        if not server.authorized(request.headers.get("authorization")):
            return _refuse(_unauthorized())
        info = getattr(server.engine, "info", None)
        return JSONResponse({"object": "list", "data": [{
            "id": server.model_name, "object": "model", "created": int(time.time()), "owned_by": "visagent",
            "max_model_len": getattr(info, "context_length", None),
            # what a visagent client needs to prompt and click as with the model in process
            "visagent": {"prompt_profile": getattr(info, "prompt_profile", "full"),
                         "points": bool(getattr(info, "points", False)),
                         "history_images": getattr(info, "history_images", None),
                         "coord_space": getattr(info, "coord_space", None)}}]})

    async def chat(request: Request) -> Response:
        try:
            if not server.authorized(request.headers.get("authorization")):
                raise _unauthorized()
            async with _BodyBudget(server) as budget:
                body = await _read_body(request, server.max_body_bytes, budget)
                session = request.headers.get("x-session-id")
                # a small text-only body parses faster than a thread hop; images or a large body must not stall
                # the event loop (a few KiB of PNG can hold millions of pixels)
                if len(body) <= _INLINE_PARSE_BYTES and b"image_url" not in body:
                    req = _parse(body, server, session)
                else:
                    server._parsing = server._parsing or asyncio.Semaphore(_PARSING_AT_ONCE)
                    async with server._parsing:
                        req = await run_in_threadpool(_parse, body, server, session)
                del body
                job = server.submit(req)
        except RequestError as exc:
            return _refuse(exc)
        except ClientDisconnect:  # it left (or was dropped for stalling) while sending: nobody to answer
            return Response(status_code=400)
        except Exception:  # a bug of ours must not take the server down or hang the client
            log.exception("request handling failed")
            return JSONResponse(error_body("internal server error", type="server_error"), status_code=500)
        if req.stream:
            return StreamingResponse(_sse(server, job), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        outcome = await _outcome(request, job)
        if outcome is None:  # the client left; its job is cancelled
            return Response(status_code=400)
        kind, value = outcome
        if kind == "error":
            return _refuse(_engine_failure(value))
        return JSONResponse(completion_body(value, req, completion_id=new_completion_id(), model=server.model_name))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        method, path = request.method, request.url.path
        if exc.status_code == 405 and method not in ("GET", "HEAD", "POST"):
            return _refuse(RequestError(501, f"method {method} is not supported; use GET or POST",
                                        code="not_implemented"))
        if exc.status_code == 405:
            return _refuse(RequestError(405, f"{method} is not allowed on {path}", code="method_not_allowed"))
        if exc.status_code == 404:
            hint = "use /v1/chat/completions" if method == "POST" else "try /v1/models or /health"
            return _refuse(RequestError(404, f"no route {method} {path}; {hint}", code="not_found"))
        return _refuse(RequestError(exc.status_code, str(exc.detail), code="http_error"))

    app = Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/v1/models", models, methods=["GET"]),
                            Route("/v1/chat/completions", chat, methods=["POST"])],
                    exception_handlers={HTTPException: http_error})

    async def strip_trailing_slash(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = {**scope, "path": scope["path"].rstrip("/") or "/"}
        await app(scope, receive, send)

    return strip_trailing_slash


class _BodyBudget:
    """Bytes of request bodies the server holds at once (received, being parsed), bounded by the server's
    `_body_budget`: a body that would exceed it gets 503. Used on the event loop only, so no lock."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.held = 0

    async def __aenter__(self) -> _BodyBudget:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server._body_bytes -= self.held
        self.held = 0

    def take(self, n: int) -> None:
        server = self.server
        if server._body_bytes + n > server._body_budget:
            raise _busy(f"{server._body_bytes} bytes of request bodies already in flight")
        server._body_bytes += n
        self.held += n


async def _read_body(request: Request, limit: int, budget: _BodyBudget) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` (from Content-Length, before
    reading anything, or while reading a chunked body), or 503 when it does not fit the server's budget for
    bodies in flight. Raises ClientDisconnect when the client leaves."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > limit:  # h11 has checked it is a non-negative integer
        raise _too_large(int(declared), limit)
    if declared is not None:
        budget.take(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit, at_least=True)
        if declared is None:
            budget.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)  # one copy at the end (a growing bytearray would copy on every doubling)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> RequestError:
    return RequestError(413, f"request body is {'over ' if at_least else ''}{size} bytes, above the {limit} byte limit;"
                        " send fewer or smaller images, or restart the server with a higher --max-body-mb",
                        code="body_too_large")


def _parse(body: bytes, server: ChatServer, session_header: str | None) -> ChatRequest:
    """JSON decoding, validation and image decoding (run in a thread: it is the CPU-heavy part of a request)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:120] if not isinstance(exc, RecursionError) else "nested too deeply"
        raise RequestError(400, f"request body is not valid JSON ({detail})", code="invalid_json") from None
    return parse_chat_request(data, served_model=server.model_name, limits=server.limits,
                              session_header=session_header)


async def _outcome(request: Request, job: _Job) -> tuple[str, Any] | None:
    """The job's ("done", result) or ("error", exc); None (and the job cancelled) when the client disconnects."""
    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(disconnected())
    try:
        while True:
            event = asyncio.ensure_future(job.events.get())
            done, _ = await asyncio.wait({event, watch}, return_when=asyncio.FIRST_COMPLETED)
            if event not in done:
                event.cancel()
                job.cancel.set()
                return None
            kind, value = event.result()
            if kind != "delta":
                return kind, value
    except asyncio.CancelledError:  # the server is shutting down
        job.cancel.set()
        raise
    finally:
        watch.cancel()


async def _sse(server: ChatServer, job: _Job):
    """The server-sent events of a streamed completion. Starlette stops iterating when the client disconnects;
    `finally` then cancels the generation."""
    model = server.model_name
    cid = new_completion_id()
    req = job.request
    tool_filter = ToolCallStreamFilter(req.tools) if req.parse_tools else None
    try:
        yield _event(chunk_body(cid, model, {"role": "assistant", "content": ""}))
        while True:
            kind, value = await job.events.get()
            if kind == "delta":
                delta: Delta = value
                if delta.kind == "thinking":
                    yield _event(chunk_body(cid, model, {"reasoning_content": delta.text}))
                    continue
                text = tool_filter.feed(delta.text) if tool_filter else delta.text
                if text:
                    yield _event(chunk_body(cid, model, {"content": text}))
            elif kind == "done":
                for body in _stream_end(cid, model, value, req, tool_filter):
                    yield _event(body)
                yield b"data: [DONE]\n\n"
                return
            else:
                yield _event(_engine_failure(value).body())
                yield b"data: [DONE]\n\n"
                return
    finally:
        job.cancel.set()  # the stream ended early (client gone) or normally (then the job is already done)


def _event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def _stream_end(cid: str, model: str, result: GenerationResult, req: ChatRequest,
                tool_filter: ToolCallStreamFilter | None) -> list[dict[str, Any]]:
    out = []
    calls = []
    if tool_filter is not None:
        rest, calls = tool_filter.finish()
        if result.tool_calls:  # structured calls from the engine win, as in the non-streaming path
            _, calls = split_answer(result, req)
        if rest:
            out.append(chunk_body(cid, model, {"content": rest}))
        if calls:
            out.append(chunk_body(cid, model, {"tool_calls": wire_tool_calls(calls, with_index=True)}))
    out.append({**chunk_body(cid, model, {}, finish_reason(result, calls)), **extension_body(result)})
    if req.include_usage:
        out.append({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [], "usage": usage_body(result)})
    return out


def _refuse(exc: RequestError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _busy(why: str) -> RequestError:
    return RequestError(503, f"server busy: {why}; retry later", type="server_error", code="overloaded")


def _unauthorized() -> RequestError:
    return RequestError(401, "missing or wrong API key; send 'Authorization: Bearer <key>' with the server's "
                        "--api-key", code="invalid_api_key")


def _engine_failure(exc: BaseException) -> RequestError:
    if isinstance(exc, EngineError):  # the engine says what was wrong with this request (context too long, ...)
        return RequestError(400, str(exc), code="engine_error")
    return RequestError(500, f"generation failed ({type(exc).__name__}); see the server log", type="server_error")


# ---------------------------------------------------------------- HTTP deadlines and protocol errors

def _protocol(header_timeout_s: float, body_timeout_s: float) -> type[H11Protocol]:
    return type("VisagentH11Protocol", (_Protocol,), {"header_timeout_s": header_timeout_s,
                                                       "body_timeout_s": body_timeout_s})


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol plus two deadlines and OpenAI-shaped protocol errors.

    Headers: a client has `header_timeout_s` from connecting (or from the end of its previous response) to send
    a complete request head, however it trickles the bytes. Body: it may pause at most `body_timeout_s` between
    two pieces. On expiry it gets a 408 (when no response has started) and the connection is closed. uvicorn's
    own refusals of unparsable HTTP (bad request line, bad Content-Length, headers over 64 KiB) keep h11's
    status and get a JSON error body instead of plain text."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for = ""
        self._protocol_error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def remember_errors() -> Any:
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error = exc
                raise
        self.conn.next_event = remember_errors  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("header", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            if self.conn.their_state is h11.IDLE:
                self._arm("header", self.header_timeout_s)
            else:
                self._follow_state()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow_state(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm("body", self.body_timeout_s)  # an idle deadline: re-armed by every piece
        elif state is not h11.IDLE:
            self._disarm()

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        header = self._waiting_for == "header"
        cycle = None if header else self.cycle
        if header or (cycle is not None and not cycle.response_started):
            what, flag, seconds = (("request headers", "--header-timeout", self.header_timeout_s) if header else
                                   ("request body", "--body-timeout", self.body_timeout_s))
            self._write_error(408, error_body(f"the {what} did not arrive within {seconds:g} s; send the whole "
                                              f"request promptly (the server's {flag} sets the limit)",
                                              code=f"{self._waiting_for}_timeout"))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's reads end; its answer, if any, is dropped
            cycle.message_event.set()
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        exc = self._protocol_error
        status = getattr(exc, "error_status_hint", 400) or 400
        detail = str(exc) if exc is not None and str(exc) else msg
        self._write_error(status, error_body(f"malformed HTTP request: {detail}", code="invalid_http"))
        self.transport.close()

    def _write_error(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        phrase = _phrase(status).encode("ascii")
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\nserver: visagent\r\n\r\n" % (status, phrase, len(data)) + data)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
