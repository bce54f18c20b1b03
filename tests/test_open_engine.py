"""visagent.loop.engines.open_engine: every load option from the settings reaches the engine (real tiny checkpoint)."""

from __future__ import annotations

import pytest

from engine.prefill import DEFAULT_PREFILL_CHUNK
from engine.session import SessionLimits
from ui.engines import EngineCache, ModelChoice, engine_loader
from visagent.loop.engines import open_engine, session_limits
from visagent.core.errors import ConfigError
from visagent.core.settings import Settings, load_settings


def test_setting_defaults_are_the_engine_defaults() -> None:
    s = Settings()
    assert session_limits(s) == SessionLimits()
    assert s.prefill_chunk == DEFAULT_PREFILL_CHUNK


def test_environment_and_config_file_reach_the_in_process_engine(tmp_path) -> None:
    (tmp_path / "visagent.toml").write_text("session_max_snapshots = 3\nprefill_chunk = 64\n")
    env = {"VISAGENT_SESSION_MAX_SESSIONS": "2", "VISAGENT_SESSION_MAX_MB": "1.5", "VISAGENT_DEVICE": "cpu",
           "VISAGENT_DTYPE": "fp32"}
    s = load_settings(env=env, cwd=tmp_path, home=tmp_path)
    engine = open_engine(s)
    try:
        assert engine.sessions.limits == SessionLimits(max_sessions=2, max_bytes=int(1.5 * 2**20), max_snapshots=3)
        assert engine.prefill_chunk == 64
        assert engine.info.spec == "tiny" and str(engine.model.dtype) == "torch.float32"
    finally:
        engine.close()


def test_prefill_chunk_zero_means_one_forward() -> None:
    engine = open_engine(Settings(device="cpu", dtype="fp32", prefill_chunk=0))
    try:
        assert engine.prefill_chunk is None
    finally:
        engine.close()


def test_a_server_spec_gets_model_name_and_key() -> None:
    s = Settings(model="http://127.0.0.1:9/v1", model_name="qwen3.5-35b", api_key="k")
    engine = open_engine(s)  # nothing listens: RemoteEngine contacts the server lazily
    try:
        assert engine.model_name == "qwen3.5-35b" and engine.api_key == "k"
    finally:
        engine.close()


def test_the_dashboard_loader_uses_the_picked_model_and_the_settings(tmp_path) -> None:
    s = Settings(model="tiny", model_name="ignored", api_key="k", session_max_sessions=3, device="cpu")
    cache = EngineCache(engine_loader(s))
    remote = cache.get(ModelChoice("server", "http://127.0.0.1:9/v1", "picked"))
    assert remote.model_name == "picked" and remote.api_key == "k"
    local = cache.get(ModelChoice("tiny", "tiny"))
    assert local.sessions.limits.max_sessions == 3
    cache.close()


@pytest.mark.parametrize("key, value", [("session_max_sessions", "0"), ("session_max_mb", "-1"),
                                        ("session_max_snapshots", "0"), ("prefill_chunk", "-5")])
def test_bad_limits_are_one_config_error(key: str, value: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(env={f"VISAGENT_{key.upper()}": value}, cwd=tmp_path, home=tmp_path)
