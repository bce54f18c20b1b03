"""One run assembly: resolved settings in, a ready agent out; the world's verdict on the run into its trace.

Every front end that runs the agent builds its run here: `visagent run` (visagent/commands/run.py), the
dashboard's Run tab (ui/runs.py), evaluation episodes (visagent/traces/evaluate.py, driven by `visagent eval` and the
dashboard's suites) and the MCP server's run_task. So a setting reaches all of them the same way, and the checks
(a flag that does not apply to the executor, an unknown scenario, the oracle asked for another task) are made once.

- `open_run(settings, ...)` -> `Run`: checks the request, opens the executor through
  visagent.screen.open_executor (a sim scenario's world with its seed), the engine (visagent.loop.engines.open_engine
  from the settings, the scripted oracle for policy "oracle", or one the caller passes), builds the
  `AgentConfig.from_settings` and the `Agent` that writes the trace.
- `run.agent.run(run.task)` runs it, in whatever thread the front end likes.
- `finish_run(run, result)` judges the world (a sim scenario's success predicate and side effects, for the
  scenario's own task only: a typed task is not what the predicate tests) and writes the verdict into meta.json
  through the run's trace writer.
- `run.close()` closes what open_run opened (not an engine or executor the caller passed in).

Where the run acts is its `world`: an executor kind of visagent.core.settings.EXECUTOR_KINDS (settings.executor by
default). Only the sim has a judge today (`Run.judge`); a world with its own checker adds its case there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visagent.core.errors import ConfigError
from visagent.core.settings import Settings, validate_settings
from visagent.core.verdict import CLAIM_STATUSES

if TYPE_CHECKING:
    from engine.api import Engine
    from visagent.loop.agent import Agent, AgentConfig, RunResult
    from visagent.loop.events import StepEvent
    from visagent.screen.base import Executor
    from visagent.screen.seam import Screen

#: engine_factory(scenario or None, executor) -> Engine: called once the executor is open (the oracle reads its
#: world; a shared model ignores both). An engine from a factory belongs to the caller: `Run.close` keeps it.
EngineFactory = Callable[[Any, Any], Any]
#: Who judged a verdict (meta.json `verdict.by`).
JUDGED_BY = "scenario.is_success"
_POLICIES = ("model", "oracle")
_DEFAULT = object()  # trace_dir not given: settings.trace_dir


@dataclass(frozen=True)
class Verdict:
    """The world's verdict on a run: whether the goal is met (`line` says so in words) and the lasting changes
    the task did not ask for (None: not measured)."""

    success: bool
    line: str
    side_effects: tuple[str, ...] | None = None
    by: str = JUDGED_BY

    def to_meta(self) -> dict[str, Any]:
        """meta.json's `verdict` object."""
        data: dict[str, Any] = {"success": self.success, "by": self.by}
        if self.side_effects is not None:
            data["side_effects"] = list(self.side_effects)
        return data


@dataclass
class Run:
    """One assembled run. `world`: where it acts (an executor kind); `scenario`: the sim scenario or None;
    `before`: the sim world's state at the start (for side effects). Close it when done (`with` works too)."""

    settings: Settings
    world: str
    task: str
    scenario: Any
    executor: Executor
    engine: Engine
    config: AgentConfig
    agent: Agent
    meta: dict[str, Any]
    before: dict[str, Any] | None = None
    owns_engine: bool = False
    owns_executor: bool = False
    _verdict: Verdict | None = field(default=None, repr=False)
    _judged: bool = field(default=False, repr=False)

    @property
    def sim_world(self) -> Any:
        """The SimWorld the run acts on, or None off the sim."""
        return getattr(self.executor, "world", None)

    def judge(self, status: str | None = None) -> Verdict | None:
        """The world's verdict, judged once (later calls return the first answer): on the sim, for the
        scenario's own task, the scenario's predicate on the world and the side effects since the start. None
        when nothing can judge the run (no scenario, a typed task, a real screen). `status` is the run's own
        (the model's claim), named in a NOT-met line."""
        if self._judged:
            return self._verdict
        self._judged = True
        checked = world_check(self.scenario, self.sim_world, self.task, status)
        if checked is not None:
            from visagent.sim.side_effects import run_side_effects

            effects = run_side_effects(self.scenario, self.sim_world, self.before)
            self._verdict = Verdict(checked[0], checked[1], tuple(effects))
        return self._verdict

    def close(self) -> None:
        """Close the engine and the executor if open_run opened them. Idempotent enough: engines and executors
        close quietly twice."""
        try:
            if self.owns_engine:
                self.engine.close()
        finally:
            if self.owns_executor:
                self.executor.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def world_check(scenario: Any, world: Any, task: str, status: str | None = None) -> tuple[bool, str] | None:
    """After a run on the sim: (goal met, one line saying so) by the scenario's own predicate, for the line a
    `visagent run` or the dashboard shows under the run's `status`. A NOT-met line says the status is only the
    model's claim when that status claims success (`success`, `answered`). None when there is no scenario or
    world, or `task` is not the scenario's: a typed task is not what the predicate tests."""
    if scenario is None or world is None or task != scenario.instruction_for(world):
        return None
    ok = bool(scenario.is_success(world))
    if ok:
        return ok, "world check: the scenario's goal is met"
    claimed = " (the status above is the model's own claim)" if status in CLAIM_STATUSES else ""
    return ok, "world check: the scenario's goal is NOT met" + claimed


def oracle_engine(scenario: Any, executor: Any) -> Any:
    """The scripted OracleEngine playing `scenario`'s known solution on `executor`'s sim world (policy
    "oracle"; also an EngineFactory)."""
    from visagent.loop.scripted import OracleEngine

    return OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)


def open_world(world: str, scenario: Any = None, seed: int | None = None, *, monitor: int = 1,
               serial: str | None = None) -> tuple[Any, Any]:
    """(executor, scenario or None) through visagent.screen.open_executor. The sim opens `scenario` (an id or
    a Scenario; default: the first desktop scenario) with `seed` (default: the scenario's own); `monitor`
    (1-based) picks the desktop's screen, `serial` the Android device. Options that do not apply to `world` are
    refused. Raises ConfigError / ScenarioError / ExecutorError with one line."""
    from visagent.screen import open_executor
    from visagent.sim.scenarios import get_scenario

    if scenario and world != "sim":
        raise ConfigError(f"--scenario sets up the sim world; it does not apply to --executor {world}")
    if seed is not None and world != "sim":
        raise ConfigError(f"--seed sets up the sim world; it does not apply to --executor {world}")
    if serial and world != "android":
        raise ConfigError(f"--serial picks an Android device; it does not apply to --executor {world}")
    if monitor != 1 and world != "desktop":
        raise ConfigError(f"--monitor picks a desktop screen; it does not apply to --executor {world}")
    if isinstance(scenario, str):
        scenario = get_scenario(scenario)  # an unknown id fails here, before anything opens
    executor = open_executor(world, scenario=scenario, seed=seed, monitor=monitor, serial=serial)
    if scenario is None:
        sid = getattr(getattr(executor, "world", None), "scenario_id", None)
        scenario = get_scenario(sid) if sid else None
    return executor, scenario


def open_run(
    settings: Settings | None = None,
    *,
    world: str | None = None,
    task: str | None = None,
    scenario: Any = None,
    seed: int | None = None,
    monitor: int = 1,
    serial: str | None = None,
    policy: str = "model",
    engine: Engine | None = None,
    engine_factory: EngineFactory | None = None,
    executor: Executor | Screen | None = None,
    config: AgentConfig | None = None,
    auto_approve: bool = False,
    human_in_loop: bool = False,
    on_event: Callable[[StepEvent], None] | None = None,
    trace_dir: Any = _DEFAULT,
    run_id: str | None = None,
    run_meta: dict[str, Any] | None = None,
) -> Run:
    """Assemble one run; nothing has acted yet when it returns. See the module docstring.

    `settings` (default: Settings()) are validated again (a front end may have changed some, e.g. the
    dashboard's form). `world`: where to act (default settings.executor); `scenario` (id or Scenario; default
    settings.scenario, on the sim the first desktop scenario) and `seed` set up the sim world, `monitor` /
    `serial` pick the desktop screen / the phone. `task` defaults to the scenario's own. `executor`: an executor
    or a visagent.screen.seam.Screen the caller already holds (the agent drives that Screen, so its calls share
    the caller's worker thread; `Run.close` leaves it open; `Run.executor` is its backend). The engine:
    `engine` as given, else `engine_factory(scenario, executor)`, else the scripted oracle for `policy`
    "oracle", else visagent.loop.engines.open_engine(settings) (a server's `model_name` verified at once).
    `config`: the agent's configuration as given (evaluation's per-episode limits), else
    `AgentConfig.from_settings(settings, auto_approve=..., human_in_loop=...)`. Traces go under `trace_dir`
    (default settings.trace_dir; None: no trace); `run_meta` adds fields to meta.json's `executor` section.

    Raises ConfigError (bad settings, an option or policy that does not fit, no task), ScenarioError,
    ExecutorError, engine errors; whatever it opened is closed again first.
    """
    from visagent.loop.agent import Agent, AgentConfig

    settings = settings or Settings()
    validate_settings(settings)
    if policy not in _POLICIES:
        raise ConfigError(f"policy must be 'model' or 'oracle', got {policy!r}")
    world = world or settings.executor
    if scenario is None and executor is None:
        scenario = settings.scenario
    owns_executor = executor is None
    drive: Any = executor  # what the agent drives: a Screen given stays the one (its worker thread is shared)
    if executor is None:
        executor, scenario = open_world(world, scenario, seed, monitor=monitor, serial=serial)
        drive = executor
    else:
        from visagent.screen.seam import Screen

        if isinstance(executor, Screen):
            executor = executor.backend
    if isinstance(scenario, str):
        from visagent.sim.scenarios import get_scenario

        scenario = get_scenario(scenario)
    owns_engine = False
    try:
        sim = getattr(executor, "world", None)
        if not task and scenario is not None:
            task = scenario.instruction_for(sim)
        if not task or not task.strip():
            raise ConfigError("no task given; pass TASK or --scenario ID")
        if engine is None and engine_factory is not None:
            engine = engine_factory(scenario, executor)
        elif engine is None and policy == "oracle":
            if scenario is None or sim is None:
                raise ConfigError("the scripted oracle (--policy oracle) plays sim scenarios; it needs --executor "
                                  "sim and --scenario ID")
            own = scenario.instruction_for(sim)
            if task != own:  # it would play the scenario's script and "succeed" at another task
                raise ConfigError(f"the scripted oracle plays scenario {scenario.id}'s own task ({own!r}), not "
                                  f"{task!r}; give that task (or none), pick the scenario whose task it is "
                                  "(`visagent scenarios list`), or use a model")
            engine, owns_engine = oracle_engine(scenario, executor), True
        elif engine is None:
            from visagent.loop.engines import open_engine

            engine, owns_engine = open_engine(settings), True
            if settings.model_name and hasattr(engine, "verify_model"):
                engine.verify_model()  # a misspelt name fails here, not at the first step with a trace left
        if config is None:
            config = AgentConfig.from_settings(settings, auto_approve=auto_approve, human_in_loop=human_in_loop)
        meta = _executor_meta(world, executor, scenario)
        meta.update(run_meta or {})
        root = settings.trace_dir if trace_dir is _DEFAULT else trace_dir
        agent = Agent(engine, drive, config, trace_root=None if root is None else Path(root),
                      on_event=on_event, run_meta=meta, run_id=run_id)
        before = sim.state() if sim is not None else None  # for the side effects at the end
    except BaseException:
        if owns_engine and engine is not None:
            engine.close()
        if owns_executor:
            executor.close()
        raise
    return Run(settings=settings, world=world, task=task, scenario=scenario, executor=executor, engine=engine,
               config=config, agent=agent, meta=meta, before=before, owns_engine=owns_engine,
               owns_executor=owns_executor)


def _executor_meta(world: str, executor: Any, scenario: Any) -> dict[str, Any]:
    """meta.json `executor` fields naming what the run drove: the scenario and seed on the sim, the phone or
    screen otherwise."""
    sim = getattr(executor, "world", None)
    if scenario is not None and sim is not None:
        return {"scenario": scenario.id, "seed": sim.seed}
    meta: dict[str, Any] = {}
    if world != "sim":
        for key in ("serial", "display", "monitor"):
            if getattr(executor, key, None) is not None:
                meta[key] = getattr(executor, key)
    return meta


def finish_run(run: Run, result: RunResult) -> Verdict | None:
    """After `run.agent.run`: judge the world (`Run.judge`) and write the verdict into the trace's meta.json
    through the run's trace writer, so `visagent report` shows it and `visagent export` keeps runs that reached
    the goal. Returns the verdict, or None when nothing judges this run. Raises TraceError when meta.json cannot
    be written."""
    verdict = run.judge(result.status)
    trace = run.agent.trace
    if verdict is not None and trace is not None:
        trace.record_verdict(verdict.to_meta())
    return verdict

