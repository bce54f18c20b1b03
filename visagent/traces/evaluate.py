"""Evaluation: run the agent on sim scenarios × seeds in parallel and measure how often it really succeeds.

Each episode is one run assembled by visagent.loop.runs.open_run: its own world (the scenario's, with the
episode's seed), its own `SimExecutor` and its own `Agent`; success is the world's verdict after the run
(`scenario.is_success(world)`, visagent.loop.runs.finish_run), never the model's own claim.

Parallelism: threads. An in-process model is one shared object whose `generate` is serialised behind its
own lock, so one copy serves every worker (one copy per process would multiply memory and load time by the
worker count, which rules out anything but the tiny checkpoint); while one episode waits on the model, other
threads render their sim worlds, parse and record, and torch releases the GIL inside its kernels. Against a
remote server (vLLM, SGLang, `visagent serve`) the threads are truly concurrent requests the server batches.
Scripted engines (the oracle) are built per episode and cost nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.loop.agent import Agent, AgentConfig
from visagent.loop.events import StepFinished
from visagent.loop.runs import oracle_engine as oracle_factory  # noqa: F401 - the oracle's EngineFactory

log = logging.getLogger(__name__)

#: Failed episodes listed under the summary table (the JSON file has them all).
FAILURES_SHOWN = 10
#: engine_factory(scenario, executor) -> Engine: a shared model ignores both; the oracle reads
#: `executor.world` (the episode's SimWorld) and `executor.geometry()`.
EngineFactory = Callable[[Any, Any], Any]


@dataclass
class EpisodeOutcome:
    """One episode. Times in seconds (wall clock); tokens summed over the episode's steps."""

    scenario: str
    seed: int
    split: str
    tags: list[str]
    success: bool
    status: str
    reason: str
    steps: int
    seconds: float
    step_seconds: float  # sum of the steps' recorded total time
    prompt_tokens: int
    generated_tokens: int
    trace: str | None
    error: str | None = None
    side_effects: list[str] = field(default_factory=list)  # lasting changes the task did not ask for

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["step_seconds"] = round(self.step_seconds, 3)
        return data


@dataclass
class EvalReport:
    """All episodes of one evaluation with the aggregates the summary table and JSON file show."""

    model: str
    split: str | None
    episodes: list[EpisodeOutcome] = field(default_factory=list)
    workers: int = 1
    wall_s: float = 0.0

    @property
    def success_rate(self) -> float:
        return _rate(self.episodes)

    def per_tag(self) -> dict[str, dict[str, float | int]]:
        """{tag: {"episodes", "successes", "success_rate"}} over the episodes carrying that tag."""
        tags = sorted({t for e in self.episodes for t in e.tags})
        out: dict[str, dict[str, float | int]] = {}
        for tag in tags:
            group = [e for e in self.episodes if tag in e.tags]
            out[tag] = {"episodes": len(group), "successes": sum(e.success for e in group),
                        "success_rate": _rate(group)}
        return out

    def per_scenario(self) -> dict[str, dict[str, float | int]]:
        names = sorted({e.scenario for e in self.episodes})
        out: dict[str, dict[str, float | int]] = {}
        for name in names:
            group = [e for e in self.episodes if e.scenario == name]
            out[name] = {"episodes": len(group), "successes": sum(e.success for e in group),
                         "success_rate": _rate(group), "mean_steps": _mean([e.steps for e in group])}
        return out

    @property
    def mean_steps(self) -> float:
        return _mean([e.steps for e in self.episodes])

    @property
    def seconds_per_step(self) -> float:
        steps = sum(e.steps for e in self.episodes)
        return sum(e.step_seconds for e in self.episodes) / steps if steps else 0.0

    @property
    def tokens_per_step(self) -> dict[str, float]:
        steps = sum(e.steps for e in self.episodes)
        if not steps:
            return {"prompt": 0.0, "generated": 0.0}
        return {"prompt": sum(e.prompt_tokens for e in self.episodes) / steps,
                "generated": sum(e.generated_tokens for e in self.episodes) / steps}

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "split": self.split, "episodes_total": len(self.episodes),
            "success_rate": self.success_rate, "successes": sum(e.success for e in self.episodes),
            "mean_steps": self.mean_steps, "seconds_per_step": self.seconds_per_step,
            "tokens_per_step": self.tokens_per_step, "workers": self.workers, "wall_s": round(self.wall_s, 3),
            "per_tag": self.per_tag(), "per_scenario": self.per_scenario(),
            "episodes": [e.to_dict() for e in self.episodes],
        }

    def summary_table(self) -> str:
        """A plain-text table: one row per scenario, then per tag, then the overall line."""
        head = f"{'scenario / tag':<34} {'episodes':>8} {'goal met':>8} {'mean steps':>10}"
        lines = [head, "-" * len(head)]
        for name, row in self.per_scenario().items():
            lines.append(f"{name:<34} {row['episodes']:>8} {row['success_rate']:>8.0%} {row['mean_steps']:>10.1f}")
        tags = self.per_tag()
        if tags:
            lines.append("-" * len(head))
            for tag, row in tags.items():  # with a bar: the per-tag chart
                lines.append(f"{'tag ' + tag:<34} {row['episodes']:>8} {row['success_rate']:>8.0%} {'':>10}  "
                             + tag_bar(float(row["success_rate"])))
        lines.append("-" * len(head))
        tok = self.tokens_per_step
        lines.append(f"{'overall':<34} {len(self.episodes):>8} {self.success_rate:>8.0%} {self.mean_steps:>10.1f}")
        failed = [e for e in self.episodes if not e.success]
        for e in failed[:FAILURES_SHOWN]:
            lines.append(f"failed: {e.scenario} seed {e.seed}: {failure_words(e.status)} ({e.reason})"
                         + (f" {e.trace}" if e.trace else ""))
        if len(failed) > FAILURES_SHOWN:
            lines.append(f"... and {len(failed) - FAILURES_SHOWN} more failed episodes (see the JSON file)")
        lines.append(f"time per step {self.seconds_per_step:.3f} s; tokens per step: prompt {tok['prompt']:.0f}, "
                     f"generated {tok['generated']:.1f}; wall {self.wall_s:.1f} s with {self.workers} worker(s); "
                     f"model {self.model}" + (f"; split {self.split}" if self.split else ""))
        return "\n".join(lines)


def tag_bar(rate: float, width: int = 20) -> str:
    """`██████░░░░…` — a success rate (0..1) as a text bar of `width` cells."""
    filled = round(max(0.0, min(1.0, rate)) * width)
    return "█" * filled + "░" * (width - filled)


def failure_words(status: str) -> str:
    """Why an episode counts as failed, keeping the world's verdict apart from the model's claim:
    `goal NOT met (model claimed success)` or `goal NOT met; the run ended max_steps`."""
    from visagent.core.verdict import CLAIM_STATUSES

    if status in CLAIM_STATUSES:
        return f"goal NOT met (model claimed {status})"
    return f"goal NOT met; the run ended {status}"


def _rate(episodes: Sequence[EpisodeOutcome]) -> float:
    return sum(e.success for e in episodes) / len(episodes) if episodes else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate(
    scenarios: Iterable[Any],
    engine_factory: EngineFactory,
    *,
    seeds: Sequence[int] = (0,),
    workers: int = 1,
    agent_config: AgentConfig | None = None,
    max_steps: int | None = None,
    trace_dir: str | Path | None = None,
    model: str = "",
    split: str | None = None,
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
    cancel: threading.Event | None = None,
) -> EvalReport:
    """Run every scenario × seed as one episode on `workers` threads; returns the report (episodes in order).

    `engine_factory(scenario, executor)` gives the engine for one episode (return one shared engine for a model).
    `max_steps` is the step limit of every episode (None: each scenario's own `max_steps`). Traces go
    under `trace_dir` (None: no traces).
    `on_episode` is called from the worker thread as each episode ends (progress bars, dashboards).
    Setting `cancel` stops the running episodes (at their next step) and skips the others; episodes cut
    short are left out of the report. Raises ValueError for workers < 1 or no scenarios.
    An episode that fails with an unexpected exception is recorded as a failure with the error, not raised.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    scenario_list = list(scenarios)
    if not scenario_list:
        raise ValueError("no scenarios to evaluate; check the ids, --split and --tags")
    config = agent_config or AgentConfig()
    jobs = episode_jobs(scenario_list, seeds)
    start = time.perf_counter()
    results: dict[int, EpisodeOutcome] = {}

    live = _LiveAgents()

    def one(index: int, scenario: Any, seed: int) -> tuple[int, EpisodeOutcome | None]:
        if live.stopping or (cancel is not None and cancel.is_set()):
            return index, None
        outcome = run_episode(scenario, seed, engine_factory, episode_config(scenario, config, max_steps),
                              trace_dir=trace_dir, live=live)
        if live.stopping and outcome.status == "stopped":
            return index, None  # cut short by the cancel: not a result
        if on_episode is not None:
            on_episode(outcome)
        return index, outcome

    finished = threading.Event()
    if cancel is not None:  # a cancel also stops the episodes already running, within one step
        threading.Thread(target=_stop_on_cancel, args=(cancel, finished, live), daemon=True,
                         name="eval-cancel").start()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval") as pool:
            futures = [pool.submit(one, i, sc, seed) for i, (sc, seed) in enumerate(jobs)]
            try:
                for future in as_completed(futures):
                    index, outcome = future.result()
                    if outcome is not None:
                        results[index] = outcome
            except BaseException:  # Ctrl-C (or a bug in a callback): stop the running agents, start no more
                live.stop_all()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        finished.set()
    return collect_report(results, model=model, split=split, workers=workers, wall_s=time.perf_counter() - start)


def episode_jobs(scenarios: Sequence[Any], seeds: Sequence[int]) -> list[tuple[Any, int]]:
    """Every (scenario, seed) episode of an evaluation, in report order (scenario-major); the local and
    the Ray eval (visagent/traces/ray_eval.py) both number episodes by this list."""
    return [(sc, int(seed)) for sc in scenarios for seed in seeds]


def episode_config(scenario: Any, config: AgentConfig, max_steps: int | None) -> AgentConfig:
    """`config` with one episode's step limit: `max_steps` when given, else the scenario's own."""
    limit = max_steps if max_steps is not None else getattr(scenario, "max_steps", None) or config.max_steps
    return dataclasses.replace(config, max_steps=int(limit))


def collect_report(results: dict[int, EpisodeOutcome], *, model: str, split: str | None, workers: int,
                   wall_s: float) -> EvalReport:
    """The report of the episodes that finished ({job index: outcome}), in job order."""
    return EvalReport(model=model, split=split, episodes=[results[i] for i in sorted(results)], workers=workers,
                      wall_s=wall_s)


class _LiveAgents:
    """The agents running right now, so a cancel can stop them (Agent.stop is thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._agents: set[Agent] = set()
        self.stopping = False

    def add(self, agent: Agent) -> None:
        with self._lock:
            self._agents.add(agent)
            if self.stopping:
                agent.stop()

    def discard(self, agent: Agent) -> None:
        with self._lock:
            self._agents.discard(agent)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            for agent in self._agents:
                agent.stop()


def _stop_on_cancel(cancel: threading.Event, finished: threading.Event, live: _LiveAgents) -> None:
    while not finished.wait(0.1):
        if cancel.is_set():
            live.stop_all()
            return


def run_episode(
    scenario: Any,
    seed: int,
    engine_factory: EngineFactory,
    config: AgentConfig,
    *,
    trace_dir: str | Path | None = None,
    live: _LiveAgents | None = None,
) -> EpisodeOutcome:
    """One episode: fresh world + SimExecutor + Agent (visagent.loop.runs.open_run); success judged on the world
    after the run. (`live`: evaluate's registry of running agents, for cancelling.)"""
    from visagent.loop.runs import finish_run, open_run

    tags = scenario_tags(scenario)
    split = str(getattr(scenario, "split", ""))
    steps: list[dict[str, Any]] = []
    started = time.perf_counter()

    def on_event(event: Any) -> None:
        if isinstance(event, StepFinished):
            steps.append(event.record)

    try:
        own_world = hasattr(scenario, "open_executor")  # a real-desktop scenario: its own display, no seeds
        with open_run(world="sim", scenario=scenario, seed=None if own_world else seed, engine_factory=engine_factory,
                      config=config,
                      on_event=on_event, trace_dir=trace_dir, run_meta={"split": split}) as run:
            if live is not None:
                live.add(run.agent)
            try:
                result = run.agent.run(run.task)
            finally:
                if live is not None:
                    live.discard(run.agent)
            verdict = finish_run(run, result)  # the scenario's own task on its own world: always judged
            success = verdict is not None and verdict.success
            effects = list(verdict.side_effects or ()) if verdict is not None else []
    except Exception as exc:  # noqa: BLE001 - one broken episode is recorded, the evaluation goes on
        log.exception("episode %s seed %s failed", getattr(scenario, "id", scenario), seed)
        return EpisodeOutcome(
            scenario=str(getattr(scenario, "id", scenario)), seed=seed, split=split, tags=tags, success=False,
            status="error", reason=f"{type(exc).__name__}: {exc}", steps=len(steps),
            seconds=time.perf_counter() - started, step_seconds=_sum(steps, "timings", "total"),
            prompt_tokens=int(_sum(steps, "prompt", "tokens")),
            generated_tokens=int(_sum(steps, "model", "generated_tokens")), trace=None,
            error=f"{type(exc).__name__}: {exc}")
    return EpisodeOutcome(
        scenario=scenario.id, seed=seed, split=split, tags=tags, success=success, status=result.status,
        reason=result.reason, steps=result.steps, seconds=time.perf_counter() - started,
        step_seconds=_sum(steps, "timings", "total"), prompt_tokens=int(_sum(steps, "prompt", "tokens")),
        generated_tokens=int(_sum(steps, "model", "generated_tokens")),
        trace=None if result.trace_dir is None else str(result.trace_dir), side_effects=effects)


def scenario_tags(scenario: Any) -> list[str]:
    """A scenario's tags as "key:value" strings (e.g. "difficulty:easy", "app:settings")."""
    from visagent.sim.scenarios import tag_strings

    return tag_strings(scenario)


def _sum(records: list[dict[str, Any]], section: str, key: str) -> float:
    total = 0.0
    for rec in records:
        value = (rec.get(section) or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += float(value)
    return total


def eval_trace_dir(root: str | Path) -> Path:
    """A fresh `<root>/eval-<UTC stamp>` directory name for one evaluation's traces."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"eval-{stamp}"
