"""Prompt building: Qwen turn layout, the K-image history window with one-line summaries, append-only mode,
and what the loop actually sends (tools per platform, session ids)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.agent_helpers import DONE, sim, texts_of, xml
from visagent.core.actions import Action
from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.prompting import ModelTurn, StepMemory, build_messages, count_images, system_prompt
from visagent.sim.scenarios import load_scenarios
from visagent.loop.scripted import ScriptedEngine


def shot(n: int) -> Image.Image:
    return Image.new("RGB", (64, 40), (n, n, n))


def history(n: int) -> list[StepMemory]:
    return [StepMemory(i, shot(i), ModelTurn(f"<tool_call>call {i}</tool_call>"),
                       actions=[Action("left_click", coordinate=(i, i), space="norm1000")], result=f"result {i}")
            for i in range(1, n + 1)]


def images_in(messages) -> list[int]:
    """Which screenshots (by their gray level) the messages carry, in order."""
    out = []
    for m in messages:
        if isinstance(m["content"], list):
            out += [p["image"].getpixel((0, 0))[0] for p in m["content"] if p["type"] == "image"]
    return out


def test_first_step_is_system_then_task_with_the_screenshot():
    msgs = build_messages("Turn on dark mode", [], shot(1), platform="desktop", space="norm1000")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == system_prompt("desktop") and "computer_use" in msgs[0]["content"]
    assert "Task: Turn on dark mode" in texts_of(msgs[1:])
    assert images_in(msgs) == [1]


def test_phone_gets_its_own_instructions():
    assert "mobile_use" in system_prompt("phone") and "mobile_use" not in system_prompt("desktop")


def test_window_keeps_last_k_screenshots_and_summarises_older_steps():
    msgs = build_messages("task", history(6), shot(7), platform="desktop", space="norm1000", history_images=3)
    assert images_in(msgs) == [5, 6, 7]
    assert count_images(msgs) == 3
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    first_user = texts_of([msgs[1]])
    for i in range(1, 5):
        assert f"Step {i}: left_click [{i}, {i}] -> result {i}" in first_user
    assert "Step 5" not in first_user
    assert msgs[2]["content"] == "<tool_call>call 5</tool_call>"
    assert texts_of([msgs[3]]) == "result 5" and texts_of([msgs[5]]) == "result 6"


def test_short_history_is_sent_whole():
    msgs = build_messages("task", history(2), shot(3), platform="desktop", space="norm1000", history_images=4)
    assert images_in(msgs) == [1, 2, 3]
    assert "Earlier steps" not in texts_of(msgs)


def test_append_only_keeps_every_turn_so_each_prompt_extends_the_last():
    a = build_messages("task", history(5), shot(6), platform="desktop", space="norm1000", history_images=2,
                       append_only=True)
    b = build_messages("task", history(6), shot(7), platform="desktop", space="norm1000", history_images=2,
                       append_only=True)
    assert images_in(b) == [1, 2, 3, 4, 5, 6, 7]
    assert b[:len(a)] == a  # same turns, same content: an engine's cache of `a` is a prefix of `b`


def test_feedback_goes_with_the_current_screenshot():
    msgs = build_messages("task", history(1), shot(2), platform="desktop", space="norm1000",
                          feedback="Your previous answer could not be used")
    assert msgs[-1]["role"] == "tool"
    assert "could not be used" in texts_of(msgs[-1:]) and images_in(msgs[-1:]) == [2]


def test_bad_history_images_is_rejected():
    with pytest.raises(ValueError, match="history_images"):
        build_messages("t", [], shot(1), platform="desktop", space="norm1000", history_images=0)


def test_loop_sends_k_images_and_summaries(tmp_path):
    _, executor = sim()
    outputs = [xml("left_click", coordinate=(100 + 100 * i, 950)) for i in range(5)] + [DONE]
    engine = ScriptedEngine(outputs)
    Agent(engine, executor, AgentConfig(history_images=2), trace_root=tmp_path).run("task")
    last = engine.calls[-1]["messages"]
    assert count_images(last) == 2
    assert "Step 1: left_click [100, 950]" in texts_of(last[:2])
    assert all(c["session_id"] is None for c in engine.calls)


def test_append_only_loop_uses_the_run_id_as_session(tmp_path):
    _, executor = sim()
    engine = ScriptedEngine([xml("left_click", coordinate=(100, 950)), xml("left_click", coordinate=(300, 950)), DONE])
    agent = Agent(engine, executor, AgentConfig(append_only=True, history_images=1), trace_root=tmp_path)
    agent.run("task")
    assert {c["session_id"] for c in engine.calls} == {agent.run_id}
    first, second, third = (c["messages"] for c in engine.calls)
    assert second[:len(first)] == first and third[:len(second)] == second
    assert count_images(third) == 3


def test_phone_scenario_gets_the_mobile_tool(tmp_path):
    phone = [s for s in load_scenarios() if s.platform == "phone"]
    if not phone:
        pytest.fail("no phone scenario in scenarios/; the sim scenarios must cover the phone")
    _, executor = sim(phone[0].id)
    engine = ScriptedEngine([DONE])
    Agent(engine, executor, trace_root=tmp_path).run("task")
    assert engine.calls[0]["tools"][0]["function"]["name"] == "mobile_use"
    assert "mobile_use" in engine.calls[0]["messages"][0]["content"]


def test_compact_profile_engine_gets_the_compact_prompt_and_tool(tmp_path):
    """A checkpoint trained on the compact prompt (engine.info.prompt_profile) is prompted with it, and the
    trace says which profile was used."""
    import dataclasses
    import json

    from visagent.core.schemas import tool_for

    _, executor = sim("desktop-settings-wifi-off")
    engine = ScriptedEngine([DONE])
    engine.info = dataclasses.replace(engine.info, prompt_profile="compact")
    result = Agent(engine, executor, trace_root=tmp_path).run("task")
    call = engine.calls[0]
    assert call["messages"][0]["content"] == system_prompt("desktop", "compact")
    assert call["tools"][0] == tool_for("desktop", "norm1000", 1, 1, "compact")
    meta = json.loads((tmp_path / result.run_id / "meta.json").read_text())
    assert meta["model"]["prompt_profile"] == "compact"


def test_compact_system_prompt_is_short_and_names_the_tool():
    for platform, tool in (("desktop", "computer_use"), ("phone", "mobile_use")):
        compact, full = system_prompt(platform, "compact"), system_prompt(platform)
        assert tool in compact and len(compact) < len(full) / 2
    with pytest.raises(Exception, match="compact"):
        build_messages("t", [], shot(1), platform="desktop", space="norm1000", profile="tiny")


def test_task_first_profile_puts_each_turns_text_before_its_screenshot():
    """"compact-task-first": same system prompt and turns as "compact", each turn's text before its image (so
    the image's tokens can attend to the task); "compact" keeps the image first."""
    args = ("Click the 4 button", history(2), shot(9))
    compact = build_messages(*args, platform="desktop", space="norm1000", profile="compact")
    first = build_messages(*args, platform="desktop", space="norm1000", profile="compact-task-first")
    assert first[0] == compact[0] and [m["role"] for m in first] == [m["role"] for m in compact]
    for a, b in zip(compact[1:], first[1:]):
        if isinstance(a["content"], list):
            assert [p["type"] for p in a["content"]] == ["image", "text"]
            assert [p["type"] for p in b["content"]] == ["text", "image"]
            assert list(reversed(a["content"])) == b["content"]
        else:
            assert a == b


@pytest.mark.parametrize("profile", ["compact", "compact-task-first"])
def test_compact_profiles_write_the_task_as_a_sentence_and_the_full_prompt_keeps_it(profile):
    def task_line(messages):
        return next(line for line in texts_of(messages[1:]).splitlines() if line.startswith("Task:"))

    lower = build_messages("click the Save button", [], shot(1), platform="desktop", space="norm1000",
                           profile=profile)
    written = build_messages("Click the Save button.", [], shot(1), platform="desktop", space="norm1000",
                             profile=profile)
    assert task_line(lower) == task_line(written) == "Task: Click the Save button."
    asked = build_messages("Is it on?", [], shot(1), platform="desktop", space="norm1000", profile=profile)
    assert task_line(asked) == "Task: Is it on?"
    full = build_messages("click the Save button", [], shot(1), platform="desktop", space="norm1000")
    assert task_line(full) == "Task: click the Save button"


def test_record_messages_get_their_images_opened_and_a_missing_one_is_named(tmp_path):
    """visagent.loop.prompting.with_images: what the trainer and `eval --per-step` send an engine from a record."""
    import pytest
    from PIL import Image

    from visagent.core.errors import ConfigError
    from visagent.loop.prompting import with_images

    Image.new("RGB", (8, 6), "red").save(tmp_path / "a.png")
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "image": "a.png"}]},
                {"role": "tool", "content": [{"type": "image", "image": str(tmp_path / "a.png")}]}]
    opened = with_images(messages, tmp_path)
    assert opened[0]["content"][0] == {"type": "text", "text": "hi"}
    assert opened[0]["content"][1]["image"].size == (8, 6) and opened[1]["content"][0]["image"].mode == "RGB"
    assert messages[0]["content"][1]["image"] == "a.png"  # the record itself is left as it was
    with pytest.raises(ConfigError, match="b.png is missing"):
        with_images([{"role": "user", "content": [{"type": "image", "image": "b.png"}]}], tmp_path)


def test_a_turn_is_sent_as_produced_never_with_its_call_twice():
    from engine.api import GenerationResult
    from engine.remote_result import assemble_result

    calls = [{"id": "c1", "type": "function", "function": {"name": "computer_use", "arguments":
                                                           {"action": "left_click", "coordinate": [5, 6]}}}]
    structured = assemble_result("look", "Clicking.", calls, {"finish_reason": "tool_calls"}, 0.0)
    assert "<tool_call>" in structured.answer  # text parsers still see the call
    turn = ModelTurn.from_result(structured)
    assert turn == ModelTurn("Clicking.", "look", calls)
    assert turn.message(thinking=True) == {"role": "assistant", "content": "Clicking.", "tool_calls": calls,
                                           "reasoning_content": "look"}
    assert "reasoning_content" not in turn.message(thinking=False)
    text = GenerationResult(text="<think>\nhm\n</think>\n\n<tool_call>x</tool_call>", thinking="hm",
                            answer="<tool_call>x</tool_call>", finish_reason="stop")
    assert ModelTurn.from_result(text).message() == {"role": "assistant", "content": "<tool_call>x</tool_call>"}


def test_a_turn_round_trips_through_the_trace_and_reads_old_traces():
    calls = [{"id": "c1", "type": "function", "function": {"name": "computer_use", "arguments": {"action": "wait"}}}]
    turn = ModelTurn("Waiting.", "why", calls)
    assert ModelTurn.from_record(turn.to_record()) == turn
    # written before `content` was recorded: the prose was `answer` up to the call written back as XML
    old = {"raw": "...", "thinking": "why", "answer": "Waiting.\n<tool_call>\n<function=computer_use>...",
           "tool_calls": calls}
    assert ModelTurn.from_record(old) == turn
    assert ModelTurn.from_record({"answer": "<tool_call>x</tool_call>"}) == ModelTurn("<tool_call>x</tool_call>")
