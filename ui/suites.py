"""Scenario suites from the dashboard: visagent.traces.evaluate in a background thread, with progress the page polls.

A suite's world is the sim or real-desktop (visagent.realworld: real programs, one private Xvfb per episode), as
`visagent eval --world real-desktop` picks it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from ui.engines import EngineCache, ModelChoice
from visagent.core.errors import ConfigError, VisagentError
from visagent.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteRequest:
    """A suite: scenarios of `world` (sim or real-desktop) and `split` ("" = any) carrying any of `tags`, ×
    `seeds` seeds (a real-desktop scenario has none: each seed is one more episode of it), played by `model`."""

    model: ModelChoice
    split: str = ""
    tags: tuple[str, ...] = ()
    seeds: int = 1
    workers: int = 2
    max_steps: int | None = None
    ray: str = ""  # a Ray address (visagent/traces/ray_eval.py): each episode a task on that cluster; "" runs here
    world: str = "sim"  # or "real-desktop"


@dataclass(frozen=True)
class SuiteSnapshot:
    id: str
    total: int
    done: int
    successes: int
    rows: tuple[tuple[Any, ...], ...]  # scenario, seed, success, status, steps, seconds, trace
    finished: bool
    message: str
    elapsed: float
    per_tag: tuple[tuple[str, int, int], ...] = ()  # (tag, goal met, episodes), tags sorted


class SuiteRun:
    """One running (or finished) suite. Thread-safe."""

    def __init__(self, suite_id: str, request: SuiteRequest, total: int) -> None:
        self.id = suite_id
        self.request = request
        self.total = total
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rows: list[tuple[Any, ...]] = []
        self._successes = 0
        self._tags: dict[str, list[int]] = {}
        self._finished = False
        self._message = "starting…"
        self._started = time.monotonic()
        self._ended: float | None = None

    def snapshot(self) -> SuiteSnapshot:
        with self._lock:
            end = self._ended if self._ended is not None else time.monotonic()
            per_tag = tuple((tag, won, n) for tag, (won, n) in sorted(self._tags.items()))
            return SuiteSnapshot(self.id, self.total, len(self._rows), self._successes, tuple(self._rows),
                                 self._finished, self._message, end - self._started, per_tag)

    def on_episode(self, outcome: Any) -> None:
        if outcome.trace:  # each row links its episode's HTML report (written here, in the episode's thread)
            from visagent.traces.report import write_report

            try:
                write_report(outcome.trace)
            except (VisagentError, OSError) as exc:
                log.warning("no HTML report for %s: %s", outcome.trace, exc)
        with self._lock:
            self._successes += int(bool(outcome.success))
            for tag in outcome.tags:
                tally = self._tags.setdefault(str(tag), [0, 0])
                tally[0] += int(bool(outcome.success))
                tally[1] += 1
            self._rows.append((outcome.scenario, outcome.seed, "✔" if outcome.success else "✘", outcome.status,
                               outcome.steps, round(outcome.seconds, 2), outcome.trace or ""))
            self._message = f"running: {len(self._rows)}/{self.total} episodes"

    def set_message(self, text: str) -> None:
        with self._lock:
            self._message = text

    def finish(self, message: str) -> None:
        with self._lock:
            self._finished = True
            self._message = message
            self._ended = time.monotonic()


WORLDS = ("sim", "real-desktop")


def select_suite(request: SuiteRequest) -> list[Any]:
    """The suite's scenarios, selected as `visagent eval [--world real-desktop]` selects them. For real-desktop,
    every program they need is checked first: a missing Debian package is one line, before any episode starts.
    Raises ConfigError / ScenarioError."""
    split, tags = request.split or None, list(request.tags) or None
    if request.world == "sim":
        from visagent.commands.eval import select_scenarios

        return select_scenarios([], split, tags)
    if request.world != "real-desktop":
        raise ConfigError(f"world must be {' or '.join(WORLDS)}, got {request.world!r}")
    from visagent.realworld.episode import select

    scenarios = select([], split, tags)
    for scenario in scenarios:
        scenario.require_programs()  # MissingProgram: the package and the setup command
    return scenarios


class SuiteRunner:
    """Starts suites; at most one at a time (they share the machine's cores and the model)."""

    def __init__(self, settings: Settings, engines: EngineCache, trace_root: Path) -> None:
        self.settings = settings
        self.engines = engines
        self.trace_root = trace_root
        self._lock = threading.Lock()
        self._current: SuiteRun | None = None
        self._count = 0

    def current(self) -> SuiteRun | None:
        with self._lock:
            return self._current

    def start(self, request: SuiteRequest) -> SuiteRun:
        """Start a suite in a background thread. Raises ConfigError (no matching scenario, bad numbers, a
        suite already running)."""
        if request.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {request.seeds}")
        if request.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {request.workers}")
        scenarios = select_suite(request)
        with self._lock:
            if self._current is not None and not self._current.snapshot().finished:
                raise ConfigError(f"suite {self._current.id} is still running; cancel it or wait for it to end")
            self._count += 1
            suite = SuiteRun(f"suite-{self._count}", request, len(scenarios) * request.seeds)
            self._current = suite
        suite.thread = threading.Thread(target=self._work, args=(suite, scenarios), daemon=True,
                                        name=f"visagent-ui-{suite.id}")
        suite.thread.start()
        return suite

    def _work(self, suite: SuiteRun, scenarios: list[Any]) -> None:
        from visagent.loop.agent import AgentConfig
        from visagent.traces.evaluate import eval_trace_dir, evaluate, oracle_factory

        req = suite.request
        try:
            if req.ray:
                self._work_on_ray(suite, scenarios)
                return
            if req.model.kind == "oracle":
                factory, label = oracle_factory, "policy:oracle"
            else:
                suite.set_message(f"loading model {req.model.label}…")
                engine = self.engines.get(req.model)
                factory, label = (lambda scenario, executor: engine), req.model.label
            config = AgentConfig.from_settings(self.settings, auto_approve=True)
            root = eval_trace_dir(self.trace_root)
            suite.set_message(f"running: 0/{suite.total} episodes")
            report = evaluate(scenarios, factory, seeds=list(range(req.seeds)), workers=req.workers,
                              agent_config=config, max_steps=req.max_steps, trace_dir=root, model=label,
                              split=req.split or None, on_episode=suite.on_episode, cancel=suite.cancel)
            done = len(report.episodes)
            cancelled = " (cancelled)" if suite.cancel.is_set() and done < suite.total else ""
            suite.finish(f"done{cancelled}: {sum(e.success for e in report.episodes)}/{done} succeeded, "
                         f"success rate {report.success_rate:.0%}, {report.wall_s:.1f} s; traces in {root}")
        except (VisagentError, EngineError, ValueError) as exc:
            suite.finish(f"error: {exc}")
        except Exception as exc:  # a bug: shown on the page, traceback in the log
            log.exception("suite %s failed", suite.id)
            suite.finish(f"internal error: {type(exc).__name__}: {exc}")

    def _work_on_ray(self, suite: SuiteRun, scenarios: list[Any]) -> None:
        """The suite as Ray tasks on the cluster at `request.ray` (the oracle, or the model when it is served
        over HTTP); same rows and message as a suite run here. Raises VisagentError for the page to show."""
        import dataclasses

        from visagent.loop.agent import AgentConfig
        from visagent.traces.evaluate import eval_trace_dir
        from visagent.traces.ray_eval import EngineSpec, check_address, ray_evaluate

        req = suite.request
        address = check_address(req.ray.strip())
        if req.model.kind == "oracle":
            spec = EngineSpec(policy="oracle")
        else:
            chosen = {"model_name": req.model.model_name, "provider": req.model.provider, "api_key": req.model.api_key}
            settings = dataclasses.replace(self.settings, model=req.model.spec,
                                           **{k: v for k, v in chosen.items() if v is not None})
            spec = EngineSpec.for_eval(settings, None)
        config = AgentConfig.from_settings(self.settings, auto_approve=True)
        root = eval_trace_dir(self.trace_root)
        suite.set_message(f"running on Ray at {address}: 0/{suite.total} episodes")
        report = ray_evaluate(scenarios, spec, address=address, seeds=list(range(req.seeds)), agent_config=config,
                              max_steps=req.max_steps, trace_dir=root, traces=self.settings.ray_traces,
                              split=req.split or None, on_episode=suite.on_episode, cancel=suite.cancel)
        done = len(report.episodes)
        cancelled = " (cancelled)" if suite.cancel.is_set() and done < suite.total else ""
        suite.finish(f"done{cancelled} on Ray: {sum(e.success for e in report.episodes)}/{done} succeeded, "
                     f"success rate {report.success_rate:.0%}, {report.wall_s:.1f} s; traces in {root}")
