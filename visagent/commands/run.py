"""`visagent run "TASK"`: run the agent once, with live progress in the terminal, and write its trace."""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading
from pathlib import Path
from typing import Any, Callable, TextIO

from visagent.core.errors import ConfigError
from visagent.core.verdict import CLAIM_STATUSES

_OK_STATUSES = ("success", "answered")
_STOP_GRACE_S = 30.0  # how long a stopped run may take to finish its step and close its trace


def register(sub) -> None:
    from visagent.commands.ground import add_point_from_arg

    p = sub.add_parser("run", help="run the agent on a task (sim, desktop or android) and write its trace",
                       description="Run the agent once with live progress; ends with one status line and the "
                       "trace path. Exit 0: success or an answer; 1: any other end; 2: bad input (nothing "
                       "started); 130: stopped with Ctrl-C (trace finished as 'stopped').")
    p.add_argument("task", nargs="?", help="what to do; defaults to the scenario's task with --scenario")
    p.add_argument("--executor", choices=("sim", "desktop", "android"), help="where to act (default: sim)")
    p.add_argument("--scenario", help="sim scenario id: the world to start from, and the task by default (default: the first "
                   "desktop scenario; see `visagent scenarios list`)")
    p.add_argument("--seed", type=int, help="sim world seed (default: the scenario's own)")
    p.add_argument("--monitor", type=int, default=1, help="desktop monitor, 1-based (default 1)")
    p.add_argument("--serial", help="android device serial (default: $ANDROID_SERIAL or the only one connected)")
    p.add_argument("--model", help="model spec: tiny (default), a checkpoint directory, or an http(s)://host/v1 URL")
    p.add_argument("--device", help="torch device for an in-process model (auto, cpu, cuda, cuda:1...)")
    p.add_argument("--dtype", help="weights dtype for an in-process model (auto, bf16, fp16, fp32)")
    p.add_argument("--model-name", help="model name to ask an http(s) server for (default: the single model its "
                   "/v1/models lists)")
    p.add_argument("--api-key", help="API key for an http(s) server (default: $VISAGENT_API_KEY, $OPENAI_API_KEY)")
    p.add_argument("--policy", choices=("model", "oracle"), default="model",
                   help="oracle: a scripted engine that plays the sim scenario's known solution (no model)")
    p.add_argument("--trace-dir", help="where run directories are written (default: runs)")
    p.add_argument("--max-steps", type=int, help="step limit (default 15)")
    p.add_argument("--max-seconds", type=float, help="wall-time limit in seconds, time paused not counted "
                   "(default 600)")
    add_sampling_args(p)
    p.add_argument("--yes", action="store_true", help="approve risky actions without asking")
    p.add_argument("--quiet", action="store_true", help="print only the final status line")
    add_point_from_arg(p)
    p.set_defaults(handler=run)


def add_sampling_args(p) -> None:
    """--thinking, --thinking-budget, --greedy and --provider: how each model call is made (settings of the same
    names; docs/agent.md)."""
    from engine import PROVIDER_CHOICES

    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="let the model think before acting")
    p.add_argument("--thinking-budget", type=int, help="tokens a thought may take before its answer (default 4096); "
                   "a thought cut off there is asked again with thinking off")
    p.add_argument("--greedy", action=argparse.BooleanOptionalAction, default=None,
                   help="decode greedily (reproducible runs) instead of the model's recommended sampling")
    p.add_argument("--provider", choices=PROVIDER_CHOICES,
                   help="the http(s) server's kind, which decides the thinking switch and sampling fields "
                   "(default auto: detected from the server)")


def open_for_run(kind: str, scenario_id: str | None, seed: int | None, *, monitor: int = 1,
                 serial: str | None = None) -> tuple[Any, Any]:
    """(executor, scenario or None). The sim opens `scenario_id` (default: the first desktop scenario);
    `monitor` (1-based) picks the desktop's screen, `serial` the Android device.
    Raises ConfigError / ScenarioError / ExecutorError with one line."""
    from visagent.screen import open_executor
    from visagent.sim.scenarios import get_scenario

    if scenario_id and kind != "sim":
        raise ConfigError(f"--scenario sets up the sim world; it does not apply to --executor {kind}")
    if seed is not None and kind != "sim":
        raise ConfigError(f"--seed sets up the sim world; it does not apply to --executor {kind}")
    if serial and kind != "android":
        raise ConfigError(f"--serial picks an Android device; it does not apply to --executor {kind}")
    if monitor != 1 and kind != "desktop":
        raise ConfigError(f"--monitor picks a desktop screen; it does not apply to --executor {kind}")
    if scenario_id:
        get_scenario(scenario_id)  # an unknown id fails here, before anything opens
    executor = open_executor(kind, scenario=scenario_id, seed=seed, monitor=monitor, serial=serial)
    world = getattr(executor, "world", None)
    sid = scenario_id or getattr(world, "scenario_id", None)
    return executor, (get_scenario(sid) if sid else None)


def check_trace_root(root: str) -> None:
    """Check that `--trace-dir` is, or can be created as, a writable directory, before a model loads for
    minutes only to find nowhere to write. Creates nothing. Raises ConfigError naming the path and the fix."""
    path = Path(root).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--trace-dir {root!r} cannot be a directory: {existing} is a file; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--trace-dir {root!r} is not writable ({existing} refuses new files); choose another "
                          "directory or fix its permissions")


def side_effects_line(effects: list[str]) -> str:
    """"" or a line after the world check listing the changes the task did not ask for."""
    return f"\nside effects (not asked for): {'; '.join(effects)}" if effects else ""


def _printable(text: str) -> str:
    """Model text made safe for a terminal: newlines as spaces, control characters (escape sequences) as �."""
    return "".join(c if c.isprintable() else (" " if c in "\n\t" else "\ufffd") for c in text)


def _silence_stdout(out: TextIO) -> None:
    """Point a broken stdout at /dev/null, so the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests' StringIO): nothing to flush later
        pass


class ProgressPrinter:
    """Renders agent events as live terminal lines; answers questions on an interactive terminal."""

    def __init__(self, out: TextIO, *, interactive: bool, quiet: bool = False,
                 world_check: Callable[[str], str | None] | None = None) -> None:
        self.out = out
        self.interactive = interactive
        self.quiet = quiet
        self.world_check = world_check  # the sim scenario's verdict line, asked for (with the status) at the end
        self.agent: Any = None
        self.cancelled = threading.Event()  # set on Ctrl-C: a question waiting for an answer gives up
        self._kind: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _write(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self.out.write(text)
                self.out.flush()
            except BrokenPipeError:  # `visagent run ... | head`: the reader left; the run and its trace go on
                self._closed = True
                _silence_stdout(self.out)

    def _end_stream(self) -> None:
        if self._kind is not None:
            self._kind = None
            self._write("\n")

    def __call__(self, event: Any) -> None:
        from visagent.loop import events as E

        if isinstance(event, E.RunFinished):
            self._end_stream()
            line = f"{event.status}: {event.reason} ({event.steps} step{'' if event.steps == 1 else 's'})"
            if event.answer:
                line += f"\nanswer: {event.answer}"
            check = self.world_check(event.status) if self.world_check is not None else None
            if check:
                line += f"\n{check}"
            elif event.status in CLAIM_STATUSES:  # nothing checked it: say whose word the status is
                line += "\nno check: the status above is the model's own claim (only a sim scenario's own task is checked)"
            if event.trace_dir:
                line += f"\ntrace: {event.trace_dir}"
            self._write(line + "\n")
            return
        if isinstance(event, E.NeedsConfirmation):
            self._end_stream()
            self._confirm(event)
            return
        if isinstance(event, E.ControlEvent) and event.control == "takeover":
            self._end_stream()
            self._takeover(event.note)
            return
        if self.quiet:
            return
        if isinstance(event, E.RunStarted):
            self._write(f"task: {event.task}\n")
        elif isinstance(event, E.StepStarted):
            self._end_stream()
            self._write(f"── step {event.step}\n")
        elif isinstance(event, E.ModelDelta):
            if event.kind != self._kind:
                if self._kind is not None:
                    self._write("\n")
                self._kind = event.kind
                self._write("  thinking: " if event.kind == "thinking" else "  model: ")
            self._write(_printable(event.text))
        elif isinstance(event, E.ActionParsed):
            self._end_stream()
            for line in event.log_lines():
                self._write(line + "\n")
        elif isinstance(event, E.Executed):
            r = event.result
            state = "ok" if r.ok else f"failed: {r.message}"
            changed = {True: ", screen changed", False: ", screen did not change", None: ""}[r.changed]
            self._write(f"  result: {state}{changed} ({r.execute_s:.2f} s + settle {r.settle_s:.2f} s)\n")
        elif isinstance(event, E.Blocked):
            self._write(f"  not executed: {event.reason}\n")
        elif isinstance(event, E.ErrorEvent):
            self._end_stream()
            self._write(f"  ! {event.message}\n")
        elif isinstance(event, E.ControlEvent):
            self._end_stream()
            self._write(f"  [{event.control}] {event.note}".rstrip() + "\n")

    def _ask(self, prompt: str) -> str | None:
        """One line from the user, or None when no one can answer or the run is being stopped (Ctrl-C
        arrives on the main thread while this one waits for the terminal)."""
        if not self.interactive:
            return None
        self._write(prompt)
        try:
            while not self.cancelled.is_set():
                ready, _, _ = select.select([sys.stdin], [], [], 0.2)
                if ready:
                    return sys.stdin.readline().strip()
        except (OSError, ValueError):  # stdin closed, or not selectable: fall back to a plain read
            try:
                return sys.stdin.readline().strip()
            except (OSError, ValueError):
                return None
        return None

    def _confirm(self, event: Any) -> None:
        self._write(f"  risky action: {event.action.summary()} ({event.reason})\n")
        answer = self._ask("  run it? [y/N] ")
        if self.cancelled.is_set():
            return  # stopping: the loop ends the run without executing it
        if answer is None:
            self._write("  no one to ask (not a terminal, no --yes): denied\n")
            return  # the loop denies it and tells the model
        if answer.lower() in ("y", "yes"):
            self.agent.approve()
        else:
            self.agent.deny()

    def _takeover(self, note: str) -> None:
        self._write(f"  the agent hands you the screen: {note}\n")
        answer = self._ask("  do what is needed, then press Enter (optionally type a note for the agent): ")
        if answer is not None:
            self.agent.hand_back(answer)


def run(args) -> int:
    from visagent.loop.agent import Agent, AgentConfig
    from visagent.traces.evaluate import record_verdict, world_check

    settings = args.settings
    check_trace_root(settings.trace_dir)
    executor, scenario = open_for_run(settings.executor, settings.scenario, args.seed, monitor=args.monitor,
                                      serial=args.serial)
    engine = None
    try:
        task = args.task
        if not task and scenario is not None:
            task = scenario.instruction_for(getattr(executor, "world", None))
        if not task:
            raise ConfigError("no task given; pass TASK or --scenario ID")
        if args.policy == "oracle":
            if scenario is None or not hasattr(executor, "world"):
                raise ConfigError("--policy oracle needs --executor sim and --scenario ID")
            own = scenario.instruction_for(executor.world)
            if task != own:  # the oracle plays the scenario's script: any other task would "succeed" at nothing
                raise ConfigError(f"--policy oracle plays scenario {scenario.id}'s own task ({own!r}), not {task!r}; "
                                  "drop TASK or pick the scenario whose task it is (`visagent scenarios list`)")
            from visagent.loop.scripted import OracleEngine

            engine = OracleEngine(scenario, lambda: executor.world, geometry=executor.geometry)
        else:
            from visagent.loop.engines import open_engine

            engine = open_engine(settings)
            if settings.model_name and hasattr(engine, "verify_model"):
                engine.verify_model()  # a misspelt name fails here, not at the first step with a trace left
        config = AgentConfig.from_settings(settings, auto_approve=args.yes, human_in_loop=False)
        interactive = sys.stdin.isatty() and not args.yes
        verdict: dict[str, Any] = {}
        world = getattr(executor, "world", None)
        before = world.state() if world is not None else None  # for the side effects at the end

        def check_world(status: str) -> str | None:  # asked when the run ends: `terminate success` is a claim
            from visagent.sim.side_effects import run_side_effects

            checked = world_check(scenario, world, task, status)
            if checked is None:
                return None
            verdict["success"] = checked[0]
            verdict["side_effects"] = run_side_effects(scenario, world, before)
            return checked[1] + side_effects_line(verdict["side_effects"])

        printer = ProgressPrinter(sys.stdout, interactive=interactive, quiet=args.quiet, world_check=check_world)
        meta: dict[str, Any] = {}
        if scenario is not None:
            meta = {"scenario": scenario.id, "seed": scenario.seed if args.seed is None else args.seed}
        for key in ("serial", "display", "monitor"):  # which phone / screen the run drove, for the trace
            if settings.executor != "sim" and getattr(executor, key, None) is not None:
                meta[key] = getattr(executor, key)
        agent = Agent(engine, executor, config, trace_root=settings.trace_dir, on_event=printer, run_meta=meta)
        printer.agent = agent
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = agent.run(task)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name="visagent-run", daemon=True)
        worker.start()
        # Wait on an Event, not Thread.join: a Ctrl-C that interrupts join() can leave the thread looking
        # finished on Python 3.11, and the stopped run would then be reported as never ending.
        interrupted = False
        try:
            while not done.wait(0.2):
                pass
        except KeyboardInterrupt:
            interrupted = True
            printer.cancelled.set()
            print("\nstopping (Ctrl-C again to abort)...", file=sys.stderr)
            agent.stop()
            done.wait(_STOP_GRACE_S)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        result = box.get("result")
        if result is None:
            print(f"visagent: the run did not end within {_STOP_GRACE_S:g} s of stop; its trace is left as 'running'",
                  file=sys.stderr)
            return 1
        if "success" in verdict and result.trace_dir is not None:
            record_verdict(result.trace_dir, verdict["success"], verdict["side_effects"])  # shown by `visagent report`
        if interrupted and result.status == "stopped":
            return 130  # the shell convention for Ctrl-C, so scripts can tell it from a failed run
        if "success" in verdict:
            return 0 if verdict["success"] else 1  # a sim scenario's own task: the world decides, as in `visagent eval`
        return 0 if result.status in _OK_STATUSES else 1
    finally:
        if engine is not None:
            engine.close()
        executor.close()
