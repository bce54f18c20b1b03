"""`visagent serve` over real loopback HTTP.

End to end: a `visagent serve --model tiny` subprocess driven by the official `openai` client and raw httpx
(streaming, tools, images, concurrency, every malformed-request class, auth). Parsing of tool calls and
reasoning, session ids and disconnect cancellation use an in-process ChatServer over a ScriptedTestEngine,
because the tiny checkpoint's random weights cannot be made to write a tool call or stall on demand.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from PIL import Image

from engine.errors import EngineError
from engine.server import ChatServer
from tests.fixtures.serve import VISAGENT, clean_env, start_serve
from tests.scripted_engine import ScriptedTestEngine
from visagent.commands.serve import is_loopback

KEY = "test-key"
TOOLS = [{"type": "function", "function": {"name": "computer_use", "description": "Use the mouse and keyboard.",
                                           "parameters": {"type": "object", "properties": {
                                               "action": {"type": "string"}, "coordinate": {"type": "array"}},
                                               "required": ["action"]}}}]
CALL_XML = ("Clicking OK.\n<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
            "<parameter=coordinate>\n[500, 300]\n</parameter>\n</function>\n</tool_call>")


def _png_url(color: str = "red", size: tuple[int, int] = (64, 48)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.fixture(scope="module")
def tiny(random_tiny):
    # a random-weight tiny served under the name "tiny": answers vary with the prompt (see random_tiny)
    server = start_serve("--model", str(random_tiny), "--model-name", "tiny", "--api-key", KEY, "--max-images", "2", "--max-body-mb", "1")
    yield server
    assert server.stop() == 0, server.stderr()[-2000:]


@pytest.fixture(scope="module")
def client(tiny):
    return openai.OpenAI(base_url=tiny.url, api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture
def scripted():
    """An in-process server over a ScriptedTestEngine; yields (server, engine)."""
    servers = []

    def make(reply=lambda m, c: CALL_XML, **kw):
        engine = ScriptedTestEngine(reply, delay_s=kw.pop("delay_s", 0.0))
        server = ChatServer(engine, model_name="scripted", port=0, **kw).start()
        servers.append(server)
        return server, engine

    yield make
    for server in servers:
        server.shutdown()


# ---------------------------------------------------------------- tiny, end to end

def test_health_and_models(tiny):
    assert httpx.get(tiny.root + "/health").json()["status"] == "ok"
    models = httpx.get(tiny.url + "/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["id"] for m in models["data"]] == ["tiny"]


def test_openai_client_stream_matches_non_stream(client):
    messages = [{"role": "user", "content": [_image_part(_png_url("blue")), {"type": "text", "text": "Click OK."}]}]
    full = client.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0)
    stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert full.choices[0].message.content
    assert streamed.strip() == full.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == full.choices[0].finish_reason == "length"
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens == 4
    assert full.usage.prompt_tokens > 64  # the screenshot's visual tokens are in the prompt


def test_openai_client_with_tools_streaming(client):
    messages = [{"role": "system", "content": "You operate a computer."}, {"role": "user", "content": "Open the menu."}]
    plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0)
    stream = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=4,
                                            temperature=0, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish in (["length"], ["tool_calls"], ["stop"])
    with_tools = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # the tool schemas reached the chat template: the prompt, and so the greedy answer, changed
    assert with_tools.strip() != plain.choices[0].message.content


def test_eight_concurrent_clients_each_get_their_own_answer(tiny):
    def ask(c: int, i: int) -> str:
        body = {"model": "tiny", "messages": [{"role": "user", "content": f"client {c} request {i}"}],
                "max_tokens": 3, "temperature": 1.0, "seed": 1000 * c + i}
        r = httpx.post(tiny.url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                       timeout=300)
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["message"]["content"]

    def client_run(c: int) -> dict[tuple[int, int], str]:
        return {(c, i): ask(c, i) for i in range(5)}

    with ThreadPoolExecutor(8) as pool:
        concurrent = {k: v for part in pool.map(client_run, range(8)) for k, v in part.items()}
    sequential = {(c, i): ask(c, i) for c in range(8) for i in range(5)}
    assert len(concurrent) == 40
    assert concurrent == sequential  # each answer is the one its own prompt and seed produce
    assert len(set(sequential.values())) > 30  # and answers differ enough that a mix-up would show


def _post(tiny, body: bytes | str | dict, headers: dict | None = None, path: str = "/chat/completions"):
    headers = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    if isinstance(body, dict):
        return httpx.post(tiny.url + path, json=body, headers=headers, timeout=60)
    return httpx.post(tiny.url + path, content=body, headers={"Content-Type": "application/json", **headers}, timeout=60)


def _msg(*parts) -> list[dict]:
    return [{"role": "user", "content": list(parts) or "hi"}]


MALFORMED = [
    ("bad json", b'{"messages": [', 400, "invalid_json", None),
    ("body not an object", b"[1, 2]", 400, "invalid_type", None),
    ("no messages", {"model": "tiny"}, 400, "invalid_type", "messages"),
    ("message not an object", {"messages": ["hi"]}, 400, "invalid_type", "messages[0]"),
    ("unknown role", {"messages": [{"role": "robot", "content": "hi"}]}, 400, "invalid_value", "messages[0].role"),
    ("content wrong type", {"messages": [{"role": "user", "content": 5}]}, 400, "invalid_type", "messages[0].content"),
    ("unknown part type", {"messages": _msg({"type": "audio"})}, 400, "invalid_value", "messages[0].content[0].type"),
    ("temperature wrong type", {"messages": _msg(), "temperature": "hot"}, 400, "invalid_type", "temperature"),
    ("temperature out of range", {"messages": _msg(), "temperature": -1}, 400, "invalid_value", "temperature"),
    ("max_tokens wrong type", {"messages": _msg(), "max_tokens": "5"}, 400, "invalid_type", "max_tokens"),
    ("max_tokens zero", {"messages": _msg(), "max_tokens": 0}, 400, "invalid_value", "max_tokens"),
    ("stream wrong type", {"messages": _msg(), "stream": "yes"}, 400, "invalid_type", "stream"),
    ("stop wrong type", {"messages": _msg(), "stop": 5}, 400, "invalid_type", "stop"),
    ("seed wrong type", {"messages": _msg(), "seed": 1.5}, 400, "invalid_type", "seed"),
    ("n > 1", {"messages": _msg(), "n": 2}, 400, "invalid_value", "n"),
    ("tools wrong shape", {"messages": _msg(), "tools": [{"type": "function"}]}, 400, "invalid_type", "tools[0]"),
    ("thinking flag wrong type", {"messages": _msg(), "chat_template_kwargs": {"enable_thinking": "yes"}}, 400,
     "invalid_type", "chat_template_kwargs.enable_thinking"),
    ("image not base64", {"messages": _msg(_image_part("data:image/png;base64,@@@not base64@@@"))}, 400,
     "invalid_image", "messages[0].content[0].image_url"),
    ("image bytes not an image", {"messages": _msg(_image_part("data:image/png;base64,"
                                                               + base64.b64encode(b"hello world").decode()))},
     400, "invalid_image", "messages[0].content[0].image_url"),
    ("image from a remote URL", {"messages": _msg(_image_part("http://example.com/a.png"))}, 400, "invalid_image",
     "messages[0].content[0].image_url"),
    ("unknown model", {"model": "gpt-4o", "messages": _msg()}, 404, "model_not_found", "model"),
    ("too many images", {"messages": _msg(*[_image_part(_png_url(c, (8, 8))) for c in ("red", "green", "blue")])},
     400, "too_many_images", "messages"),
    ("oversized body", {"messages": _msg({"type": "text", "text": "x" * (1 << 20)})}, 413, "body_too_large", None),
    # the default text limit: 4 characters per token of the tiny's 32,768-token context, checked before tokenizing
    ("text too long", {"messages": _msg({"type": "text", "text": "a" * (4 * 32768 + 1)})}, 400, "text_too_long",
     "messages"),
]


@pytest.mark.parametrize("name,body,status,code,param", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_openai_errors(tiny, name, body, status, code, param):
    r = _post(tiny, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["code"], err["param"]) == (code, param)
    assert err["message"] and "\n" not in err["message"]


def test_auth_route_and_protocol_errors_and_the_server_survives_them_all(tiny):
    assert _post(tiny, {"messages": _msg()}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.post(tiny.url + "/chat/completions", json={"messages": _msg()})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(tiny.url + "/models").status_code == 401
    assert _post(tiny, {"messages": _msg()}, path="/completions").status_code == 404
    r = httpx.put(tiny.url + "/chat/completions", content=b"{}")
    assert r.status_code == 501 and "error" in r.json()
    with socket.create_connection(("127.0.0.1", int(tiny.root.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")  # e.g. a TLS client on a plain port
        assert raw.recv(200).startswith(b"HTTP/1.1 400")
    assert tiny.alive()
    ok = _post(tiny, {"messages": _msg(), "max_tokens": 2})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]


def test_client_resets_and_protocol_errors_leave_no_traceback_in_the_servers_log(tiny):
    port = int(tiny.root.rsplit(":", 1)[1])
    body = json.dumps({"messages": _msg(), "max_tokens": 64, "stream": True}).encode()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    for cut in (head[:20], head, head + body[:5], head + body):  # mid-header, mid-body, mid-stream
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(cut)
        if cut.endswith(body):
            sock.recv(100)  # the stream has started
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        sock.close()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert raw.recv(200).startswith(b"HTTP/1.1 400")
    ok = _post(tiny, {"messages": _msg(), "max_tokens": 2})
    assert ok.status_code == 200 and tiny.alive()
    assert "Traceback" not in tiny.stderr(), tiny.stderr()[-3000:]


def test_non_loopback_host_without_api_key_is_refused(tmp_path):
    proc = subprocess.run([VISAGENT, "serve", "--model", "tiny", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "non-loopback host '0.0.0.0'" in lines[0] and "--api-key" in lines[0]


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.9.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("::")


# ---------------------------------------------------------------- parsing, sessions, cancellation (scripted)

def test_tool_calls_and_reasoning_are_parsed_for_the_openai_client(scripted):
    server, _ = scripted(lambda m, c: "Looking for OK.</think>\n\n" + CALL_XML)
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
    kwargs = dict(model="scripted", messages=[{"role": "user", "content": "click OK"}], tools=TOOLS,
                  extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    full = client.chat.completions.create(**kwargs)
    message = full.choices[0].message
    assert full.choices[0].finish_reason == "tool_calls"
    assert message.content == "Clicking OK."
    assert message.reasoning_content == "Looking for OK."
    assert message.tool_calls[0].function.name == "computer_use"
    assert json.loads(message.tool_calls[0].function.arguments) == {"action": "left_click", "coordinate": [500, 300]}

    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Looking for OK."
    assert "".join(d.content or "" for d in deltas).strip() == "Clicking OK."  # the call's XML is not streamed
    calls = [tc for d in deltas for tc in d.tool_calls or []]
    assert len(calls) == 1 and json.loads(calls[0].function.arguments)["coordinate"] == [500, 300]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_served_models_screenshot_window_reaches_a_visagent_client(scripted):
    """A checkpoint trained on N screenshots per prompt says so in /v1/models; visagent's remote engine takes it,
    so an agent driving the served model keeps to it as it would in process (visagent.loop.prompting.history_window)."""
    import dataclasses

    from engine.remote import RemoteEngine

    server, engine = scripted()
    assert RemoteEngine(server.url).info.history_images is None
    engine.info = dataclasses.replace(engine.info, history_images=2)
    assert RemoteEngine(server.url).info.history_images == 2


def test_tool_choice_none_leaves_the_call_as_text(scripted):
    server, _ = scripted()
    r = httpx.post(server.url + "/chat/completions", json={"messages": _msg(), "tools": TOOLS, "tool_choice": "none"})
    message = r.json()["choices"][0]["message"]
    assert "tool_calls" not in message and "<tool_call>" in message["content"]


@pytest.mark.parametrize("where", ["body", "header", "user"])
def test_session_id_reaches_the_engine(scripted, where):
    server, engine = scripted()
    body: dict = {"messages": _msg()}
    headers = {}
    if where == "body":
        body["session_id"] = "s-1"
    elif where == "header":
        headers["X-Session-Id"] = "s-1"
    else:
        body["user"] = "s-1"
    assert httpx.post(server.url + "/chat/completions", json=body, headers=headers).status_code == 200
    assert engine.calls[-1]["session_id"] == "s-1"


def test_messages_reach_the_engine_converted(scripted):
    server, engine = scripted()
    body = {"messages": [
        {"role": "user", "content": [_image_part(_png_url("green", (30, 20))), {"type": "text", "text": "go"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "computer_use", "arguments": '{"action": "wait"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"}], "max_tokens": 9, "seed": 3, "stop": ["X"]}
    assert httpx.post(server.url + "/chat/completions", json=body).status_code == 200
    call = engine.calls[-1]
    image = call["messages"][0]["content"][0]["image"]
    assert image.size == (30, 20) and image.getpixel((5, 5)) == (0, 128, 0)
    assert call["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"action": "wait"}
    assert call["messages"][2] == {"role": "tool", "content": "done"}
    assert (call["config"].max_new_tokens, call["config"].seed, call["config"].stop) == (9, 3, ("X",))


def test_concurrent_requests_never_overlap_in_the_engine(scripted):
    server, engine = scripted(lambda m, c: m[-1]["content"] * 3, delay_s=0.002)

    def ask(i: int) -> str:
        r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": f"<{i}>"}]},
                       timeout=60)
        return r.json()["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(24)))
    assert answers == [f"<{i}>" * 3 for i in range(24)]
    assert engine.max_active == 1


def _wait_for(predicate, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_streaming_client_that_disconnects_cancels_its_generation(scripted):
    server, engine = scripted(lambda m, c: "word " * 2000, delay_s=0.01)  # ~20 s if never cancelled
    with httpx.stream("POST", server.url + "/chat/completions", json={"messages": _msg(), "stream": True}) as r:
        for line in r.iter_lines():
            if '"content": "word' in line:
                break  # leave after the first real piece
    assert _wait_for(lambda: engine.calls and engine.calls[-1]["cancelled"])


def test_a_waiting_client_that_gives_up_cancels_its_generation(scripted):
    server, engine = scripted(lambda m, c: "ok" if m[-1]["content"] == "quick" else "word " * 2000, delay_s=0.01)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/chat/completions", json={"messages": _msg()}, timeout=httpx.Timeout(10, read=0.5))
    assert _wait_for(lambda: engine.calls and engine.calls[-1]["cancelled"])
    ok = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "quick"}]},
                    timeout=60)
    assert ok.json()["choices"][0]["message"]["content"] == "ok"  # the worker is free again


def _failing(exc: Exception):
    def reply(messages, config):
        if messages[-1]["content"] == "fail":
            raise exc
        return "fine"
    return reply


@pytest.mark.parametrize("exc,status,code", [
    (EngineError("the prompt is 9000 tokens, the model's context is 8192"), 400, "engine_error"),
    (RuntimeError("a bug"), 500, None),
])
def test_engine_failures_become_error_bodies_and_the_worker_lives_on(scripted, exc, status, code):
    server, _ = scripted(_failing(exc))
    url = server.url + "/chat/completions"
    fail = {"messages": [{"role": "user", "content": "fail"}]}
    r = httpx.post(url, json=fail)
    assert r.status_code == status and r.json()["error"]["code"] == code
    with httpx.stream("POST", url, json={**fail, "stream": True}) as s:
        events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["message"]
    ok = httpx.post(url, json={"messages": [{"role": "user", "content": "again"}]})
    assert ok.json()["choices"][0]["message"]["content"] == "fine"


def test_the_agents_history_shape_with_a_screenshot_in_a_tool_result_is_rendered(tiny):
    # The agent sends each screenshot after an action inside the role "tool" message: the server must take
    # it and the tiny chat template must render it as image tokens (not drop it, not refuse it).
    from engine.api import GenerationConfig
    from engine.remote import RemoteEngine

    shot = Image.new("RGB", (64, 64), "blue")
    head = [{"role": "user", "content": [{"type": "image", "image": shot}, {"type": "text", "text": "click OK"}]},
            {"role": "assistant", "content": CALL_XML}]

    def prompt_tokens(tool_content) -> int:
        engine = RemoteEngine(tiny.url, api_key=KEY, tool_images="tool")
        try:
            result = engine.generate([*head, {"role": "tool", "content": tool_content}], tools=TOOLS,
                                     config=GenerationConfig(max_new_tokens=2))
        finally:
            engine.close()
        return result.prompt_tokens

    with_image = prompt_tokens([{"type": "image", "image": shot}, {"type": "text", "text": "the screen changed"}])
    text_only = prompt_tokens("the screen changed")
    assert with_image - text_only >= 4  # 64x64 → at least (64/32)^2 visual tokens plus the vision markers
