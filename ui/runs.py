"""The dashboard's run manager: one Agent per executor, each in a background thread, its events buffered.

The page never waits on the model: `RunManager.start()` returns at once; the agent (and the model load,
when the model is not loaded yet) run in a thread, and every event the loop emits updates a `LiveRun`
buffer under a lock. The page polls `LiveRun.snapshot()` (a consistent copy) a few times a second.
Only one run drives a given executor at a time (`ExecutorBusy` otherwise; a run that has just finished and is
still closing its executor is waited for, not reported busy). A real-desktop scenario's run starts a display and
programs of its own (visagent.realworld), so such runs never wait for one another; a missing Debian program is
refused at Start with one line.
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
from ui.run_request import RunRequest
from visagent.core.errors import VisagentError
from visagent.core.settings import Settings

log = logging.getLogger(__name__)


class ExecutorBusy(VisagentError):
    """Another run is driving the executor a new run asked for."""


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

        Raises ConfigError for a bad form (MissingProgram for a real-desktop scenario whose Debian program is not
        installed), ExecutorBusy when another run drives that executor.
        """
        request.validate()
        request.settings(self.settings)
        real = request.real_scenario()
        if real is not None:
            real.require_programs()  # one line naming the package and the setup command, before anything starts
        key = request.executor_key  # None: the run starts a screen of its own (a real-desktop scenario)
        if key is not None:
            self._await_cleanup(key)
        with self._lock:
            holder = None if key is None else self._busy.get(key)
            if holder is not None:
                raise ExecutorBusy(
                    f"{request.executor_label} is already driven by run {holder}; stop that run first "
                    "(only one run may drive an executor at a time)")
            run = LiveRun(_fresh_id(self._runs), request)  # the trace's own id: the run's one name everywhere
            self._runs[run.id] = run
            if key is not None:
                self._busy[key] = run.id
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
        from visagent.loop.runs import finish_run, open_run

        assembled = None
        req = run.request

        def engine_for(scenario: Any, executor: Any) -> Any:  # the cached model, loaded on first use
            if not self.engines.loaded(req.model):
                run.set_state("loading the model")
                run.note(f"loading model {req.model.label} (first use)…")
            return self.engines.get(req.model)

        try:
            run.set_state("opening the executor")
            real = req.real_scenario()
            if real is not None:  # as `visagent run --scenario ID` says it
                run.note(f"starting {real.id}: Xvfb {real.size[0]}x{real.size[1]}, {', '.join(real.apps)}")
            # The CLI's assembly with the page's choices: settings, executor (with its seed), config, trace.
            assembled = open_run(req.settings(self.settings), task=req.task, **req.where(),
                                 policy="oracle" if req.model.kind == "oracle" else "model",
                                 engine_factory=None if req.model.kind == "oracle" else engine_for,
                                 human_in_loop=True, on_event=run.on_event, trace_dir=self.trace_root,
                                 run_id=run.id)
            if run.stop_requested():
                run.fail("stopped by the user before the first step", status="stopped")
                return
            run.attach(assembled.agent)
            result = assembled.agent.run(assembled.task)
            verdict = finish_run(assembled, result)  # written first: a page (or test) that sees the line finds it
            report = _write_report(result.trace_dir)
            # the finished line says what the model claimed; this, what the world shows
            if verdict is None:
                run.conclude(None, None, report, [])
            else:
                run.conclude(verdict.success, verdict.line, report, list(verdict.side_effects or ()))
        except (VisagentError, EngineError) as exc:
            run.fail(str(exc))
        except Exception as exc:  # a bug: shown on the page and logged with its traceback
            log.exception("dashboard run %s failed", run.id)
            run.fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if assembled is not None:
                try:
                    assembled.close()  # the oracle and the executor; a cached model stays loaded
                except Exception:  # noqa: BLE001 - closing must not hide the run's outcome; logged
                    log.exception("closing executor of %s failed", run.id)
            key = req.executor_key
            with self._lock:
                if key is not None and self._busy.get(key) == run.id:
                    del self._busy[key]


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
