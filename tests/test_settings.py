"""Settings precedence: CLI flag > VISAGENT_* environment > visagent.toml > defaults."""

from __future__ import annotations

import pytest

from visagent.core.errors import ConfigError
from visagent.core.settings import Settings, load_settings


def write_config(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_defaults_when_nothing_is_set(clean_env):
    s = load_settings({}, env={})
    assert s == Settings()
    assert s.model == "tiny" and s.host == "127.0.0.1" and s.safety.confirm_risky is True


def test_config_file_in_working_directory_overrides_defaults(clean_env):
    write_config(clean_env["work"] / "visagent.toml", 'max_steps = 7\nmodel = "/ckpt"\n[safety]\nconfirm_risky = false\n')
    s = load_settings({}, env={})
    assert (s.max_steps, s.model, s.safety.confirm_risky) == (7, "/ckpt", False)


def test_home_config_is_used_when_cwd_has_none(clean_env):
    write_config(clean_env["home"] / ".config" / "visagent" / "visagent.toml", "history_images = 2\n")
    assert load_settings({}, env={}).history_images == 2


def test_cwd_config_wins_over_home_config(clean_env):
    write_config(clean_env["home"] / ".config" / "visagent" / "visagent.toml", "max_steps = 3\n")
    write_config(clean_env["work"] / "visagent.toml", "max_steps = 4\n")
    assert load_settings({}, env={}).max_steps == 4


def test_environment_overrides_config_file(clean_env):
    write_config(clean_env["work"] / "visagent.toml", "max_steps = 7\nthinking = false\n")
    env = {"VISAGENT_MAX_STEPS": "9", "VISAGENT_THINKING": "yes", "VISAGENT_SAFETY_RISKY_THOUGHT_WORDS": "pay, wire"}
    s = load_settings({}, env=env)
    assert s.max_steps == 9 and s.thinking is True
    assert s.safety.risky_thought_words == ("pay", "wire")


def test_cli_flag_overrides_environment_and_file(clean_env):
    write_config(clean_env["work"] / "visagent.toml", "max_steps = 7\n")
    s = load_settings({"max_steps": 11, "model": None}, env={"VISAGENT_MAX_STEPS": "9", "VISAGENT_MODEL": "envmodel"})
    assert s.max_steps == 11
    assert s.model == "envmodel"  # None means "flag not given"


def test_openai_api_key_is_a_fallback_for_ours(clean_env):
    assert load_settings({}, env={"OPENAI_API_KEY": "sk-a"}).api_key == "sk-a"
    assert load_settings({}, env={"OPENAI_API_KEY": "sk-a", "VISAGENT_API_KEY": "sk-b"}).api_key == "sk-b"
    assert load_settings({}, env={"OPENAI_API_KEY": "sk-a"}).describe()["api_key"] == "***"


def test_unknown_config_key_names_file_and_key(clean_env):
    write_config(clean_env["work"] / "visagent.toml", "max_stepz = 3\n")
    with pytest.raises(ConfigError, match=r"visagent.toml: unknown key 'max_stepz'"):
        load_settings({}, env={})


def test_bad_env_value_names_the_variable(clean_env):
    with pytest.raises(ConfigError, match="VISAGENT_MAX_STEPS: 'many' is not a valid int"):
        load_settings({}, env={"VISAGENT_MAX_STEPS": "many"})


def test_invalid_toml_is_reported_with_the_path(clean_env):
    write_config(clean_env["work"] / "visagent.toml", "max_steps = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, env={})


def test_out_of_range_values_are_rejected(clean_env):
    with pytest.raises(ConfigError, match="max_steps must be at least 1"):
        load_settings({"max_steps": 0}, env={})
    with pytest.raises(ConfigError, match="port must be within"):
        load_settings({"port": 70000}, env={})


def test_an_unknown_executor_in_the_config_file_is_named_at_load(clean_env):
    # before: accepted here, then `visagent run` blamed a --scenario flag the user never passed
    write_config(clean_env["work"] / "visagent.toml", 'executor = "phone"\n')
    with pytest.raises(ConfigError, match="executor must be sim, desktop or android, got 'phone'"):
        load_settings({}, env={})


def test_visagent_config_variable_must_point_to_a_file(clean_env):
    with pytest.raises(ConfigError, match="VISAGENT_CONFIG points to"):
        load_settings({}, env={"VISAGENT_CONFIG": "/nonexistent/visagent.toml"})
