"""The dashboard's Model section (issue 41): provider presets, an API key that reaches the server and nothing
else, and a connection test that runs `visagent doctor`'s checks. Servers are the loopback provider fakes of
tests/fixtures/provider_fakes.py (each answering as its real server documents)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from engine.providers import PROVIDER_CHOICES, from_host
from tests.fixtures.dashboard import SCENARIO, wait_until
from tests.fixtures.provider_fakes import ProviderFake
from ui import forms
from ui.engines import PROVIDER_PRESETS, EngineCache, ModelChoice
from visagent.core.errors import ConfigError
from visagent.core.settings import Settings

KEY = "sk-visagent-test-4f1c9e2b7a"


def test_every_preset_fills_a_server_url_a_model_name_and_a_known_provider():
    for name in PROVIDER_PRESETS:
        url, model_name, provider = forms.preset_values(name)
        assert url.startswith(("http://", "https://")) and url.endswith("/v1") and provider in PROVIDER_CHOICES
        # what the preset fills is a valid server choice as the form would submit it
        choice = ModelChoice.from_form("server", url=url, model_name=model_name, provider=provider)
        assert choice.spec == url and choice.provider == provider
    # the README's serving section: Ollama's port and tag, Model Studio's international endpoint
    assert forms.preset_values("ollama") == ("http://127.0.0.1:11434/v1", "qwen3.5:35b-a3b", "ollama")
    url, name, provider = forms.preset_values("modelstudio")
    assert provider == "modelstudio" == from_host(url) and name == "qwen3.5-plus"
    assert forms.preset_values("vllm")[2] == "vllm" and forms.preset_values("sglang")[2] == "sglang"
    assert forms.preset_values("llamacpp")[2] == "llamacpp"
    assert forms.preset_values("openai-compatible")[2] == "auto"
    with pytest.raises(ConfigError, match="unknown preset 'tgi'"):
        forms.preset_values("tgi")


def test_the_form_refuses_an_unknown_provider_and_keeps_the_key_out_of_repr():
    with pytest.raises(ConfigError, match="unknown provider 'tgi'"):
        ModelChoice.from_form("server", url="http://127.0.0.1:8000/v1", provider="tgi")
    choice = ModelChoice.from_form("server", url="http://127.0.0.1:8000/v1", provider="vllm", api_key=f" {KEY} ")
    assert choice.api_key == KEY and KEY not in repr(choice) and KEY not in choice.label
    assert ModelChoice.from_form("server", url="http://127.0.0.1:8000/v1").api_key is None  # empty: the settings'


def test_the_engine_cache_hands_provider_and_key_to_the_loader_and_keeps_keys_apart():
    calls = []

    def loader(spec, **kw):
        calls.append((spec, kw))
        return object()

    cache = EngineCache(loader=loader)
    url = "http://127.0.0.1:8000/v1"
    first = cache.get(ModelChoice.from_form("server", url=url, provider="vllm", api_key="k1"))
    again = cache.get(ModelChoice.from_form("server", url=url, provider="vllm", api_key="k1"))
    other = cache.get(ModelChoice.from_form("server", url=url, provider="vllm", api_key="k2"))
    assert first is again and other is not first
    assert calls == [(url, {"model_name": None, "provider": "vllm", "api_key": "k1"}),
                     (url, {"model_name": None, "provider": "vllm", "api_key": "k2"})]
    cache.get(ModelChoice("tiny", "tiny"))
    assert calls[-1] == ("tiny", {"model_name": None})  # nothing extra for a choice without them


def _record_auth(fake: ProviderFake) -> list[str | None]:
    """Every request's Authorization header, recorded by a subclass of the fake's own handler."""
    seen: list[str | None] = []
    base = fake.server.RequestHandlerClass

    class Recording(base):  # type: ignore[misc, valid-type]
        def parse_request(self) -> bool:
            ok = super().parse_request()
            if ok:
                seen.append(self.headers.get("Authorization"))
            return ok

    fake.server.RequestHandlerClass = Recording
    return seen


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_key_typed_in_the_dashboard_reaches_the_server_and_no_trace_meta_or_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = Settings(trace_dir=str(tmp_path / "runs"), api_key=None)
    dash = forms.Dashboard.create(settings, trace_root=tmp_path / "runs")
    try:
        fake = ProviderFake("vllm")
        seen = _record_auth(fake)
        with fake:
            request = forms.run_request("Switch the system to dark mode.", "sim", SCENARIO, None, "server", "",
                                        fake.url, "", False, 2, 2, False, None, None, "vllm", KEY)
            run = dash.runs.start(request)
            snap = wait_until(lambda: (s := run.snapshot()).status and s, 60, "the run to end")
        assert snap.trace_dir and snap.step >= 1, snap.log
        chats = fake.chats()
        assert chats, "the model was never asked"
        assert seen and all(h == f"Bearer {KEY}" for h in seen), seen  # the key did reach the server
        assert chats[0].get("chat_template_kwargs") is not None  # and the picked vllm profile shaped the request
        trace = Path(snap.trace_dir)
        assert trace.is_relative_to(tmp_path) and (trace / "trace.jsonl").stat().st_size > 0
        assert _files_holding(tmp_path, KEY) == []  # trace, meta, report, anything under the test's directory
        assert KEY not in json.dumps(forms.snapshot_dict(snap)) and KEY not in repr(run.request)
        assert KEY not in caplog.text
    finally:
        dash.close()


def test_the_connection_test_runs_doctors_checks_against_a_good_server():
    fake = ProviderFake("vllm")
    seen = _record_auth(fake)
    with fake:
        ok, text = forms.connection_check(Settings(), fake.url, "", "auto", KEY)
    lines = text.splitlines()
    assert ok, text
    assert [line.split(":")[0] for line in lines] == ["ok    models", "ok    provider", "ok    image",
                                                       "ok    tool call", "ok    thinking", "ok    image limit"]
    assert "vllm" in lines[1]
    assert seen and all(h == f"Bearer {KEY}" for h in seen) and KEY not in text


def test_the_connection_test_names_each_problem_of_a_broken_server():
    with ProviderFake("vllm", max_images=1, tool_parser=False, ignores_thinking_switch=True) as fake:
        ok, text = forms.connection_check(Settings(history_images=4), fake.url, "", "", "")
    assert not ok
    by_check = {line[6:].split(":")[0]: line for line in text.splitlines()}
    assert by_check["models"].startswith("ok")
    assert by_check["thinking"].startswith("FAIL") and "ignores" in by_check["thinking"]
    assert by_check["image limit"].startswith("FAIL") and "--limit-mm-per-prompt" in by_check["image limit"]


def test_the_connection_test_of_an_unreachable_or_bad_url_is_one_line():
    ok, text = forms.connection_check(Settings(), "http://127.0.0.1:9/v1")
    assert not ok and len(text.splitlines()) == 1 and text.startswith("FAIL  models:")
    with pytest.raises(ConfigError, match="must start with http"):
        forms.connection_check(Settings(), "ftp://example/v1")
    with pytest.raises(ConfigError, match="unknown provider"):
        forms.connection_check(Settings(), "http://127.0.0.1:9/v1", provider="tgi")


def test_the_server_preloaded_at_start_is_the_one_the_untouched_form_picks(tmp_path):
    settings = Settings(trace_dir=str(tmp_path), model="http://127.0.0.1:8000/v1", provider="sglang")
    dash = forms.Dashboard.create(settings)
    try:
        picked = ModelChoice.from_form("server", url="http://127.0.0.1:8000/v1", provider=settings.provider)
        assert dash.default_model == picked and picked.provider == "sglang"
    finally:
        dash.close()
