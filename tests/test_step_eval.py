"""Step accuracy (`visagent eval --per-step`, visagent/traces/step_eval.py): every step of the oracle's path is asked of
the model with the exact prompt the agent would send there, and its answer is compared with the oracle's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from visagent.core.actions import Action
from visagent.loop.parsing import render_action
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import ScriptedEngine
from visagent.traces.step_eval import oracle_step_records, score_answer, step_accuracy

SCENARIOS = ["phone-settings-ringtone", "desktop-files-sort-size"]  # held-out: 4 + 3 oracle steps at seed 0


@pytest.fixture(scope="module")
def oracle_records(tmp_path_factory):
    scenarios = [get_scenario(s) for s in SCENARIOS]
    records, skipped = oracle_step_records(scenarios, [0], tmp_path_factory.mktemp("oracle"), space="norm1000",
                                           profile="full")
    assert not skipped
    return scenarios, records


@pytest.mark.parametrize("declared, shown", [(None, 4), (1, 1), (8, 4)])
def test_steps_are_rendered_in_the_window_the_agent_would_show_the_model(tmp_path, declared, shown):
    """The model's declared window caps the agent's default (4) here as in a run: one screenshot for a model
    trained on one, four for a model that declares none or more than four."""
    from visagent.loop.prompting import count_images

    records, _ = oracle_step_records([get_scenario("phone-settings-ringtone")], [0], tmp_path, space="norm1000",
                                     profile="full", history_images=declared)
    assert {r["meta"]["history_images"] for r in records} == {shown}
    assert max(count_images(r["messages"]) for r in records) == min(shown, len(records))


def _model_action(record) -> Action:
    return Action.from_dict(record["action"]["model"][0])


def test_the_oracle_s_own_answers_score_every_step_and_the_prompts_are_the_agent_s(oracle_records):
    scenarios, records = oracle_records
    assert len(records) >= 5 and {r["meta"]["scenario"] for r in records} == set(SCENARIOS)
    assert all(r["meta"]["split"] == "heldout" for r in records)  # scored, never trained on
    engine = ScriptedEngine([r["target"] for r in records])
    report = step_accuracy(engine, scenarios, [0], model="scripted", split="heldout")
    assert report.accuracy == 1.0 and len(report.outcomes) == len(records)
    assert all(p == len(report.episodes()[k]) for k, p in report.prefixes().items())
    first_prompt = engine.calls[0]["messages"]
    assert [m["role"] for m in first_prompt] == [m["role"] for m in records[0]["messages"]]
    assert any(part.get("type") == "image" and hasattr(part["image"], "size")  # the screenshot, opened
               for m in first_prompt if isinstance(m["content"], list) for part in m["content"])
    table = report.summary_table()
    assert f"step accuracy {len(records)}/{len(records)} (100.0%)" in table and "every step right in 2" in table
    assert f"stopped early (terminate where the oracle still acts): 0 of {len(records)} steps" in table


def test_wrong_answers_are_scored_wrong_and_say_why(oracle_records):
    scenarios, records = oracle_records
    first = records[0]
    target = _model_action(first)
    assert target.coordinate is not None and first["meta"].get("bbox")  # a click on a known element
    x1, y1, x2, y2 = first["meta"]["bbox"]
    width, height = first["meta"]["image_size"]
    outside = target.with_(coordinate=(1000 * (x1 + x2) / 2 / width,
                                       1000 * (y2 + 5) / height if y2 + 5 < height else 1000 * (y1 - 5) / height))
    inside = target.with_(coordinate=(1000 * (x1 + 1) / width, 1000 * (y2 - 1) / height))
    assert score_answer(inside, first, (1000, 1000)) == ""
    assert score_answer(outside, first, (1000, 1000)).startswith("point outside")
    assert score_answer(None, first, (1000, 1000)) == "no action"
    assert score_answer(Action("terminate", status="success"), first, (1000, 1000)).startswith("action terminate")
    typed = next(r for r in records if _model_action(r).action == "terminate")
    assert score_answer(Action("terminate", status="failure"), typed, (1000, 1000)) == "other button or status"

    answers = [render_action(Action("terminate", status="success", space="norm1000"), "qwen35", platform="phone")] \
        + ["not a tool call"] + [r["target"] for r in records[2:]]
    report = step_accuracy(ScriptedEngine(answers), scenarios, [0], model="scripted", split="heldout")
    assert [o.correct for o in report.outcomes] == [False, False] + [True] * (len(records) - 2)
    assert report.outcomes[1].why == "no action" and report.outcomes[1].answer == ""
    assert report.prefixes()[(SCENARIOS[0], 0)] == 0
    data = report.to_dict()
    assert data["correct"] == len(records) - 2 and data["episodes_all_right"] == 1
    assert data["early_stops"] == 1  # the first answer; the unparsed one is not a stop, right terminates are not
    assert "stopped early (terminate where the oracle still acts): 1 of" in report.summary_table()


def test_eval_per_step_cli_scores_the_tiny_model_and_refuses_a_policy(visagent_bin, clean_env, tmp_path):
    out = tmp_path / "steps.json"
    res = subprocess.run([visagent_bin, "eval", "--per-step", "--model", "tiny", "--seeds", "1", "--no-progress",
                          "--workers", "1", "--trace-dir", str(tmp_path / "traces"), "--json", str(out),
                          SCENARIOS[0]], capture_output=True, text=True, env=clean_env, timeout=600)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["steps"] == len(data["outcomes"]) >= 3 and 0 <= data["correct"] <= data["steps"]
    kept = Path(data["trace_dir"])  # --trace-dir keeps the oracle's traces the prompts were rebuilt from
    assert kept.parent == tmp_path / "traces" and str(kept) in res.stdout
    assert len([t for t in kept.rglob("trace.jsonl")]) == 1
    assert data["per_scenario"][SCENARIOS[0]]["steps"] == data["steps"]
    assert "step accuracy" in res.stdout and SCENARIOS[0] in res.stdout
    bad = subprocess.run([visagent_bin, "eval", "--per-step", "--policy", "oracle", SCENARIOS[0]],
                         capture_output=True, text=True, env=clean_env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--per-step" in bad.stderr
