"""The shipped tiny checkpoint (engine/tiny/) is the output of `visagent train-tiny`: it carries its model card
and results, is prompted with the compact profile it was trained on (either variant), stays under 20 MB, differs
from the random base the recipe starts from, and answers a sim screenshot with a usable tool call (the random
base does not)."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from engine import load_engine, tiny_checkpoint_path
from engine.api import GenerationConfig
from visagent.loop.parsing import parse_output
from visagent.loop.prompting import build_messages
from visagent.sim.scenarios import get_scenario
from visagent.core.schemas import tool_for


@pytest.fixture(scope="module")
def tiny():
    return tiny_checkpoint_path()


def test_model_card_states_command_data_seed_and_heldout_results(tiny):
    card = (tiny / "README.md").read_text(encoding="utf-8")
    results = json.loads((tiny / "results.json").read_text(encoding="utf-8"))
    assert "visagent train-tiny" in card and "data seed" in card
    final = results["final"]
    assert 0.0 <= final["success_rate"] <= 1.0 and final["episodes"] >= 9
    assert 0.0 <= final["grounding"]["click_inside_rate"] <= 1.0
    assert f"{final['success_rate']:.0%}" in card
    assert [p["step"] for p in results["curve"]] == sorted(p["step"] for p in results["curve"])
    assert json.loads((tiny / "visagent.json").read_text())["prompt_profile"] in ("compact", "compact-task-first")
    assert sum(f.stat().st_size for f in tiny.iterdir() if f.is_file()) < 20_000_000


def test_weights_are_trained_not_the_random_base(tiny, tmp_path):
    """The base the card names (data seed, sizes) and the checkpoint's prompt profile rebuild the same tokenizer."""
    from engine.tiny import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus

    import re

    card = (tiny / "README.md").read_text(encoding="utf-8")
    if "sizes {" not in card:  # a continued checkpoint (`train-tiny --base`): the fresh base is named down its chain
        assert "`--base`" in card
        card = (tiny / "BASE-README.md").read_text(encoding="utf-8")
    # "base: a fresh tiny checkpoint (`engine.tiny.build_tiny_checkpoint`, seed N, sizes {...})" — the seed the
    # fresh base was built with (a continuation may train on another data seed; the tokenizer is the base's)
    fresh = re.search(r"build_tiny_checkpoint`, seed (\d+), sizes (\{[^}]*\})", card)
    assert fresh, "no card of the chain names the fresh base it started from"
    seed, sizes = int(fresh.group(1)), json.loads(fresh.group(2))
    profile = json.loads((tiny / "visagent.json").read_text())["prompt_profile"]
    base = build_tiny_checkpoint(tmp_path / "base", agent_corpus(seed=seed).texts, seed=seed,
                                 prompt_profile=profile, **sizes)
    assert (base / "tokenizer.json").read_bytes() == (tiny / "tokenizer.json").read_bytes()  # same base recipe
    with safe_open(str(base / "model.safetensors"), "pt") as a, safe_open(str(tiny / "model.safetensors"), "pt") as b:
        assert set(a.keys()) == set(b.keys())
        names = list(a.keys())
        changed = [n for n in names if not a.get_tensor(n).float().allclose(b.get_tensor(n).float(), atol=1e-2)]
    assert len(changed) > len(names) // 2


def test_trained_tiny_answers_a_sim_screen_with_a_tool_call(tiny):
    sc = get_scenario("desktop-settings-wifi-off")
    world = sc.make_world(1234)
    image = world.render()
    engine = load_engine("tiny", device="cpu")
    messages = build_messages(sc.instruction_for(world), [], image, platform="desktop", space="norm1000",
                              profile=engine.info.prompt_profile)
    tools = [tool_for("desktop", "norm1000", 1000, 1000, engine.info.prompt_profile)]
    result = engine.generate(messages, tools=tools, config=GenerationConfig(max_new_tokens=96, temperature=0.0))
    parsed = parse_output(result.text, space="norm1000")
    assert parsed.actions, result.text
