"""Safety policy: risky hotkeys, typed text and clicks while the thought mentions a risky word; secrets."""

from __future__ import annotations

import pytest

from visagent.actions import Action
from visagent.errors import ConfigError
from visagent.policy import SafetyPolicy, SecretVault, resolve_secrets, secret_names
from visagent.settings import SafetySettings


@pytest.fixture
def policy() -> SafetyPolicy:
    return SafetyPolicy(SafetySettings())


def click() -> Action:
    return Action("left_click", coordinate=(10, 10), space="screen")


@pytest.mark.parametrize("keys", [("ctrl", "alt", "delete"), ("Alt", "F4"), ("control", "alt", "del"),
                                  ("alt", "ctrl", "Delete")])
def test_risky_hotkeys_need_confirmation_in_any_order_or_spelling(policy, keys):
    decision = policy.check(Action("key", keys=keys))
    assert decision.verdict == "confirm"
    assert "hotkey" in decision.reason


@pytest.mark.parametrize("keys", [("ctrl", "c"), ("alt",), ("alt", "f5"), ("f4",)])
def test_ordinary_hotkeys_are_allowed(policy, keys):
    assert policy.check(Action("key", keys=keys)).verdict == "allow"


@pytest.mark.parametrize("text", ["sudo rm -rf /", "RM  -RF ~", "mkfs.ext4 /dev/sda", "dd if=/dev/zero of=x"])
def test_risky_typed_text_needs_confirmation(policy, text):
    decision = policy.check(Action("type", text=text))
    assert decision.verdict == "confirm"
    assert "pattern" in decision.reason


def test_harmless_text_is_allowed(policy):
    assert policy.check(Action("type", text="hello world; ls -la")).verdict == "allow"


@pytest.mark.parametrize("thought", ["I will click Send now", "Pay the invoice", "deleting the file",
                                     "Confirm the purchase"])
def test_click_while_thought_mentions_risky_word_needs_confirmation(policy, thought):
    decision = policy.check(click(), thought=thought)
    assert decision.verdict == "confirm"


@pytest.mark.parametrize("thought", ["open the display settings", "scroll down",
                                     ""])
def test_click_with_neutral_thought_is_allowed(policy, thought):
    assert policy.check(click(), thought=thought).verdict == "allow"


def test_risky_word_inside_the_tool_call_itself_is_not_a_thought(policy):
    thought = "<tool_call>\n<function=computer_use>\n<parameter=text>\nsend\n</parameter>\n</function>\n</tool_call>"
    assert policy.check(click(), thought=thought).verdict == "allow"


def test_typing_is_not_a_click_even_with_risky_thought(policy):
    assert policy.check(Action("type", text="hi"), thought="send it").verdict == "allow"


def test_confirm_risky_off_allows_everything():
    policy = SafetyPolicy(SafetySettings(confirm_risky=False))
    assert policy.check(Action("key", keys=("alt", "f4"))).verdict == "allow"
    assert policy.check(Action("type", text="rm -rf /")).verdict == "allow"


def test_custom_rules_from_settings():
    policy = SafetyPolicy(SafetySettings(risky_hotkeys=("ctrl+q",), risky_text_patterns=(r"DROP\s+TABLE",),
                                         risky_thought_words=("launch",)))
    assert policy.check(Action("key", keys=("ctrl", "q"))).verdict == "confirm"
    assert policy.check(Action("key", keys=("alt", "f4"))).verdict == "allow"
    assert policy.check(Action("type", text="drop table users")).verdict == "confirm"
    assert policy.check(click(), thought="launching now").verdict == "confirm"
    assert policy.check(click(), thought="send").verdict == "allow"


def test_bad_pattern_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"\[unclosed"):
        SafetyPolicy(SafetySettings(risky_text_patterns=("[unclosed",)))


# -- secrets -------------------------------------------------------------------------------------

def test_secret_names_in_order_without_repeats():
    assert secret_names("log in as {{secret:USER}} with {{secret:PW}} then {{secret:USER}}") == ["USER", "PW"]


def test_resolve_secrets_prefers_visagent_prefix_then_plain_name():
    env = {"VISAGENT_SECRET_PW": "s3cret", "PW": "other", "TOKEN": "tok"}
    assert resolve_secrets("{{secret:PW}} {{secret:TOKEN}}", env=env) == {"PW": "s3cret", "TOKEN": "tok"}


def test_missing_secret_is_a_config_error_naming_the_variables():
    with pytest.raises(ConfigError, match="VISAGENT_SECRET_PIN nor PIN"):
        resolve_secrets("enter {{secret:PIN}}", env={})


def test_vault_substitutes_only_for_execution_and_redacts_everywhere():
    vault = SecretVault({"PW": "hunter2", "LONG": "hunter2-and-more"})
    action = Action("type", text="pass: {{secret:PW}} / {{secret:NOPE}}")
    real = vault.for_execution(action)
    assert real.text == "pass: hunter2 / {{secret:NOPE}}"
    assert action.text == "pass: {{secret:PW}} / {{secret:NOPE}}"
    assert vault.redact("typed hunter2-and-more and hunter2") == "typed {{secret:LONG}} and {{secret:PW}}"
    assert vault.redact_obj({"a": ["x hunter2", 3], "b": "y"}) == {"a": ["x {{secret:PW}}", 3], "b": "y"}
