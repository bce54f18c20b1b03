"""The dashboard's run manager: one Agent per executor, each in a background thread, its events buffered.

The page never waits on the model: `RunManager.start()` returns at once; the agent (and the model load,
when the model is not loaded yet) run in a thread, and every event the loop emits updates a `LiveRun`
buffer under a lock. The page polls `LiveRun.snapshot()` (a consistent copy) a few times a second.
Only one run drives a given executor at a time (`ExecutorBusy` otherwise; a run that has just finished and is
still closing its executor is waited for, not reported busy).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from ui.engines import EngineCache, ModelChoice, engine_loader
from ui.live import LiveRun
from visagent.core.errors import ConfigError, VisagentError
from visagent.traces.evaluate import record_verdict, world_check
from visagent.core.settings import Settings

log = logging.getLogger(__name__)

EXECUTOR_KINDS = ("sim", "desktop", "android")


class ExecutorBusy(VisagentError):
    """Another run is driving the executor a new run asked for."""


@dataclass(frozen=True)
class RunRequest:
    """Everything the Run view's form says. `seed` None: the scenario's own seed."""

    task: str
    model: ModelChoice
    executor: str = "sim"
    scenario: str | None = None
    seed: int | None = None
    monitor: int | None = None
    serial: str | None = None
    thinking: bool = False
    max_steps: int = 15
    history_images: int = 4
    settle: bool = True

    def validate(self) -> None:
        """Raises ConfigError naming the bad field and the fix."""
        if not self.task.strip():
            raise ConfigError("the task is empty; say what the agent should do")
        if self.executor not in EXECUTOR_KINDS:
            raise ConfigError(f"unknown executor {self.executor!r}; choose sim, desktop or android")
        if self.executor == "sim" and not self.scenario:
            raise ConfigError("the sim executor needs a scenario; pick one from the list")
        if self.model.kind == "oracle" and self.executor != "sim":
            raise ConfigError("the scripted oracle only plays sim scenarios; pick the sim executor or a model")
        if self.max_steps < 1:
            raise ConfigError(f"max steps must be at least 1, got {self.max_steps}")
        if self.history_images < 1:
            raise ConfigError(f"history length must be at least 1, got {self.history_images}")

    @property
    def executor_key(self) -> str:
        """What must not be driven twice: a sim scenario's world, the desktop's mouse, one phone."""
        if self.executor == "sim":
            return f"sim:{self.scenario}"
        if self.executor == "desktop":
            return "desktop"  # one mouse and keyboard for every monitor
        return f"android:{self.serial or 'default'}"

    @property
    def executor_label(self) -> str:
        if self.executor == "sim":
            return f"sim · {self.scenario}"
        if self.executor == "desktop":
            return f"desktop · monitor {self.monitor or 1}"
        return f"android · {self.serial or 'default device'}"


@dataclass
class RunManager:
    """Starts runs and keeps them. `settings`: the resolved settings (safety, max_seconds, device, trace_dir).

    Runs stay listed after they end (newest last) so a reloaded page can show the last one.
    """

    settings: Settings = field(default_factory=Settings)
    engines: EngineCache | None = None
    trace_root: Path | None = None
    _runs: dict[str, LiveRun] = field(default_factory=dict)
    _busy: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.engines is None:
            s = self.settings
            self.engines = EngineCache(engine_loader(s))
        if self.trace_root is None:
            self.trace_root = Path(self.settings.trace_dir)

    def start(self, request: RunRequest) -> LiveRun:
        """Start a run in a background thread and return its handle at once.

        Raises ConfigError for a bad form, ExecutorBusy when another run drives that executor.
        """
        request.validate()
        self._await_cleanup(request.executor_key)
        with self._lock:
            holder = self._busy.get(request.executor_key)
            if holder is not None:
                raise ExecutorBusy(
                    f"{request.executor_label} is already driven by run {holder}; stop that run first "
                    "(only one run may drive an executor at a time)")
            run = LiveRun(_fresh_id(self._runs), request)  # the trace's own id: the run's one name everywhere
            self._runs[run.id] = run
            self._busy[request.executor_key] = run.id
        run.thread = threading.Thread(target=self._work, args=(run,), name=f"visagent-ui-{run.id}", daemon=True)
        run.thread.start()
        return run

    def _await_cleanup(self, executor_key: str, timeout_s: float = 10.0) -> None:
        """A run shows as finished when its loop ends; its thread then writes the world check and closes the
        executor before letting go of it. Start pressed in that moment waits for it instead of failing."""
        with self._lock:
            holder = self._runs.get(self._busy.get(executor_key) or "")
        thread = None if holder is None else holder.thread
        if thread is not None and thread is not threading.current_thread() and not holder.snapshot().active:
            thread.join(timeout_s)

    def get(self, run_id: str | None) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id or "")

    def latest(self) -> LiveRun | None:
        with self._lock:
            return next(reversed(self._runs.values()), None)

    def active(self) -> list[LiveRun]:
        with self._lock:
            runs = list(self._runs.values())
        return [r for r in runs if r.snapshot().active]

    def warm(self, choice: ModelChoice) -> threading.Thread | None:
        """Load a model in the background so the first run starts sooner (errors are logged, and shown
        again when a run asks for that model)."""
        if choice.kind == "oracle":
            return None

        def load() -> None:
            try:
                self.engines.get(choice)
            except (EngineError, VisagentError, OSError) as exc:
                log.warning("could not preload model %s: %s", choice.label, exc)

        thread = threading.Thread(target=load, name="visagent-ui-warm", daemon=True)
        thread.start()
        return thread

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every run, wait for their threads, close the engines."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.control("stop")
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout_s)
        self.engines.close()

    # -- the run thread -----------------------------------------------------------------------------
    def _work(self, run: LiveRun) -> None:
        executor = None
        engine = None
        owned_engine = False
        req = run.request
        try:
            run.set_state("opening the executor")
            executor, scenario = open_executor_for(req)
            if req.model.kind == "oracle":
                from visagent.loop.scripted import OracleEngine

                own = scenario.instruction_for(executor.world)
                if req.task != own:  # it would play the scenario's script and "succeed" at another task
                    raise ConfigError(f"the scripted oracle plays {scenario.id}'s own task ({own!r}), not "
                                      f"{req.task!r}; pick the scenario again to restore its task, or pick a model")

                engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
                owned_engine = True
            else:
                if not self.engines.loaded(req.model):
                    run.set_state("loading the model")
                    run.note(f"loading model {req.model.label} (first use)…")
                engine = self.engines.get(req.model)
            if run.stop_requested():
                run.fail("stopped by the user before the first step", status="stopped")
                return
            agent = self._build_agent(run, engine, executor, scenario)
            run.attach(agent)
            world = getattr(executor, "world", None)
            before = world.state() if world is not None else None
            result = agent.run(req.task)
            checked = world_check(scenario, world, req.task, result.status)
            effects: list[str] = []
            if checked is not None:
                from visagent.sim.side_effects import run_side_effects

                effects = run_side_effects(scenario, world, before)
                if result.trace_dir is not None:  # written first: a page (or test) that sees the line finds it
                    record_verdict(result.trace_dir, checked[0], effects)
            report = _write_report(result.trace_dir)
            # the finished line says what the model claimed; this, what the world shows
            run.conclude(None if checked is None else checked[0], None if checked is None else checked[1], report,
                         effects)
        except (VisagentError, EngineError) as exc:
            run.fail(str(exc))
        except Exception as exc:  # a bug: shown on the page and logged with its traceback
            log.exception("dashboard run %s failed", run.id)
            run.fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if owned_engine and engine is not None:
                engine.close()
            if executor is not None:
                try:
                    executor.close()
                except Exception:  # noqa: BLE001 - closing must not hide the run's outcome; logged
                    log.exception("closing executor of %s failed", run.id)
            with self._lock:
                if self._busy.get(req.executor_key) == run.id:
                    del self._busy[req.executor_key]

    def _build_agent(self, run: LiveRun, engine: Any, executor: Any, scenario: Any) -> Any:
        from visagent.loop.agent import Agent, AgentConfig

        req = run.request
        s = self.settings
        # The CLI's configuration (sampling per mode, thinking budget, point source) with the page's choices.
        config = AgentConfig.from_settings(s, max_steps=req.max_steps, history_images=req.history_images,
                                           thinking=req.thinking, settle=req.settle, human_in_loop=True)
        meta: dict[str, Any] = {}
        if scenario is not None:
            meta = {"scenario": scenario.id, "seed": getattr(executor, "seed", req.seed)}
        return Agent(engine, executor, config, trace_root=self.trace_root, on_event=run.on_event, run_meta=meta,
                     run_id=run.id)


def _fresh_id(taken: dict[str, Any]) -> str:
    from visagent.core.trace import new_run_id

    run_id = new_run_id()
    while run_id in taken:  # two Starts in one second with the same 6 random hex digits
        run_id = new_run_id()
    return run_id


def _write_report(trace_dir: str | Path | None) -> str | None:
    """`<trace>/report.html` for the end-of-run link, or None (no trace, or it could not be written: logged)."""
    if trace_dir is None:
        return None
    from visagent.traces.report import write_report

    try:
        return str(write_report(trace_dir))
    except (VisagentError, OSError) as exc:
        log.warning("no HTML report for %s: %s", trace_dir, exc)
        return None


def open_executor_for(request: RunRequest) -> tuple[Any, Any]:
    """(executor, scenario or None) for a request. Raises ConfigError / ScenarioError / ExecutorError."""
    if request.executor == "sim":
        from visagent.screen.simulated import SimExecutor
        from visagent.sim.scenarios import get_scenario

        scenario = get_scenario(str(request.scenario))
        seed = scenario.seed if request.seed is None else int(request.seed)
        executor = SimExecutor(scenario.make_world(seed))
        executor.seed = seed  # type: ignore[attr-defined]  # recorded in meta.json for replay
        return executor, scenario
    import visagent.screen as executors

    opener = getattr(executors, "open_executor", None)
    if opener is None:
        raise ConfigError(f"the {request.executor} executor is not available in this build; use sim")
    if request.executor == "desktop":
        return opener("desktop", monitor=request.monitor or 1), None
    return opener("android", serial=request.serial), None
