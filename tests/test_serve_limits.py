"""`visagent serve` under abuse: the limits that bound memory and time, each reproduced as the fault probe of
issue 42 found it (a request that cost gigabytes, held a worker, or got the wrong status), plus a small fuzz of
request validation.

In-process ChatServer over a ScriptedTestEngine, so a test can see whether a request ever reached the engine
(i.e. was tokenized) or decoded an image; real loopback sockets for the protocol-level cases.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from engine.server import ChatServer
from tests.scripted_engine import ScriptedTestEngine


@pytest.fixture
def serve():
    servers = []

    def make(reply=lambda m, c: "fine", engine=None, **kw):
        engine = engine or ScriptedTestEngine(reply)
        server = ChatServer(engine, model_name="scripted", port=0, **kw).start()
        servers.append(server)
        return server, engine

    yield make
    for server in servers:
        server.shutdown()


def _png_url(size: tuple[int, int], mode: str = "1") -> str:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")  # 1-bit: a huge but cheap image, as a bomb would be
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _images(*urls: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": u}} for u in urls]
             + [{"type": "text", "text": "what is on screen?"}]}]


def _error(r: httpx.Response) -> dict:
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and "\n" not in err["message"], err
    return err


def _raw(server: ChatServer, data: bytes, *, timeout: float = 20.0, shut: bool = False) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it (or `timeout`)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


# ---------------------------------------------------------------- text: refused before tokenizing

def test_text_above_the_limit_is_refused_before_it_reaches_the_engine(serve):
    server, engine = serve(max_text_chars=1000)
    r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "a" * 1001}]})
    assert r.status_code == 400 and _error(r)["code"] == "text_too_long"
    assert engine.calls == []  # never tokenized
    ok = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "a" * 1000}]})
    assert ok.status_code == 200 and len(engine.calls) == 1


def test_text_in_tools_and_tool_calls_counts_too(serve):
    server, engine = serve(max_text_chars=1000)
    tools = [{"type": "function", "function": {"name": "f", "description": "d" * 1200, "parameters": {}}}]
    r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                            "tools": tools})
    assert r.status_code == 400 and _error(r)["code"] == "text_too_long"
    assert engine.calls == []


def test_the_default_text_limit_follows_the_models_context(serve):
    server, _ = serve(engine=ScriptedTestEngine(lambda m, c: "x", context_length=4096))
    assert server.max_text_chars == 4 * 4096
    no_context, _ = serve(engine=ScriptedTestEngine(lambda m, c: "x", context_length=None))
    assert no_context.max_text_chars == 1 << 20


# ---------------------------------------------------------------- images: count and pixels, from the header

def test_image_count_is_limited_when_no_limit_is_given(serve):
    server, engine = serve()  # no --max-images, the engine states none
    r = httpx.post(server.url + "/chat/completions", json={"messages": _images(*[_png_url((8, 8))] * 17)})
    assert r.status_code == 400 and _error(r)["code"] == "too_many_images"
    assert engine.calls == []
    ok = httpx.post(server.url + "/chat/completions", json={"messages": _images(*[_png_url((8, 8))] * 16)})
    assert ok.status_code == 200


def _decoded(image):
    raise AssertionError(f"decoded a {image.size} image")  # the header alone must decide


def test_a_huge_image_is_refused_from_its_png_header_without_decoding(serve):
    server, engine = serve()
    bomb = _png_url((7999, 7999))  # ~60 KiB on the wire, 64 MP (~190 MB as RGB) decoded
    assert len(bomb) < 100_000
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ImageFile.ImageFile, "load", lambda self, *a, **k: _decoded(self))
        r = httpx.post(server.url + "/chat/completions", json={"messages": _images(bomb)})
    assert r.status_code == 400, r.text
    err = _error(r)
    assert err["code"] == "image_too_large" and err["param"] == "messages[0].content[0].image_url"
    assert "7999x7999" in err["message"] and "--max-image-pixels" in err["message"]
    assert engine.calls == []


def test_pixels_per_request_are_limited_before_decoding(serve):
    server, engine = serve()
    big = _png_url((4096, 3000))  # 12.3 MP each: under the per-image limit, three are over the request's
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ImageFile.ImageFile, "load", lambda self, *a, **k: _decoded(self))
        r = httpx.post(server.url + "/chat/completions", json={"messages": _images(big, big, big)})
    assert r.status_code == 400 and _error(r)["code"] == "too_many_pixels"
    assert engine.calls == []
    ok = httpx.post(server.url + "/chat/completions", json={"messages": _images(big, big)})
    assert ok.status_code == 200
    assert engine.calls[-1]["messages"][0]["content"][0]["image"].size == (4096, 3000)


# ---------------------------------------------------------------- the HTTP layer

def test_a_negative_content_length_is_a_bad_request(serve):
    server, _ = serve()
    out = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: -1\r\n\r\n{}")
    status, body = _status_and_body(out)
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}
    assert "limit" not in body["error"]["message"]


def test_a_header_only_request_claiming_a_huge_body_is_answered_at_once(serve):
    """Content-Length 100 MiB and no body: refused from the header, without waiting for bytes that never come."""
    server, engine = serve()
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n")
        reply = b""  # a 413 arrives while the client still 'owes' 100 MiB
        while b"}}" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert _status_and_body(reply)[1]["error"]["code"] == "body_too_large"
    r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and engine.calls


def test_a_client_that_never_finishes_its_headers_is_dropped(serve):
    server, _ = serve(header_timeout_s=1.0)
    out = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # no blank line, then silence
    assert out.startswith(b"HTTP/1.1 408"), out
    assert _status_and_body(out)[1]["error"]["code"] == "header_timeout"


def test_a_client_that_stalls_mid_body_is_dropped(serve):
    server, engine = serve(body_timeout_s=1.0)
    out = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n{\"messages\"")
    assert out.startswith(b"HTTP/1.1 408"), out
    assert _status_and_body(out)[1]["error"]["code"] == "body_timeout"
    assert engine.calls == []


def test_a_chunked_body_is_read_and_limited(serve):
    server, engine = serve(max_body_bytes=1000)
    body = json.dumps({"messages": [{"role": "user", "content": "chunked"}]}).encode()

    def chunks(data):
        yield data[:10]
        yield data[10:]
    r = httpx.post(server.url + "/chat/completions", content=chunks(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and engine.calls[-1]["messages"][0]["content"] == "chunked"
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    r = httpx.post(server.url + "/chat/completions", content=chunks(big), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and _error(r)["code"] == "body_too_large"


def test_a_blank_or_padded_api_key_is_refused():
    engine = ScriptedTestEngine(lambda m, c: "x")
    for key in (" ", "", " key", "key\n"):
        with pytest.raises(ValueError, match="API key"):
            ChatServer(engine, model_name="scripted", port=0, api_key=key)


def test_serve_refuses_a_blank_api_key_before_loading_the_model(clean_env, capsys):
    from visagent.cli import main

    # a missing checkpoint would fail the model load: reaching it would give another error than the key's
    assert main(["serve", "--model", str(clean_env["work"] / "no-such-checkpoint"), "--port", "0",
                 "--api-key", " "]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--api-key" in err[0] and "blank" in err[0]


def test_client_resets_leave_no_traceback_in_the_log(serve, caplog):
    server, engine = serve(reply=lambda m, c: "word " * 500, engine=None)
    engine.delay_s = 0.005
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    caplog.set_level(logging.DEBUG)
    for cut in (head[:20], head, head + body[:5], head + body):  # mid-header, mid-body, mid-stream
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(cut)
        if cut.endswith(body):
            sock.recv(100)  # the stream has started
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        sock.close()
    ok = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                    timeout=60)
    assert ok.status_code == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


# ---------------------------------------------------------------- fuzz: only 200 or an OpenAI-shaped 4xx

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
                    st.text(max_size=8))
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                     max_leaves=8)
_part = st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=20), _scalar)}),
                  st.fixed_dictionaries({"type": st.just("image_url"),
                                         "image_url": st.one_of(_json, st.fixed_dictionaries({"url": st.sampled_from([
                                             "data:image/png;base64,", "data:image/png;base64,iVBORw0KGgo=",
                                             "http://x/a.png", "data:,x"])}))}),
                  _json)
_message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["system", "developer", "user", "assistant", "tool"]), _scalar)},
    optional={"content": st.one_of(st.text(max_size=20), st.lists(_part, max_size=3), _json),
              "tool_calls": st.one_of(_json, st.lists(st.fixed_dictionaries({"type": st.just("function"), "function":
                  st.fixed_dictionaries({"name": st.one_of(st.text(max_size=5), _scalar),
                                         "arguments": st.one_of(st.just('{"a": 1}'), st.text(max_size=8), _json)})}),
                  max_size=2)),
              "name": _scalar, "reasoning_content": _scalar, "tool_call_id": _scalar})
_request = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(_message, max_size=3), _json)},
    optional={key: _json for key in ("model", "tools", "tool_choice", "temperature", "top_p", "top_k", "max_tokens",
                                     "seed", "stop", "stream", "stream_options", "n", "chat_template_kwargs",
                                     "session_id", "user", "frequency_penalty", "presence_penalty")})


@pytest.fixture(scope="module")
def fuzz_server():
    engine = ScriptedTestEngine(lambda m, c: "ok")
    server = ChatServer(engine, model_name="scripted", port=0).start()
    client = httpx.Client(timeout=30)
    yield server, client
    client.close()
    server.shutdown()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_request, _json))
def test_fuzzed_requests_get_200_or_an_openai_shaped_4xx(fuzz_server, body):
    server, client = fuzz_server
    r = client.post(server.url + "/chat/completions", json=body)
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text, body)
    if r.status_code != 200:
        _error(r)
    elif body.get("stream") is True:
        assert r.text.rstrip().endswith("data: [DONE]")
    else:
        assert r.json()["choices"][0]["message"]["role"] == "assistant"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode)))
def test_fuzzed_raw_bodies_and_headers_never_take_the_server_down(fuzz_server, raw):
    server, client = fuzz_server
    r = client.post(server.url + "/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 or r.status_code == 200
    _error(r) if r.status_code != 200 else None
    out = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\n" + raw.replace(b"\r\n\r\n", b"") + b"\r\n\r\n",
               timeout=10, shut=True)
    if out:  # a reply, if any, is an HTTP response with a JSON error body (never a 5xx)
        status, body = _status_and_body(out)
        assert 400 <= status < 500 and "error" in body, out
    assert client.get(server.url.removesuffix("/v1") + "/health").status_code == 200


# ---------------------------------------------------------------- many requests at once: bounded too

def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    import time
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_bodies_in_flight_are_bounded_and_freed_when_their_clients_leave(serve):
    """Four stalled uploads at the body limit fill the budget (4 x --max-body-mb): the next upload is told to retry
    (503) instead of buffering without bound; once the stalled clients leave, uploads are accepted again."""
    server, engine = serve(max_body_bytes=1000)
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"messages\": ")
    stalled = [socket.create_connection((server.host, server.port), timeout=20) for _ in range(4)]
    for sock in stalled:
        sock.sendall(head)
    url = server.url + "/chat/completions"
    body = {"messages": [{"role": "user", "content": "x" * 500}]}
    assert _wait_for(lambda: httpx.post(url, json=body).status_code == 503)
    r = httpx.post(url, json=body)
    assert r.status_code == 503 and _error(r)["code"] == "overloaded" and r.headers["Retry-After"]
    for sock in stalled:
        sock.close()
    assert _wait_for(lambda: httpx.post(url, json=body).status_code == 200)
    assert engine.calls


def test_decoded_images_waiting_in_the_queue_are_bounded(serve):
    """Requests whose decoded images would exceed 4 x --max-request-pixels while waiting for the model are told to
    retry (503) instead of piling decoded pixels up in the queue."""
    server, engine = serve(reply=lambda m, c: "word " * 2000, max_request_pixels=10_000)
    engine.delay_s = 0.01  # ~20 s per answer unless cancelled
    one_image = json.dumps({"messages": _images(_png_url((100, 100), "RGB"))}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(one_image)) + one_image
    waiting = [socket.create_connection((server.host, server.port), timeout=20) for _ in range(4)]
    for sock in waiting:
        sock.sendall(request)  # one runs, three wait: 4 x 10,000 pixels held
    assert _wait_for(lambda: server.queued() == 3)
    r = httpx.post(server.url + "/chat/completions", content=one_image, headers={"Content-Type": "application/json"})
    assert r.status_code == 503 and _error(r)["code"] == "overloaded"
    for sock in waiting:
        sock.close()  # their jobs are cancelled, their pixels released
    engine.reply = lambda m, c: "ok"
    assert _wait_for(lambda: httpx.post(server.url + "/chat/completions", content=one_image, timeout=60,
                                        headers={"Content-Type": "application/json"}).status_code == 200)


def test_shutdown_cancels_the_running_generation_and_answers_its_client():
    engine = ScriptedTestEngine(lambda m, c: "word " * 2000, delay_s=0.01)  # ~20 s unless cancelled
    server = ChatServer(engine, model_name="scripted", port=0).start()
    replies: list = []
    import threading

    def ask() -> None:
        try:
            replies.append(httpx.post(server.url + "/chat/completions", timeout=60,
                                      json={"messages": [{"role": "user", "content": "hi"}]}))
        except httpx.HTTPError as exc:  # the connection closed under it: an answer too, never a hang
            replies.append(exc)
    client = threading.Thread(target=ask)
    client.start()
    assert _wait_for(lambda: engine.active == 1)
    server.shutdown()
    client.join(timeout=30)
    assert replies and engine.calls[-1]["cancelled"]
