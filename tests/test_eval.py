"""`visagent eval`: parallel episodes, success judged on the world, a summary table and a JSON results file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from visagent.loop.agent import AgentConfig
from visagent.traces.evaluate import EvalReport, evaluate, oracle_factory, world_check
from visagent.sim.scenarios import get_scenario, load_scenarios
from visagent.loop.scripted import ScriptedEngine
from visagent.sim.oracle import solve
from visagent.core.trace import read_trace

TERMINATE_SUCCESS = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
                     "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")


def test_oracle_solves_every_episode_in_parallel(tmp_path):
    scenarios = [get_scenario("desktop-settings-wifi-off"), get_scenario("phone-settings-brightness")]
    seen = []
    report = evaluate(scenarios, oracle_factory, seeds=[0, 1], workers=3, trace_dir=tmp_path / "runs",
                      model="policy:oracle", on_episode=seen.append)
    assert isinstance(report, EvalReport)
    assert len(report.episodes) == len(seen) == 4
    assert [(e.scenario, e.seed) for e in report.episodes] == [(s.id, seed) for s in scenarios for seed in (0, 1)]
    assert report.success_rate == 1.0 and all(e.status == "success" for e in report.episodes)
    tags = report.per_tag()
    assert tags["platform:phone"] == {"episodes": 2, "successes": 2, "success_rate": 1.0}
    assert tags["difficulty:easy"]["episodes"] == 2
    for episode in report.episodes:  # each episode's trace is real and says which world it ran in
        meta = read_trace(episode.trace).meta
        assert meta["executor"]["scenario"] == episode.scenario and meta["executor"]["seed"] == episode.seed
        assert meta["status"] == "success" and meta["steps"] == episode.steps
    assert report.mean_steps == sum(e.steps for e in report.episodes) / 4
    assert report.seconds_per_step > 0


def test_success_is_the_worlds_verdict_not_the_models_claim(tmp_path):
    scenarios = [get_scenario("desktop-settings-wifi-off"), get_scenario("desktop-settings-language")]

    def claims_success(scenario, executor):  # a scripted engine (not a model) that says "done" at once
        return ScriptedEngine([TERMINATE_SUCCESS], repeat_last=True)

    report = evaluate(scenarios, claims_success, seeds=[0, 1], workers=2, trace_dir=None)
    assert [e.status for e in report.episodes] == ["success"] * 4  # what the model claimed...
    assert report.success_rate == 0.0  # ...is not what the world says
    assert all(e.trace is None and e.steps == 1 for e in report.episodes)
    assert report.per_tag()["app:settings"]["success_rate"] == 0.0
    table = report.summary_table()
    assert "failed: desktop-settings-wifi-off seed 0: goal NOT met (model claimed success)" in table
    assert "goal met" in table.splitlines()[0] and "overall" in table


def test_world_check_calls_a_status_a_claim_only_when_it_claims_success():
    scenario = get_scenario("desktop-settings-wifi-off")
    world = scenario.make_world(seed=0)
    task = scenario.instruction_for(world)
    claim = " (the status above is the model's own claim)"
    assert world_check(scenario, world, task, "success") == (False, "world check: the scenario's goal is NOT met" + claim)
    assert world_check(scenario, world, task, "answered")[1].endswith(claim)
    for status in ("max_steps", "stopped", "parse_error", "failure"):  # these claim nothing
        assert world_check(scenario, world, task, status) == (False, "world check: the scenario's goal is NOT met")
    assert world_check(scenario, world, "Open the calculator.", "success") is None  # a typed task: not judged
    solve(scenario, world)  # the oracle plays the task out in the world
    assert world_check(scenario, world, task, "max_steps") == (True, "world check: the scenario's goal is met")


def test_step_limit_and_broken_episodes_are_recorded(tmp_path):
    scenario = get_scenario("desktop-settings-language")

    def explodes(scenario, executor):
        raise RuntimeError("engine factory broke")

    broken = evaluate([scenario], explodes, seeds=[0], trace_dir=None)
    assert broken.episodes[0].success is False and "engine factory broke" in broken.episodes[0].error
    limited = evaluate([scenario], oracle_factory, seeds=[0], max_steps=1, trace_dir=None,
                       agent_config=AgentConfig())
    assert limited.episodes[0].status == "max_steps" and limited.episodes[0].success is False


def test_cli_oracle_json_has_overall_and_per_tag_rates(tmp_path, visagent_bin):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [visagent_bin, "eval", "desktop-settings-wifi-off", "desktop-settings-language", "--policy", "oracle",
         "--seeds", "2", "--workers", "2", "--json", str(out), "--trace-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["success_rate"] == 1.0 and data["episodes_total"] == 4 and data["model"] == "policy:oracle"
    assert data["per_tag"]["difficulty:medium"]["success_rate"] == 1.0
    assert data["seeds"] == [0, 1] and data["scenarios"] == ["desktop-settings-wifi-off", "desktop-settings-language"]
    for episode in data["episodes"]:
        assert episode["success"] is True and Path(episode["trace"]).is_dir()
        assert Path(episode["trace"]).parent == Path(data["trace_dir"])
    assert "overall" in proc.stdout and "100%" in proc.stdout and "time per step" in proc.stdout
    assert "episode" in proc.stderr  # the tqdm progress bar


def test_cli_split_and_tags_select_scenarios(tmp_path, visagent_bin):
    everything = load_scenarios()
    train = next(s for s in everything if s.split == "train")
    heldout = next(s for s in everything if s.split == "heldout")
    out = tmp_path / "r.json"
    proc = subprocess.run([visagent_bin, "eval", train.id, heldout.id, "--policy", "oracle", "--split", "heldout",
                           "--seeds", "1", "--no-traces", "--no-progress", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["split"] == "heldout" and data["scenarios"] == [heldout.id]
    assert [e["split"] for e in data["episodes"]] == ["heldout"]
    tag = f"platform:{train.platform}"
    by_tag = subprocess.run([visagent_bin, "eval", train.id, heldout.id, "--policy", "oracle", "--tags", tag,
                             "--seeds", "1", "--no-traces", "--no-progress", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert by_tag.returncode == 0, by_tag.stderr
    chosen = json.loads(out.read_text())["scenarios"]
    assert train.id in chosen and all(get_scenario(i).platform == train.platform for i in chosen)


def test_cli_user_errors_are_one_line(tmp_path, visagent_bin):
    for args, message in ((["no-such-scenario", "--policy", "oracle"], "unknown scenario"),
                          (["--policy", "oracle", "--tags", "no-such-tag"], "no scenario carries tag no-such-tag; known tags: app:"),
                          (["--policy", "oracle", "--seeds", "0"], "--seeds 0"),
                          (["--policy", "oracle", "--model", "tiny"], "either --model or --policy")):
        proc = subprocess.run([visagent_bin, "eval", *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr



def test_cli_bad_json_path_is_refused_before_the_evaluation(tmp_path, visagent_bin):
    (tmp_path / "notes.txt").write_text("a file\n")
    cases = ((tmp_path / "notes.txt" / "out" / "results.json", "which is a file, not a directory"),
             (tmp_path, "is a directory; give a file such as"),
             (Path("/sys/visagent-results.json"), "cannot create files in /sys"))  # sysfs refuses even root
    for out, message in cases:
        runs = tmp_path / "runs"
        proc = subprocess.run([visagent_bin, "eval", "desktop-settings-wifi-off", "--policy", "oracle", "--seeds", "1",
                               "--json", str(out), "--trace-dir", str(runs)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 2, (out, proc.stderr)
        assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("visagent: error: --json ")
        assert not runs.exists() and "overall" not in proc.stdout  # no episode ran


def test_cli_model_over_http_is_one_shared_engine(tmp_path, visagent_bin):
    """--model URL: every episode talks to one OpenAI-compatible server (a scripted stub on loopback)."""
    from tests.fixtures.openai_stub import OpenAIStub, Reply, delta_chunk

    def reply(request):
        if request["path"].endswith("/models"):
            return Reply(body={"object": "list", "data": [{"id": "stub-model", "max_model_len": 32768}]})
        return Reply(chunks=[delta_chunk({"content": TERMINATE_SUCCESS}), delta_chunk({}, finish="stop"),
                             {"id": "u", "object": "chat.completion.chunk", "created": 0, "model": "stub-model",
                              "choices": [], "usage": {"prompt_tokens": 1234, "completion_tokens": 20,
                                                       "total_tokens": 1254}}])

    stub = OpenAIStub(reply)
    try:
        out = tmp_path / "r.json"
        proc = subprocess.run(
            [visagent_bin, "eval", "desktop-settings-wifi-off", "phone-settings-brightness", "--model", stub.url,
             "--seeds", "2", "--workers", "2", "--no-traces", "--no-progress", "--json", str(out)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    finally:
        stub.close()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["model"] == stub.url and data["episodes_total"] == 4
    assert data["success_rate"] == 0.0 and {e["status"] for e in data["episodes"]} == {"success"}
    assert data["tokens_per_step"]["prompt"] == 1234
    chats = [r["json"] for r in stub.requests if r["path"].endswith("/chat/completions")]
    assert len(chats) == 4  # one call per episode: each answered terminate at once
    tools = sorted(c["tools"][0]["function"]["name"] for c in chats)
    assert tools == ["computer_use", "computer_use", "mobile_use", "mobile_use"]


def test_cancel_stops_running_episodes_and_skips_the_rest():
    import threading

    clicks = [("<tool_call>\n<function=computer_use>\n<parameter=action>\nmouse_move\n</parameter>\n"
               f"<parameter=coordinate>\n[{100 + 50 * i}, 500]\n</parameter>\n</function>\n</tool_call>")
              for i in range(10)]
    engines = []

    def slow_mover(scenario, executor):  # a scripted engine streaming slowly, never finishing the task
        engine = ScriptedEngine(clicks, piece=8, delay_s=0.02)
        engines.append(engine)
        return engine

    cancel = threading.Event()

    def cancel_after_first_call():
        while not any(e.calls for e in list(engines)):
            threading.Event().wait(0.01)
        cancel.set()

    threading.Thread(target=cancel_after_first_call, daemon=True).start()
    report = evaluate([get_scenario("desktop-settings-wifi-off")], slow_mover, seeds=[0, 1, 2, 3], workers=2,
                      max_steps=10, cancel=cancel)
    assert report.episodes == []  # cut-short episodes are not results
    assert len(engines) <= 2  # nothing started after the cancel
    assert all(len(e.calls) <= 2 for e in engines)  # the running ones stopped within a step


def test_the_summary_draws_a_bar_per_tag():
    from visagent.traces.evaluate import EpisodeOutcome, tag_bar

    def episode(success, tags):
        return EpisodeOutcome("s", 0, "train", tags, success, "success", "", 1, 0.1, 0.1, 0, 0, None)

    report = EvalReport(model="m", split=None,
                        episodes=[episode(True, ["app:a"]), episode(False, ["app:a"]), episode(False, ["app:b"])])
    lines = {line.split()[1]: line for line in report.summary_table().splitlines() if line.startswith("tag ")}
    assert lines["app:a"].endswith(tag_bar(0.5)) and tag_bar(0.5) == "█" * 10 + "░" * 10
    assert lines["app:b"].endswith("░" * 20)
