"""RemoteEngine over real loopback HTTP: against `visagent serve --model tiny`, and against a misbehaving
server of the tests' own (tests/fixtures/openai_stub.py) for retries, timeouts, errors and stream shapes."""

from __future__ import annotations

import base64
import io
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from engine.api import Delta, GenerationConfig
from engine.errors import EngineError, RemoteError
from engine.remote import RemoteEngine, normalize_base_url
from tests.fixtures.openai_stub import OpenAIStub, Reply, chat_body, delta_chunk

TOOLS = [{"type": "function", "function": {"name": "computer_use", "description": "Use the mouse and keyboard.",
                                           "parameters": {"type": "object", "properties": {
                                               "action": {"type": "string"}, "coordinate": {"type": "array"}},
                                               "required": ["action"]}}}]


def _engine(stub: OpenAIStub, **kw) -> RemoteEngine:
    kw.setdefault("model_name", "stub")
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("provider", "generic")  # these scripts test HTTP handling; detection: tests/test_providers.py
    return RemoteEngine(stub.url, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user(text: str, *images: Image.Image) -> list[dict]:
    return [{"role": "user", "content": [*({"type": "image", "image": im} for im in images), {"type": "text", "text": text}]}]


# ---------------------------------------------------------------- what goes on the wire

def test_request_carries_images_tools_sampling_thinking_key_and_session(stub_factory, monkeypatch):
    monkeypatch.setenv("VISAGENT_API_KEY", "sekrit")
    stub = stub_factory([Reply(body=chat_body("done"))])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8))
    cfg = GenerationConfig(max_new_tokens=7, temperature=0.7, top_p=0.9, top_k=20, repetition_penalty=1.05,
                           presence_penalty=1.5, seed=42, stop=("STOP",), enable_thinking=True)
    history = [*_user("click OK", image),
               {"role": "assistant", "content": "", "tool_calls": [
                   {"type": "function", "function": {"name": "computer_use", "arguments": {"action": "wait"}}}]},
               {"role": "tool", "content": "waited"}]
    result = _engine(stub).generate(history, tools=TOOLS, config=cfg, session_id="conv-1")
    assert result.answer == "done"
    req = stub.requests[-1]
    body = req["json"]
    assert req["headers"]["Authorization"] == "Bearer sekrit"
    assert req["headers"]["X-Session-Id"] == "conv-1"
    url = body["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(image))  # lossless, exact pixels
    call = body["messages"][1]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"action": "wait"}'
    assert body["messages"][2]["tool_call_id"] == call["id"]
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"], body["repetition_penalty"],
            body["presence_penalty"], body["seed"], body["stop"]) == (7, 0.7, 0.9, 20, 1.05, 1.5, 42, ["STOP"])
    assert body["stream"] is False


def _agent_history(image: Image.Image) -> list[dict]:
    """The agent's shape: the first screenshot with the task, later ones in the tool results."""
    return [*_user("click OK", image),
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "computer_use", "arguments": {"action": "wait"}}}]},
            {"role": "tool", "content": [{"type": "image", "image": image}, {"type": "text", "text": "waited"}]}]


def _text_only_tools(record) -> Reply:
    """A server like vLLM with some model families: images in a tool message are refused with a 400."""
    for msg in (record["json"] or {}).get("messages", []):
        if msg["role"] == "tool" and not isinstance(msg["content"], str):
            return Reply(status=400, body={"error": {"message": "Tool message content only supports text content",
                                                     "type": "BadRequestError", "param": None, "code": 400}})
    return Reply(body=chat_body("done"))


def test_screenshots_of_tool_results_move_to_user_messages_when_a_server_refuses_them(stub_factory):
    stub = stub_factory(_text_only_tools)
    engine = _engine(stub)
    image = Image.new("RGB", (40, 30), "red")
    assert engine.generate(_agent_history(image)).answer == "done"
    refused, accepted = (r["json"]["messages"] for r in stub.requests)
    assert [m["role"] for m in refused] == ["user", "assistant", "tool"]
    assert [m["role"] for m in accepted] == ["user", "assistant", "tool", "user"]
    assert accepted[2]["content"] == "waited" and accepted[2]["tool_call_id"] == accepted[1]["tool_calls"][0]["id"]
    assert [p["type"] for p in accepted[3]["content"]] == ["image_url"]
    assert accepted[3]["content"][0] == refused[2]["content"][0]  # the same screenshot, only moved
    engine.generate(_agent_history(image))
    assert len(stub.requests) == 3  # learned: the next call goes straight to user messages


def test_tool_images_tool_keeps_them_in_place_and_reports_the_refusal(stub_factory):
    stub = stub_factory(_text_only_tools)
    with pytest.raises(RemoteError, match="Tool message content only supports text"):
        _engine(stub, tool_images="tool").generate(_agent_history(Image.new("RGB", (40, 30))))
    assert len(stub.requests) == 1


def test_tool_images_user_never_puts_images_in_tool_messages(stub_factory):
    stub = stub_factory(_text_only_tools)
    assert _engine(stub, tool_images="user").generate(_agent_history(Image.new("RGB", (40, 30)))).answer == "done"
    assert len(stub.requests) == 1


def test_model_name_comes_from_the_single_listed_model_and_several_need_a_choice(stub_factory):
    one = stub_factory([Reply(body={"object": "list", "data": [{"id": "Qwen/Qwen3.5-35B-A3B", "max_model_len": 32768}]})])
    engine = RemoteEngine(one.url + "/")
    assert engine.model_name == "Qwen/Qwen3.5-35B-A3B"
    assert engine.info.context_length == 32768 and engine.info.coord_space == "norm1000"
    two = stub_factory([Reply(body={"object": "list", "data": [{"id": "a"}, {"id": "b"}]})])
    with pytest.raises(EngineError, match=r"serves 2 models \(a, b\); choose one with --model-name"):
        RemoteEngine(two.url)


@pytest.mark.parametrize("name,space,factor", [
    ("Qwen/Qwen3.5-35B-A3B", "norm1000", 32), ("qwen3.5-122b", "norm1000", 32),
    ("Qwen/Qwen2.5-VL-72B-Instruct", "resized", 28), ("ByteDance-Seed/UI-TARS-1.5-7B", "resized", 28),
])
def test_coordinate_space_follows_the_served_model(stub_factory, name, space, factor):
    stub = stub_factory([Reply(body=chat_body("x"))])
    info = RemoteEngine(stub.url, model_name=name).info
    assert (info.coord_space, info.vision.factor) == (space, factor)
    assert RemoteEngine(stub.url, model_name=name, coord_space="norm1000").info.coord_space == "norm1000"


def test_base_url_normalisation():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://h/v1/chat/completions") == "https://h/v1"
    with pytest.raises(EngineError, match="not an http"):
        normalize_base_url("ftp://h")


@pytest.mark.parametrize("url", ["http://:abc/v1", "http://127.0.0.1:abc/v1", "http://127.0.0.1:99999/v1"])
def test_a_malformed_server_url_is_one_engine_error(url):
    # httpx would raise InvalidURL from deep inside the first request: a traceback instead of one line
    with pytest.raises(EngineError, match="not a valid server URL"):
        RemoteEngine(url, model_name="m")


# ---------------------------------------------------------------- answers: structured and textual tool calls

def test_structured_tool_calls_are_returned_and_written_back_as_text(stub_factory):
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "computer_use", "arguments": '{"action": "left_click", "coordinate": [10, 20]}'}}]
    stub = stub_factory([Reply(body=chat_body(None, reasoning="find OK", tool_calls=calls, finish="tool_calls",
                                              usage={"prompt_tokens": 50, "completion_tokens": 9,
                                                     "prompt_tokens_details": {"cached_tokens": 32}}))])
    result = _engine(stub).generate(_user("go"), tools=TOOLS)
    assert result.tool_calls == [{"id": "call_1", "type": "function", "function": {
        "name": "computer_use", "arguments": {"action": "left_click", "coordinate": [10, 20]}}}]
    assert result.thinking == "find OK"
    assert "<function=computer_use>" in result.answer and "[10, 20]" in result.answer
    assert (result.prompt_tokens, result.generated_tokens, result.cached_tokens) == (50, 9, 32)
    assert result.finish_reason == "stop"


def test_raw_tool_call_text_in_content_stays_in_the_answer(stub_factory):
    text = "<tool_call>\n<function=computer_use>\n<parameter=action>\nwait\n</parameter>\n</function>\n</tool_call>"
    stub = stub_factory([Reply(body=chat_body(text))])
    result = _engine(stub).generate(_user("go"), tools=TOOLS)
    assert result.answer == text and result.tool_calls is None


def test_stream_reasoning_content_and_fragmented_tool_call_deltas(stub_factory):
    chunks = [delta_chunk({"role": "assistant", "content": ""}),
              delta_chunk({"reasoning_content": "the OK "}), delta_chunk({"reasoning_content": "button"}),
              delta_chunk({"content": "Clicking."}),
              delta_chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                           "function": {"name": "computer_use", "arguments": '{"action": '}}]}),
              delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"left_click"}'}}]}),
              delta_chunk({}, "tool_calls"),
              {"id": "x", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 5, "completion_tokens": 4}}]
    stub = stub_factory([Reply(chunks=chunks)])
    deltas: list[Delta] = []
    result = _engine(stub).generate(_user("go"), tools=TOOLS, config=GenerationConfig(enable_thinking=True),
                                    on_delta=deltas.append)
    assert [d for d in deltas if d.kind == "thinking"] == [Delta("thinking", "the OK "), Delta("thinking", "button")]
    assert deltas[2] == Delta("answer", "Clicking.")
    assert "<parameter=action>\nleft_click" in deltas[-1].text
    assert result.thinking == "the OK button"
    assert result.tool_calls[0]["function"] == {"name": "computer_use", "arguments": {"action": "left_click"}}
    assert stub.requests[-1]["json"]["stream"] is True
    assert stub.requests[-1]["json"]["stream_options"] == {"include_usage": True}
    assert (result.prompt_tokens, result.generated_tokens) == (5, 4)


def test_stream_without_reasoning_parser_splits_think_inside_content(stub_factory):
    chunks = [delta_chunk({"content": "I look"}), delta_chunk({"content": " around</th"}),
              delta_chunk({"content": "ink>\n\nDone."}), delta_chunk({}, "length")]
    stub = stub_factory([Reply(chunks=chunks)])
    deltas: list[Delta] = []
    result = _engine(stub).generate(_user("go"), config=GenerationConfig(enable_thinking=True), on_delta=deltas.append)
    assert "".join(d.text for d in deltas if d.kind == "thinking") == "I look around"
    assert "".join(d.text for d in deltas if d.kind == "answer").strip() == "Done."
    assert (result.thinking, result.answer, result.finish_reason) == ("I look around", "Done.", "length")


def test_cancel_closes_a_stalled_stream(stub_factory):
    stub = stub_factory([Reply(chunks=[delta_chunk({"content": "first"}), delta_chunk({"content": "never"})],
                               stall_s=60)])
    cancel = threading.Event()
    deltas: list[Delta] = []

    def on_delta(delta: Delta) -> None:
        deltas.append(delta)
        cancel.set()  # stop as soon as the first piece arrived; the server then stalls for a minute

    result = _engine(stub).generate(_user("go"), on_delta=on_delta, cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert result.answer == "first"
    assert stub.disconnected.wait(10), "the server never saw the client hang up"


def test_an_already_set_cancel_sends_nothing(stub_factory):
    stub = stub_factory([Reply(body=chat_body("x"))])
    cancel = threading.Event()
    cancel.set()
    assert _engine(stub).generate(_user("go"), cancel=cancel).finish_reason == "cancelled"
    assert stub.requests == []


# ---------------------------------------------------------------- retries, backoff, timeouts, errors

def test_429_and_5xx_are_retried_then_succeed(stub_factory):
    stub = stub_factory([Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
                         Reply(503, {"message": "warming up"}), Reply(body=chat_body("finally"))])
    result = _engine(stub, retries=3).generate(_user("go"))
    assert result.answer == "finally"
    assert len(stub.requests) == 3


def test_persistent_5xx_gives_up_after_the_retries(stub_factory):
    stub = stub_factory([Reply(500, {"error": {"message": "boom"}})])
    with pytest.raises(RemoteError, match=r"failed after 3 attempts \(HTTP 500: boom\)"):
        _engine(stub, retries=2).generate(_user("go"))
    assert len(stub.requests) == 3


def test_the_backoff_doubles_and_a_retry_after_header_is_honoured_up_to_30_s(stub_factory):
    # the waits are recorded, not slept (RemoteEngine's `sleep`): the schedule itself is what is checked
    stub = stub_factory([Reply(503, {"message": "busy"}), Reply(503, {"message": "busy"}),
                         Reply(429, {"message": "later"}, headers={"Retry-After": "5"}),
                         Reply(429, {"message": "much later"}, headers={"Retry-After": "600"}),
                         Reply(body=chat_body("finally"))])
    waits: list[float] = []
    result = _engine(stub, retries=4, backoff_s=0.5, sleep=waits.append).generate(_user("go"))
    assert result.answer == "finally" and len(stub.requests) == 5
    assert waits == [0.5, 1.0, 5.0, 30.0]  # 0.5 * 2**n; Retry-After when longer, never past 30 s


def test_a_cancel_during_the_backoff_ends_the_request(stub_factory):
    import threading

    stub = stub_factory([Reply(503, {"message": "busy"})])
    cancel = threading.Event()
    result = _engine(stub, retries=3, sleep=lambda delay: cancel.set()).generate(_user("go"), cancel=cancel)
    assert result.finish_reason == "cancelled" and len(stub.requests) == 1  # no second attempt after the cancel


def test_connection_refused_is_retried_then_reported():
    engine = RemoteEngine(f"http://127.0.0.1:{_free_port()}/v1", model_name="m", retries=2, backoff_s=0.01)
    with pytest.raises(RemoteError, match=r"failed after 3 attempts \(ConnectError"):
        engine.generate(_user("go"))


def test_4xx_is_not_retried_and_says_what_the_server_said(stub_factory):
    stub = stub_factory([Reply(400, {"object": "error", "message": "This model's maximum context length is 4096",
                                     "type": "BadRequestError", "param": None, "code": 400})])
    with pytest.raises(RemoteError, match=r"HTTP 400\): This model's maximum context length is 4096"):
        _engine(stub).generate(_user("go"))
    assert len(stub.requests) == 1


def test_401_names_the_api_key(stub_factory):
    stub = stub_factory([Reply(401, {"error": {"message": "Unauthorized"}})])
    with pytest.raises(RemoteError, match="refused the API key.*VISAGENT_API_KEY"):
        _engine(stub).generate(_user("go"))


def test_vllm_image_limit_error_says_how_many_images_and_which_flag(stub_factory):
    stub = stub_factory([Reply(400, {"object": "error", "message": "At most 1 image(s) may be provided in one prompt.",
                                     "type": "BadRequestError", "param": None, "code": 400})])
    images = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    with pytest.raises(RemoteError) as info:
        _engine(stub).generate(_user("go", *images))
    message = str(info.value)
    assert "refused a request with 3 images" in message
    assert "--limit-mm-per-prompt '{\"image\": 3}'" in message
    assert "--limit-mm-data-per-request" in message


def test_client_side_max_images_is_checked_before_sending(stub_factory):
    stub = stub_factory([Reply(body=chat_body("x"))])
    with pytest.raises(EngineError, match="2 images but max_images is 1"):
        _engine(stub, max_images=1).generate(_user("go", Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))))
    assert stub.requests == []


def test_a_server_slower_than_the_timeout_is_an_engine_error(stub_factory):
    stub = stub_factory([Reply(body=chat_body("late"), delay_s=3)])
    with pytest.raises(EngineError, match="sent no answer within"):
        _engine(stub, timeout_s=0.3, retries=0).generate(_user("go"))


# ---------------------------------------------------------------- against `visagent serve --model tiny`

@pytest.fixture(scope="module")
def tiny_server(random_tiny):
    from tests.fixtures.serve import start_serve

    # a random-weight tiny served under the name "tiny": answers vary with the input (see random_tiny)
    server = start_serve("--model", str(random_tiny), "--model-name", "tiny")
    yield server
    assert server.stop() == 0, server.stderr()[-2000:]


@pytest.fixture(scope="module")
def tiny_local(random_tiny):
    from engine import load_engine

    engine = load_engine(str(random_tiny))
    yield engine
    engine.close()


def _screens() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)), Image.new("RGB", (128, 96), "white")]


def test_remote_answers_equal_the_in_process_engine_for_images_and_tools(tiny_server, tiny_local):
    remote = RemoteEngine(tiny_server.url)
    assert remote.model_name == "tiny"  # discovered from /v1/models
    cfg = GenerationConfig(max_new_tokens=5)
    cases = [(_user("Click OK.", image), None) for image in _screens()] + [(_user("Open the menu."), TOOLS)]
    local = [tiny_local.generate(m, tools=t, config=cfg) for m, t in cases]
    answers = [remote.generate(m, tools=t, config=cfg) for m, t in cases]
    assert [r.answer for r in answers] == [r.answer for r in local]
    assert len({r.answer for r in local}) == 3  # each image / the tools changed the output, so all of it went across
    assert [r.prompt_tokens for r in answers] == [r.prompt_tokens for r in local]
    assert all(r.finish_reason == "length" and r.generated_tokens == 5 for r in answers)


def test_remote_stream_equals_non_stream_and_reports_thinking(tiny_server, tiny_local):
    remote = RemoteEngine(tiny_server.url, model_name="tiny")
    messages = _user("Where is the search box?", _screens()[0])
    cfg = GenerationConfig(max_new_tokens=5, enable_thinking=True)
    deltas: list[Delta] = []
    streamed = remote.generate(messages, config=cfg, on_delta=deltas.append)
    plain = remote.generate(messages, config=cfg)
    local = tiny_local.generate(messages, config=cfg)
    assert (streamed.thinking, streamed.answer) == (plain.thinking, plain.answer) == (local.thinking, local.answer)
    assert "".join(d.text for d in deltas if d.kind == "thinking").strip() == local.thinking
    assert "".join(d.text for d in deltas if d.kind == "answer").strip() == local.answer
    assert streamed.prompt_tokens == local.prompt_tokens and streamed.generated_tokens == 5


def test_visagent_serve_image_limit_error_through_the_remote_engine(tiny_local):
    from engine.server import ChatServer

    limited = ChatServer(tiny_local, model_name="tiny", port=0, max_images=1).start()
    try:
        with pytest.raises(RemoteError, match=r"refused a request with 2 images.*--max-images 2"):
            RemoteEngine(limited.url).generate(_user("go", *_screens()))
    finally:
        limited.shutdown()


def test_verify_model_names_what_the_server_serves_and_tolerates_no_model_list(stub_factory):
    listed = stub_factory([Reply(body={"object": "list", "data": [{"id": "a"}, {"id": "b"}]})])
    _engine(listed, model_name="b").verify_model()
    with pytest.raises(EngineError, match=r"does not serve model 'c' \(it serves: a, b\)"):
        _engine(listed, model_name="c").verify_model()
    no_list = stub_factory([Reply(status=404, body={"error": {"message": "Not Found"}})])
    _engine(no_list, model_name="c").verify_model()  # a server without /models is not refused
