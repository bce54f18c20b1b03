"""The conversation a real Qwen3.5 sees: multi-step agent runs against a loopback server answering as vLLM with
Qwen's parsers does (tests/fixtures/vllm_like.py; parsers on and off, streamed and not, thinking on and off),
with every request rendered through the tiny checkpoint's chat template (which renders history as Qwen3.5's
does). Invariants on what visagent sends: each past action appears exactly once (as structured `tool_calls` or
as text in `content`, never both), past thinking goes back when thinking is on, and the training export of the
run carries the same turns. Also: the in-process engine's template receives past reasoning, and tool results
speak the model's coordinates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from engine import tiny_checkpoint_path
from engine.remote import RemoteEngine
from tests.agent_helpers import sim
from tests.fixtures.vllm_like import VllmLike, assistant_turns
from visagent.loop.agent import Agent, AgentConfig
from visagent.traces.export import export_records
from visagent.loop.prompting import ModelTurn, StepMemory, build_messages
from visagent.core.trace import read_trace

XS = [200, 400, 600, 800]  # the model's clicks (0..1000 grid), one per step, then terminate


@pytest.fixture(scope="module")
def render():
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint_path())

    def render(messages, tools=None, **kwargs):
        return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                             add_generation_prompt=True, **kwargs)
    return render


def thought(step: int) -> str:
    return f"Thought {step}: the control I need is at the bottom."


def call_text(step: int) -> str:
    """The call as the model writes it in Qwen3.5's format (written here by hand, not by visagent)."""
    if step > len(XS):
        return ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
                "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")
    return ("<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
            f"<parameter=coordinate>\n[{XS[step - 1]}, 950]\n</parameter>\n</function>\n</tool_call>")


def model(thinking: bool):
    """What the model generates after the generation prompt at each step (prose before the call on step 2)."""
    def generate(step: int, prompt: str) -> str:
        prose = "I will click the next control.\n\n" if step == 2 else ""
        head = f"{thought(step)}\n</think>\n\n" if thinking else ""
        return head + prose + call_text(step)
    return generate


def run(tmp_path: Path, render, *, thinking: bool, stream: bool, tool_parser: bool = True,
        reasoning_parser: bool = True, reads: str = "reasoning", answers_with: str = "reasoning",
        history_images: int = 8) -> tuple[VllmLike, Path]:
    server = VllmLike(model(thinking), render, tool_parser=tool_parser, reasoning_parser=reasoning_parser,
                      reads=reads, answers_with=answers_with)
    try:
        engine = RemoteEngine(server.url, model_name="Qwen/Qwen3.5-35B-A3B", backoff_s=0.01)
        _, executor = sim()
        agent = Agent(engine if stream else Unstreamed(engine), executor,
                      AgentConfig(thinking=thinking, history_images=history_images), trace_root=tmp_path)
        result = agent.run("Turn the Wi-Fi off")
        assert result.status == "success", result.reason
        assert len(server.prompts) == len(XS) + 1
        assert all(r["json"]["stream"] is stream for r in server.requests if r["path"].endswith("/completions"))
        return server, result.trace_dir
    finally:
        server.close()


class Unstreamed:
    """The remote engine called without a delta listener or cancel event, so it asks for one JSON answer (the
    agent always listens, so RemoteEngine streams under it)."""

    def __init__(self, engine: RemoteEngine) -> None:
        self.engine, self.info = engine, engine.info

    def generate(self, messages, **kwargs):
        kwargs.pop("on_delta", None)
        kwargs.pop("cancel", None)
        return self.engine.generate(messages, **kwargs)

    def close(self) -> None:
        self.engine.close()


def check_turns(prompt: str, past: int, *, thinking: bool) -> None:
    """The rendered prompt shows `past` assistant turns, each with exactly one call (its own click), and each
    turn's own thought when thinking is on (an empty thought when off)."""
    turns = assistant_turns(prompt)
    assert len(turns) == past
    for step, turn in enumerate(turns, 1):
        assert turn.count("<tool_call>") == 1 and turn.count("<function=computer_use>") == 1, turn
        assert f"[{XS[step - 1]}, 950]" in turn
        if thinking:
            assert turn.startswith(f"<think>\n{thought(step)}\n</think>\n\n"), turn
        else:
            assert turn.startswith("<think>\n\n</think>\n\n"), turn
    assert prompt.count("<function=computer_use>") == past  # nowhere else (the system turn shows a placeholder)


SERVERS = {
    # current vLLM with both parsers: structured calls, `reasoning` in answers, `reasoning` read back
    "vllm": dict(tool_parser=True, reasoning_parser=True, reads="reasoning", answers_with="reasoning"),
    # vLLM <= 0.10 / SGLang: `reasoning_content` both ways
    "vllm-0.10": dict(tool_parser=True, reasoning_parser=True, reads="reasoning_content",
                      answers_with="reasoning_content"),
    # no parsers: the XML call and the thought with </think> stay in content
    "no-parsers": dict(tool_parser=False, reasoning_parser=False),
    # a reasoning parser only: calls stay as text
    "reasoning-only": dict(tool_parser=False, reasoning_parser=True),
}


@pytest.mark.parametrize("server_kind", list(SERVERS))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("thinking", [False, True], ids=["no-think", "think"])
def test_each_past_action_appears_once_and_thinking_goes_back(tmp_path, render, server_kind, stream, thinking):
    kind = SERVERS[server_kind]
    server, _ = run(tmp_path, render, thinking=thinking, stream=stream, **kind)
    structured = kind["tool_parser"]
    for k, (request, prompt) in enumerate(zip([r for r in server.requests if r["path"].endswith("/completions")],
                                              server.prompts), 1):
        sent = [m for m in request["json"]["messages"] if m["role"] == "assistant"]
        assert len(sent) == k - 1
        for step, msg in enumerate(sent, 1):
            text = msg.get("content") or ""
            # the call travels once: as tool_calls when the server returned them, else as the model's text
            assert bool(msg.get("tool_calls")) == structured
            assert ("<tool_call>" in text) != structured
            if structured:
                assert len(msg["tool_calls"]) == 1
                assert json.loads(msg["tool_calls"][0]["function"]["arguments"])["coordinate"] == [XS[step - 1], 950]
                assert text.strip() == ("I will click the next control." if step == 2 else "")
            assert "</think>" not in text and "<think>" not in text
            if thinking:
                assert msg[kind.get("reads", "reasoning")].strip() == thought(step)
            else:
                assert "reasoning" not in msg and "reasoning_content" not in msg
        check_turns(prompt, k - 1, thinking=thinking)


def test_a_window_of_two_screenshots_shows_older_steps_once_as_summaries(tmp_path, render):
    server, _ = run(tmp_path, render, thinking=True, stream=False, history_images=2)
    last = server.prompts[-1]
    turns = assistant_turns(last)
    assert len(turns) == 1 and f"[{XS[-1]}, 950]" in turns[0] and turns[0].count("<tool_call>") == 1
    for x in XS[:-1]:  # steps before the window: one summary line each, no call
        assert last.count(f"left_click [{x}, 950]") == 1 and last.count(f"[{x}, 950]") == 1


@pytest.mark.parametrize("server_kind", ["vllm", "no-parsers"])
def test_a_five_step_export_renders_one_call_per_assistant_turn(tmp_path, render, server_kind):
    server, trace_dir = run(tmp_path / "runs", render, thinking=True, stream=True, **SERVERS[server_kind])
    records = list(export_records([trace_dir], relative_to=tmp_path))
    assert len(records) == len(XS) + 1
    for k, record in enumerate(records, 1):
        engine_side = [{**m, "content": [{"type": "image"} if p.get("type") == "image" else p for p in m["content"]]}
                       if isinstance(m["content"], list) else m for m in record["messages"]]
        prompt = render(engine_side, tools=record["tools"], enable_thinking=True)
        check_turns(prompt, k - 1, thinking=True)
        assert prompt == server.prompts[k - 1]  # the export rebuilds exactly what the server rendered
        assert record["target"].count("<tool_call>") == 1 and record["thinking"] == thought(k)


def test_the_in_process_engine_template_gets_past_reasoning():
    from engine.local import LocalEngine
    from PIL import Image

    engine = LocalEngine(tiny_checkpoint_path(), device="cpu")
    shot = Image.new("RGB", (64, 40), (9, 9, 9))
    history = [StepMemory(1, shot, ModelTurn(call_text(1), reasoning=thought(1)))]
    for thinking in (True, False):
        messages = build_messages("Turn the Wi-Fi off", history, shot, platform="desktop", space="norm1000",
                                  thinking=thinking)
        prompt = engine.render_prompt(messages, enable_thinking=thinking)
        turns = assistant_turns(prompt)
        assert len(turns) == 1 and turns[0].count("<tool_call>") == 1
        assert (f"<think>\n{thought(1)}\n</think>" in turns[0]) == thinking


def test_tool_results_speak_the_models_coordinates(tmp_path, render):
    """The sim runs at scale 2 (physical pixels twice the logical ones): a click the model wrote at [200, 950]
    lands on screen pixel (256, 760), which the executor reports (kept in the trace's result); the tool turn
    never shows screen pixels: the call in the model's own coordinates sits right before it."""
    server = VllmLike(model(False), render)
    try:
        engine = RemoteEngine(server.url, model_name="Qwen/Qwen3.5-35B-A3B", backoff_s=0.01)
        _, executor = sim(scale=2.0)
        result = Agent(engine, executor, AgentConfig(), trace_root=tmp_path).run("Turn the Wi-Fi off")
        assert result.status == "success", result.reason
    finally:
        server.close()
    steps = read_trace(result.trace_dir).steps
    screen = steps[0]["actions"][0]["coordinate"]
    assert [round(v) for v in screen] == [256, 760] and "256" in steps[0]["result"]["message"]
    assert steps[0]["tool_result"].startswith("Done.")
    responses = "".join(p.split("<tool_response>", 1)[1] for p in server.prompts[1:])
    assert "256" not in responses and "760" not in responses


def test_a_capped_scroll_is_told_to_the_model_and_recorded(tmp_path):
    from tests.agent_helpers import DONE, xml
    from visagent.core.actions import MAX_SCROLL_CLICKS
    from visagent.loop.scripted import ScriptedEngine

    _, executor = sim()
    engine = ScriptedEngine([xml("scroll", coordinate=(500, 500), pixels=-10**12), DONE])
    result = Agent(engine, executor, AgentConfig(), trace_root=tmp_path).run("Scroll down")
    assert result.status == "success", result.reason
    step = read_trace(result.trace_dir).steps[0]
    assert step["result"]["wheel_clicks"] == -MAX_SCROLL_CLICKS
    assert f"Scrolled {MAX_SCROLL_CLICKS} wheel clicks" in step["tool_result"]
    tool_turn = engine.calls[1]["messages"][-1]["content"]
    assert any(f"Scrolled {MAX_SCROLL_CLICKS} wheel clicks" in p.get("text", "") for p in tool_turn)


def test_the_wire_carries_past_thinking_under_both_names_and_the_server_reads_either():
    from engine.chat_protocol import parse_chat_request
    from engine.openai_wire import messages_to_wire

    turn = {"role": "assistant", "content": "", "reasoning_content": "why",
            "tool_calls": [{"type": "function", "function": {"name": "computer_use", "arguments": {"action": "wait"}}}]}
    wire = messages_to_wire([{"role": "user", "content": "go"}, turn])
    assert wire[1]["reasoning_content"] == wire[1]["reasoning"] == "why" and wire[1]["content"] is None
    assert "reasoning" not in messages_to_wire([{**turn, "reasoning_content": ""}])[0]
    for field in ("reasoning_content", "reasoning"):  # what `visagent serve` accepts from other clients
        back = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "go"},
                                                             {"role": "assistant", "content": "ok", field: "why"}]},
                                  served_model="m").messages
        assert back[1]["reasoning_content"] == "why"
