"""The one run assembly (visagent/loop/runs.py): the dashboard runs with exactly the CLI's configuration, the executor
gets its seed through the factory, the world's verdict goes into the trace through its writer, and a run that
cannot be assembled closes what it opened."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.agent_helpers import DONE
from tests.fixtures.dashboard import SCENARIO, wait_until
from visagent.core.errors import ConfigError, TraceError
from visagent.loop.runs import finish_run, open_run
from visagent.sim.scenarios import get_scenario
from visagent.loop.scripted import ScriptedEngine
from visagent.core.settings import Settings, load_settings
from visagent.core.trace import TraceWriter, read_trace

# Every value differs from its default, so a front end that dropped one (the dashboard once lost point_from and
# the thinking budget) would show here.
CONFIG = """
model = "tiny"
device = "cpu"
dtype = "fp32"
prefill_chunk = 128
session_max_sessions = 3
session_max_mb = 512.0
max_steps = 3
max_seconds = 120.0
history_images = 2
thinking = true
thinking_budget = 1024
answer_tokens = 300
temperature = 0.3
top_k = 5
presence_penalty = 0.5
settle = false
point_from = "text"

[safety]
confirm_risky = false
risky_hotkeys = ["ctrl+q"]
"""


@pytest.fixture
def recorded(monkeypatch):
    """What each run was built with: load_engine's arguments and the Agent's engine/executor/config/meta."""
    import engine
    from visagent.loop.agent import Agent

    seen: dict[str, list] = {"loads": [], "agents": []}

    def load_engine(spec, **options):
        seen["loads"].append((spec, options))
        return ScriptedEngine([DONE])

    init = Agent.__init__

    def record(self, engine, executor, config=None, **kw):
        seen["agents"].append({"config": config, "executor": executor, "run_meta": kw.get("run_meta")})
        init(self, engine, executor, config, **kw)

    monkeypatch.setattr(engine, "load_engine", load_engine)
    monkeypatch.setattr(Agent, "__init__", record)
    return seen


def test_the_dashboard_runs_with_exactly_the_cli_s_configuration(clean_env, recorded, capsys):
    from ui.engines import ModelChoice
    from ui.runs import RunManager, RunRequest
    from visagent.cli import main
    from visagent.loop.sampling import SamplingChoice

    (clean_env["work"] / "visagent.toml").write_text(CONFIG)
    assert main(["run", "--scenario", SCENARIO, "--seed", "3", "--trace-dir", "cli", "--quiet"]) == 1  # NOT met
    cli = recorded["agents"][-1]

    settings = load_settings()  # what `visagent ui` resolves from the same file
    runs = RunManager(settings, trace_root=clean_env["work"] / "ui")
    task = get_scenario(SCENARIO).instruction_for(get_scenario(SCENARIO).make_world(3))
    run = runs.start(RunRequest(task, ModelChoice.from_spec(settings.model), scenario=SCENARIO, seed=3,
                                thinking=settings.thinking, max_steps=settings.max_steps,
                                history_images=settings.history_images, settle=settings.settle))
    wait_until(lambda: run.snapshot().verdict == "not_met", 60, "the dashboard run and its world check")
    run.thread.join(30)
    ui = recorded["agents"][-1]
    runs.close()

    # The agent's configuration: the same dataclass; only who answers questions differs (a person on the page).
    assert cli["config"].human_in_loop is False and ui["config"].human_in_loop is True
    assert ui["config"] == dataclasses.replace(cli["config"], human_in_loop=True)
    c = ui["config"]
    assert (c.point_from, c.thinking, c.thinking_budget, c.answer_tokens) == ("text", True, 1024, 300)
    assert (c.max_steps, c.max_seconds, c.history_images, c.settle) == (3, 120.0, 2, False)
    assert c.sampling == SamplingChoice.from_settings(settings) and c.sampling.top_k == 5
    assert c.safety == settings.safety and c.safety.risky_hotkeys == ("ctrl+q",) and not c.auto_approve
    # The engine: load_engine got the same spec and options from both.
    assert len(recorded["loads"]) == 2 and recorded["loads"][0] == recorded["loads"][1]
    spec, options = recorded["loads"][0]
    assert spec == "tiny" and (options["device"], options["dtype"], options["prefill_chunk"]) == ("cpu", "fp32", 128)
    assert options["session_limits"].max_sessions == 3
    # The executor: the sim world of the same scenario and seed, built by the factory with that seed.
    for side in (cli, ui):
        assert type(side["executor"]).__name__ == "SimExecutor" and side["executor"].world.seed == 3
        assert side["run_meta"] == {"scenario": SCENARIO, "seed": 3}
    # And the traces say so: meta.json's settings section is the same but for the human in the loop.
    metas = [read_trace(next((clean_env["work"] / d).iterdir())).meta for d in ("cli", "ui")]
    for meta in metas:
        meta["settings"].pop("human_in_loop")
        assert meta["verdict"] == {"success": False, "by": "scenario.is_success", "side_effects": []}
    assert metas[0]["settings"] == metas[1]["settings"] and metas[0]["executor"] == metas[1]["executor"]


def test_the_executor_gets_its_seed_through_the_factory_and_the_verdict_goes_through_the_trace_writer(tmp_path):
    with open_run(Settings(trace_dir=str(tmp_path)), scenario=SCENARIO, seed=7, policy="oracle") as run:
        assert run.executor.world.seed == 7 and run.meta == {"scenario": SCENARIO, "seed": 7}
        assert run.task == get_scenario(SCENARIO).instruction_for(run.executor.world)
        result = run.agent.run(run.task)
        verdict = finish_run(run, result)
    assert result.status == "success" and verdict is not None and verdict.success
    want = {"success": True, "by": "scenario.is_success", "side_effects": []}
    assert run.agent.trace.meta["verdict"] == want  # the writer holds it: it wrote meta.json
    assert json.loads((result.trace_dir / "meta.json").read_text())["verdict"] == want
    assert read_trace(result.trace_dir).status == "success"


def test_a_typed_task_is_not_judged(tmp_path):
    engine = ScriptedEngine([DONE])
    with open_run(Settings(trace_dir=str(tmp_path)), task="Open the calculator.", scenario=SCENARIO,
                  engine=engine) as run:
        result = run.agent.run(run.task)
        assert finish_run(run, result) is None
    assert "verdict" not in read_trace(result.trace_dir).meta
    assert engine.calls  # an engine passed in was used, and is the caller's to close


def test_a_run_that_cannot_be_assembled_closes_what_it_opened(tmp_path, monkeypatch):
    from visagent.screen.simulated import SimExecutor

    closed = []
    close = SimExecutor.close
    monkeypatch.setattr(SimExecutor, "close", lambda self: (closed.append(self), close(self))[1])
    settings = Settings(trace_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="the scripted oracle plays scenario desktop-settings-dark-mode's own task"):
        open_run(settings, task="Open the calculator.", scenario=SCENARIO, policy="oracle")
    assert len(closed) == 1

    def broken(scenario, executor):
        raise ConfigError("no model here")

    with pytest.raises(ConfigError, match="no model here"):
        open_run(settings, scenario=SCENARIO, engine_factory=broken)
    assert len(closed) == 2 and not (tmp_path / "runs").exists()  # no trace was started
    with pytest.raises(ConfigError, match="--seed sets up the sim world; it does not apply to --executor desktop"):
        open_run(settings, world="desktop", seed=3)
    with pytest.raises(ConfigError, match="max_steps must be at least 1, got 0"):
        open_run(dataclasses.replace(settings, max_steps=0), scenario=SCENARIO)
    assert len(closed) == 2  # refused before anything opened


def test_the_trace_writer_records_a_verdict_after_the_run_is_finished(tmp_path):
    writer = TraceWriter(tmp_path, {"task": "t"}, background=True)
    writer.finish("success", "done", 1, None)
    verdict = {"success": False, "by": "scenario.is_success", "side_effects": ["settings.volume: 30 → 0"]}
    writer.record_verdict(verdict)
    meta = read_trace(writer.path).meta
    assert meta["status"] == "success" and meta["verdict"]["side_effects"] == ["settings.volume: 30 → 0"]
    with pytest.raises(TraceError, match="a verdict needs success true or false"):
        writer.record_verdict({"success": "yes"})
