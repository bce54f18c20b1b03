"""Token ids → streamed deltas (engine.text_stream.TextStream) with the tiny checkpoint's real tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from engine import tiny_checkpoint_path
from engine.api import ThinkingSplitter
from engine.text_stream import TextStream


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(tiny_checkpoint_path()))


def _stream(tokenizer, text, *, thinking_open, stop=()):
    deltas = []
    stream = TextStream(tokenizer, stop, ThinkingSplitter(thinking_open), deltas.append)
    stopped = False
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        if stream.push(token):
            stopped = True
            break
    return stream.finish(), deltas, stopped


def test_thinking_then_answer_when_the_prompt_opened_think(tokenizer):
    completion = "The OK button is blue.\n</think>\n\n<tool_call>\n<function=computer_use>\n</function>\n</tool_call>"
    (text, thinking, answer), deltas, _ = _stream(tokenizer, completion, thinking_open=True)
    assert text == completion
    assert thinking == "The OK button is blue."
    assert answer == "<tool_call>\n<function=computer_use>\n</function>\n</tool_call>"
    kinds = [d.kind for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k == "answer")  # all thinking first, then all answer
    assert "</think>" not in "".join(d.text for d in deltas)


def test_everything_is_answer_when_thinking_is_off(tokenizer):
    (_, thinking, answer), deltas, _ = _stream(tokenizer, "Done. The answer is 42.", thinking_open=False)
    assert thinking == "" and answer == "Done. The answer is 42."
    assert {d.kind for d in deltas} == {"answer"}


def test_stop_string_spanning_tokens_is_never_streamed(tokenizer):
    (text, _, answer), deltas, stopped = _stream(
        tokenizer, "click here</tool_call> and more text", thinking_open=False, stop=("</tool_", "never"))
    assert stopped
    assert text == "click here" == answer
    assert "".join(d.text for d in deltas) == "click here"


def test_multibyte_characters_are_streamed_whole(tokenizer):
    (text, _, _), deltas, _ = _stream(tokenizer, "Speichern ✓ — Größe", thinking_open=False)
    assert text == "Speichern ✓ — Größe"
    assert all("\ufffd" not in d.text for d in deltas)
    assert "".join(d.text for d in deltas) == text
