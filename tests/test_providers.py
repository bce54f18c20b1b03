"""Provider profiles, per-mode sampling, the cut-thought recovery and `visagent doctor`, against loopback fakes of
each server's documented wire behaviour (tests/fixtures/provider_fakes.py)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from engine import presets, providers
from engine.api import GenerationConfig
from engine.remote import RemoteEngine
from tests.agent_helpers import sim
from tests.fixtures.provider_fakes import ProviderFake
from visagent.loop.agent import Agent, AgentConfig
from visagent.core.settings import load_settings

DETECTED = [("vllm", "vllm"), ("sglang", "sglang"), ("llamacpp", "llamacpp"), ("ollama", "ollama"),
            ("visagent", "visagent"), ("other", "generic")]


@pytest.mark.parametrize(("kind", "expected"), DETECTED)
def test_the_provider_is_detected_from_what_the_server_says(kind, expected):
    with ProviderFake(kind) as fake:
        discovered = RemoteEngine(fake.url, backoff_s=0.01)  # reads /v1/models for the model name anyway
        assert (discovered.info.provider, discovered.profile.name) == (expected, expected)
        named = RemoteEngine(fake.url, model_name="Qwen/Qwen3.5-35B-A3B", backoff_s=0.01)
        named.generate([{"role": "user", "content": "hi"}], config=GenerationConfig(max_new_tokens=4))
        assert named.info.provider == expected  # one /v1/models read before the first request
        assert [r["path"] for r in fake.requests][-2:] == ["/v1/models", "/v1/chat/completions"]


def test_model_studio_is_known_by_its_host_and_a_chosen_provider_wins():
    for url in ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1"):
        assert providers.detect(url, None)[0] == "modelstudio"
    assert providers.detect("http://127.0.0.1:8000/v1", [{"id": "m", "owned_by": "vllm"}])[0] == "vllm"
    assert providers.detect("http://127.0.0.1:8000/v1", None)[0] == "generic"
    with ProviderFake("vllm") as fake:
        engine = RemoteEngine(fake.url, model_name="m", provider="ollama")
        assert engine.profile.name == "ollama" and engine.provider_evidence == "chosen"
    with pytest.raises(Exception, match="provider must be one of"):
        RemoteEngine("http://127.0.0.1:9/v1", model_name="m", provider="tgi")


def _run(fake: ProviderFake, tmp_path, *, thinking: bool, steps: int = 2, **settings) -> tuple[object, list[dict]]:
    """An agent run of `steps` steps on the sim through the fake, with CLI-resolved settings."""
    resolved = load_settings({"thinking": thinking, **settings}, env={}, cwd=tmp_path, home=tmp_path)
    engine = RemoteEngine(fake.url, provider=resolved.provider, backoff_s=0.01)
    _, executor = sim()
    config = AgentConfig.from_settings(resolved, max_steps=steps, settle=False, auto_approve=True)
    result = Agent(engine, executor, config, trace_root=tmp_path / "runs").run("click the middle")
    return result, fake.chats()


@pytest.mark.parametrize("thinking", [False, True])
def test_vllm_and_sglang_get_the_switch_in_chat_template_kwargs_and_qwens_values_per_mode(tmp_path, thinking):
    for kind in ("vllm", "sglang"):
        with ProviderFake(kind) as fake:
            result, chats = _run(fake, tmp_path / kind, thinking=thinking)
        assert result.status == "max_steps" and len(chats) == 2
        preset = presets.QWEN35_THINKING if thinking else presets.QWEN35_NON_THINKING
        for req in chats:
            assert req["chat_template_kwargs"] == {"enable_thinking": thinking}
            assert (req["temperature"], req["top_p"], req["top_k"], req["presence_penalty"]) == \
                (preset.temperature, preset.top_p, preset.top_k, preset.presence_penalty)
            assert "min_p" not in req and "repetition_penalty" not in req  # neutral values are not sent
            assert req["max_tokens"] == 256 + (4096 if thinking else 0)
            assert "enable_thinking" not in req and "reasoning_effort" not in req


def test_ollama_gets_reasoning_effort_and_no_fields_its_openai_layer_drops(tmp_path):
    with ProviderFake("ollama") as fake:
        _, off = _run(fake, tmp_path / "off", thinking=False, steps=1)
        fake.requests.clear()
        result, on = _run(fake, tmp_path / "on", thinking=True, steps=1)
    assert off[0]["reasoning_effort"] == "none" and on[0]["reasoning_effort"] == "medium"
    for req in off + on:
        assert not {"chat_template_kwargs", "top_k", "min_p", "enable_thinking"} & set(req)
        assert req["presence_penalty"] == 1.5
    steps = [json.loads(line) for line in (result.trace_dir / "trace.jsonl").read_text().splitlines()]
    step = next(s for s in steps if s.get("type") == "step")
    assert step["model"]["thinking"].startswith("I see the screen")  # Ollama's `reasoning` field is read


def test_model_studio_gets_top_level_enable_thinking_and_its_thinking_budget(tmp_path):
    with ProviderFake("modelstudio") as fake:
        _, on = _run(fake, tmp_path / "on", thinking=True, steps=1, provider="modelstudio", thinking_budget=300)
        fake.requests.clear()
        _, off = _run(fake, tmp_path / "off", thinking=False, steps=1, provider="modelstudio")
    assert on[0]["enable_thinking"] is True and on[0]["thinking_budget"] == 300 and on[0]["top_k"] == 20
    assert off[0]["enable_thinking"] is False and "thinking_budget" not in off[0]
    assert "chat_template_kwargs" not in on[0] and "chat_template_kwargs" not in off[0]


def test_openai_gets_standard_fields_only_and_its_strict_server_accepts_them(tmp_path):
    with ProviderFake("openai") as fake:
        result, chats = _run(fake, tmp_path, thinking=False, steps=1, provider="openai")
        assert result.status == "max_steps"
        bad = RemoteEngine(fake.url, model_name="m", provider="vllm", retries=0)
        with pytest.raises(Exception, match="Unrecognized request argument supplied"):
            bad.generate([{"role": "user", "content": "hi"}], config=GenerationConfig(temperature=0.7, top_k=20))
    assert set(chats[0]) <= {"model", "messages", "max_tokens", "temperature", "top_p", "stream", "stream_options",
                             "tools", "tool_choice", "presence_penalty", "user"}


def test_llamacpp_takes_repeat_penalty_and_settings_override_single_values(tmp_path):
    with ProviderFake("llamacpp") as fake:
        _, chats = _run(fake, tmp_path, thinking=False, steps=1, repetition_penalty=1.1, temperature=0.3, min_p=0.05)
    req = chats[0]
    assert (req["repeat_penalty"], req["temperature"], req["min_p"], req["top_p"], req["top_k"]) == (1.1, 0.3, 0.05, 0.8, 20)
    assert "repetition_penalty" not in req


def test_greedy_only_when_asked(tmp_path):
    with ProviderFake("vllm") as fake:
        result, chats = _run(fake, tmp_path, thinking=True, steps=1, greedy=True)
    assert (chats[0]["temperature"], chats[0]["top_p"]) == (0.0, 1.0)
    assert not {"top_k", "min_p", "presence_penalty"} & set(chats[0])
    meta = json.loads((result.trace_dir / "meta.json").read_text())
    assert meta["settings"]["sampling_used"]["thinking"]["temperature"] == 0.0
    assert meta["model"]["provider"] == "vllm"


@pytest.mark.parametrize("reasoning_parser", [True, False])
def test_a_cut_thought_is_asked_again_with_thinking_off_and_recorded(tmp_path, reasoning_parser):
    with ProviderFake("vllm", think_words=400, reasoning_parser=reasoning_parser) as fake:
        result, chats = _run(fake, tmp_path, thinking=True, steps=1, thinking_budget=50, answer_tokens=20)
    assert result.status == "max_steps"  # the step ran its click; no parse error ended the run
    assert [c["chat_template_kwargs"]["enable_thinking"] for c in chats] == [True, False]
    assert [c["max_tokens"] for c in chats] == [70, 20]
    assert chats[1]["temperature"] == presets.QWEN35_NON_THINKING.temperature
    steps = [json.loads(line) for line in (result.trace_dir / "trace.jsonl").read_text().splitlines()]
    step = next(s for s in steps if s.get("type") == "step")
    assert step["thinking_cut"]["max_new_tokens"] == 70 and step["thinking_cut"]["thinking"].startswith("I see")
    assert step["attempts"] == 2 and step["actions"][0]["action"] == "left_click" and step["parse_error"] is None


def test_without_recovery_a_cut_thought_costs_parse_retries(tmp_path):
    with ProviderFake("vllm", think_words=400) as fake:
        resolved = load_settings({"thinking": True, "thinking_budget": 50, "answer_tokens": 20}, env={},
                                 cwd=tmp_path, home=tmp_path)
        engine = RemoteEngine(fake.url, backoff_s=0.01)
        config = AgentConfig.from_settings(resolved, max_steps=1, settle=False, thinking_recovery=False)
        result = Agent(engine, sim()[1], config, trace_root=None).run("click")
    assert result.status == "parse_error"
    assert all(c["chat_template_kwargs"]["enable_thinking"] for c in fake.chats())


def test_tool_images_refused_by_a_server_move_to_user_messages(tmp_path):
    with ProviderFake("vllm", tool_images=False) as fake:
        result, chats = _run(fake, tmp_path, thinking=False, steps=3)
    assert result.status == "max_steps"
    tool_images = [sum(1 for m in c["messages"] if m["role"] == "tool" and isinstance(m["content"], list)
                       and any(p.get("type") == "image_url" for p in m["content"])) for c in chats]
    assert tool_images[-1] == 0 and len(chats) >= 4  # refused once, then sent as user messages


def test_local_checkpoint_sampling_comes_from_its_generation_config(tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.6, "top_k": 20,
                                                             "top_p": 0.95}))
    qwen = presets.for_checkpoint(root, "qwen3_5_moe")
    assert (qwen.thinking.temperature, qwen.thinking.top_p) == (0.6, 0.95)
    assert qwen.non_thinking == presets.QWEN35_NON_THINKING  # the file holds the default (thinking) mode
    other = presets.for_checkpoint(root, "qwen2_5_vl")
    assert other.thinking == other.non_thinking and other.non_thinking.temperature == 0.6
    assert presets.for_checkpoint(root, "qwen3_5_moe", decoding="greedy").thinking.temperature == 0.0
    (root / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    assert presets.for_checkpoint(root, "qwen2_5_vl").thinking.temperature == 0.0
    (root / "generation_config.json").write_text(json.dumps({"top_p": 3}))
    with pytest.raises(Exception, match="out of range"):
        presets.for_checkpoint(root, "qwen2_5_vl")


# ---------------------------------------------------------------- doctor

def _doctor(url: str, tmp_path, **extra) -> tuple[int, str]:
    from visagent.commands import doctor

    settings = load_settings({"model": url, **extra}, env={}, cwd=tmp_path, home=tmp_path)
    out = io.StringIO()
    code = doctor.run(SimpleNamespace(settings=settings, history_images=None), out=out)
    return code, out.getvalue()


def test_doctor_passes_a_good_server_one_line_per_check(tmp_path):
    with ProviderFake("vllm") as fake:
        code, text = _doctor(fake.url, tmp_path)
    lines = text.splitlines()
    assert code == 0, text
    assert [line.split(":")[0] for line in lines] == ["ok    models", "ok    provider", "ok    image",
                                                       "ok    tool call", "ok    thinking", "ok    image limit"]
    assert "vllm" in lines[1] and "structured tool_calls" in lines[3] and "4 screenshots" in lines[5]


def test_doctor_names_each_problem_of_a_broken_server_and_exits_1(tmp_path):
    with ProviderFake("vllm", max_images=1, tool_parser=False, ignores_thinking_switch=True) as fake:
        code, text = _doctor(fake.url, tmp_path)
    assert code == 1
    by_check = {line[6:].split(":")[0]: line for line in text.splitlines()}
    assert by_check["tool call"].startswith("ok") and "XML in the text" in by_check["tool call"]
    assert by_check["thinking"].startswith("FAIL") and "ignores" in by_check["thinking"]
    assert by_check["image limit"].startswith("FAIL") and "--limit-mm-per-prompt" in by_check["image limit"]
    assert "history_images = 3" in by_check["image limit"]


def test_doctor_explains_a_llamacpp_server_without_its_projector(tmp_path):
    with ProviderFake("llamacpp", vision=False) as fake:
        code, text = _doctor(fake.url, tmp_path)
    assert code == 1 and text.splitlines()[-1].startswith("FAIL  image:") and "--mmproj" in text


def test_doctor_one_line_for_an_unreachable_server_and_bad_input(tmp_path):
    from visagent.core.errors import ConfigError

    code, text = _doctor("http://127.0.0.1:9/v1", tmp_path)
    assert code == 1 and len(text.splitlines()) == 1 and text.startswith("FAIL  models:")
    with pytest.raises(ConfigError, match="doctor checks a server"):
        _doctor("tiny", tmp_path)


def test_the_in_process_sampler_applies_min_p():
    import torch

    from engine.sampling import TokenSampler

    logits = torch.tensor([5.0, 4.0, 0.0, 0.0])  # p ~ [0.73, 0.27, 0.005, 0.005]
    seen = set()
    for seed in range(40):
        sampler = TokenSampler(GenerationConfig(temperature=1.0, min_p=0.3, seed=seed), torch.tensor([[1]]))
        seen.add(sampler.next_token(logits))
    assert seen == {0, 1}  # tokens under 0.3 x the top probability never drawn; both survivors are
    with pytest.raises(Exception, match="min_p"):
        TokenSampler(GenerationConfig(temperature=1.0, min_p=1.5), torch.tensor([[1]]))


def test_sampling_settings_follow_the_precedence_and_bad_values_are_one_line(tmp_path):
    from visagent.loop.engines import open_engine
    from visagent.core.errors import ConfigError

    (tmp_path / "visagent.toml").write_text('provider = "ollama"\ntemperature = 0.2\ntop_k = 7\nthinking_budget = 900\n')
    env = {"VISAGENT_TEMPERATURE": "0.5", "VISAGENT_GREEDY": "no"}
    s = load_settings({"top_k": 10}, env=env, cwd=tmp_path, home=tmp_path)
    assert (s.provider, s.temperature, s.top_k, s.thinking_budget, s.greedy) == ("ollama", 0.5, 10, 900, False)
    for bad, words in (({"provider": "tgi"}, "provider must be one of"), ({"top_p": 0}, "top_p must be in"),
                       ({"thinking_budget": 0}, "thinking_budget"), ({"min_p": 2}, "min_p")):
        with pytest.raises(ConfigError, match=words):
            load_settings(bad, env={}, cwd=tmp_path / "none", home=tmp_path / "none")
    with ProviderFake("vllm") as fake:  # the setting reaches the engine the commands open
        engine = open_engine(load_settings({"model": fake.url, "provider": "modelstudio"}, env={},
                                           cwd=tmp_path / "none", home=tmp_path / "none"))
        assert engine.profile.name == "modelstudio" and engine.info.provider == "modelstudio"


@pytest.mark.parametrize(("tool_parser", "reasoning_parser"), [(True, True), (False, False), (True, False)])
def test_a_thinking_run_acts_with_the_servers_parsers_on_or_off(tmp_path, tool_parser, reasoning_parser):
    with ProviderFake("sglang", tool_parser=tool_parser, reasoning_parser=reasoning_parser) as fake:
        result, chats = _run(fake, tmp_path, thinking=True, steps=2)
    assert result.status == "max_steps" and len(chats) == 2
    steps = [json.loads(line) for line in (result.trace_dir / "trace.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s.get("type") == "step"]
    assert all(s["actions"][0]["action"] == "left_click" and "thinking_cut" not in s for s in steps)
    assert all(s["model"]["thinking"].startswith("I see the screen") for s in steps)


def test_doctor_tells_an_unnamed_llamacpp_or_ollama_server_by_its_own_endpoints(tmp_path, monkeypatch):
    import tests.fixtures.provider_fakes as fakes

    monkeypatch.setitem(fakes.OWNED_BY, "llamacpp", "someone")  # e.g. a model registered under another owner
    monkeypatch.setitem(fakes.OWNED_BY, "ollama", "myteam")  # Ollama reports the model's namespace
    for kind in ("llamacpp", "ollama"):
        with ProviderFake(kind) as fake:
            code, text = _doctor(fake.url, tmp_path)
        provider_line = text.splitlines()[1]
        assert provider_line.startswith("ok    provider: generic") and f'provider = "{kind}"' in provider_line
        if kind == "ollama":  # generic sends chat_template_kwargs, which Ollama drops: it keeps thinking
            assert code == 1 and "FAIL  thinking" in text
