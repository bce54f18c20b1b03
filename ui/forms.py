"""Plain functions behind the dashboard's forms and API endpoints (no Gradio here, so they test directly).

Every function returns data or raises a VisagentError with one line for the page to show.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ui.engines import ModelChoice
from ui.live import RunSnapshot
from ui.run_request import RunRequest
from ui.runs import RunManager
from ui.suites import SuiteRunner
from visagent.core.errors import ConfigError, VisagentError
from visagent.core.settings import Settings

log = logging.getLogger(__name__)

PREFERRED_SCENARIO = "desktop-settings-dark-mode"
REAL_WORLD = "real-desktop"  # visagent.realworld's world: real programs on a private Xvfb


@dataclass
class Dashboard:
    """What every view shares: settings, the run manager, the suite runner and the defaults of the forms."""

    settings: Settings
    runs: RunManager
    suites: SuiteRunner
    default_model: ModelChoice
    default_scenario: str | None

    @classmethod
    def create(cls, settings: Settings, *, trace_root: str | Path | None = None) -> Dashboard:
        root = Path(trace_root or settings.trace_dir)
        runs = RunManager(settings, trace_root=root)
        suites = SuiteRunner(settings, runs.engines, root)
        model = ModelChoice.from_spec(settings.model, settings.model_name)
        if model.kind == "server":  # as the picker submits it, so a preloaded server is the one a run finds
            model = dataclasses.replace(model, provider=settings.provider)
        scenario = settings.scenario
        if scenario is None:
            scenario = default_scenario_id()
        return cls(settings, runs, suites, model, scenario)

    @property
    def trace_root(self) -> Path:
        return Path(self.runs.trace_root)

    def close(self) -> None:
        current = self.suites.current()
        if current is not None:
            current.cancel.set()
        self.runs.close()


# -- scenarios ---------------------------------------------------------------------------------------

def scenario_choices() -> tuple[list[tuple[str, str]], str | None]:
    """(label, id) pairs of every scenario — the sim's ("sim · ID"), then the real-desktop ones ("real-desktop ·
    ID": real programs on a private Xvfb, visagent.realworld) — and an error line when some do not load."""
    from visagent.realworld.registry import real_scenarios
    from visagent.sim.scenarios import load_scenarios

    choices: list[tuple[str, str]] = []
    errors: list[str] = []
    try:
        choices += [(f"sim · {s.id}", s.id) for s in load_scenarios()]
    except VisagentError as exc:
        errors.append(f"scenarios could not be loaded: {exc}")
    try:
        choices += [(f"{REAL_WORLD} · {s.id}", s.id) for s in real_scenarios()]
    except VisagentError as exc:
        errors.append(f"real-desktop scenarios could not be loaded: {exc}")
    return choices, "; ".join(errors) or None


def real_scenario(scenario_id: str | None) -> Any:
    """The real-desktop scenario of this id (visagent.realworld's RealScenario), or None for a sim id or none."""
    if not scenario_id:
        return None
    from visagent.realworld.registry import get_real_scenario, is_real_scenario

    return get_real_scenario(scenario_id) if is_real_scenario(scenario_id) else None


def scenario_note(scenario_id: str | None) -> tuple[str, bool]:
    """(line under the scenario picker, whether Start can run it): for a real-desktop scenario what Start will
    start, or which Debian program is missing (MissingProgram's line: the package and the setup command; not
    startable); ("", True) for a sim scenario."""
    real = real_scenario(scenario_id)
    if real is None:
        return "", True
    try:
        real.require_programs()
    except VisagentError as exc:
        return str(exc), False
    return (f"{REAL_WORLD} · {real.id}: Start starts a private Xvfb {real.size[0]}x{real.size[1]} with "
            f"{', '.join(real.apps)} (no preview before, no seeds); the goal is checked on the programs' real "
            "state"), True


def default_scenario_id() -> str | None:
    """The sim scenario the Run view starts on: dark mode when it exists, else the first desktop scenario."""
    from visagent.sim.scenarios import load_scenarios

    try:
        scenarios = load_scenarios()
    except VisagentError as exc:
        log.warning("no default scenario: %s", exc)
        return None
    ids = [s.id for s in scenarios]
    if PREFERRED_SCENARIO in ids:
        return PREFERRED_SCENARIO
    desktop = [s.id for s in scenarios if s.platform == "desktop"]
    return (desktop or ids or [None])[0]


def scenario_task(scenario_id: str | None, seed: int | None) -> str:
    """The scenario's instruction with its parameters for `seed` filled in ("" for no scenario; a real-desktop
    scenario's instruction has no parameters)."""
    if not scenario_id:
        return ""
    real = real_scenario(scenario_id)
    if real is not None:
        return real.instruction
    from visagent.sim.scenarios import get_scenario

    scenario = get_scenario(scenario_id)
    params = scenario.resolve_params(scenario.seed if seed is None else int(seed))
    return scenario.instruction_for(SimpleNamespace(params=params))  # type: ignore[arg-type]


def scenario_seed(scenario_id: str | None) -> int | None:
    """The scenario's own seed (0 for none; None for a real-desktop scenario, which has no seeds)."""
    if not scenario_id:
        return 0
    if real_scenario(scenario_id) is not None:
        return None
    from visagent.sim.scenarios import get_scenario

    return int(get_scenario(scenario_id).seed)


def scenario_max_steps(scenario_id: str | None, default: int) -> int:
    """The scenario's own step budget (`default` for no scenario)."""
    if not scenario_id:
        return default
    real = real_scenario(scenario_id)
    if real is not None:
        return int(real.max_steps)
    from visagent.sim.scenarios import get_scenario

    return int(get_scenario(scenario_id).max_steps)


def scenario_preview(scenario_id: str | None, seed: int | None) -> Any:
    """The scenario's first screen for `seed` (a PIL image), shown before Start; None for no scenario, and for a
    real-desktop scenario (its screen exists only once Start has started its display and programs).
    Raises VisagentError (ScenarioError) for an unknown scenario."""
    if not scenario_id or real_scenario(scenario_id) is not None:
        return None
    from visagent.sim.scenarios import get_scenario

    scenario = get_scenario(scenario_id)
    return scenario.make_world(scenario.seed if seed is None else int(seed)).render()


# -- devices -----------------------------------------------------------------------------------------

def monitor_choices() -> tuple[list[tuple[str, int]], str]:
    """(label, monitor number) of this machine's monitors, and a note (why none, when none)."""
    import visagent.screen as executors

    lister = getattr(executors, "list_monitors", None)
    if lister is None:
        return [], "desktop control is not available in this build"
    try:
        monitors = list(lister())
    except VisagentError as exc:
        return [], str(exc)
    out = []
    for number, m in enumerate(monitors, start=1):  # list_monitors is in 1-based monitor order
        out.append((f"monitor {number} · {m.get('width', '?')}×{m.get('height', '?')} at "
                    f"({m.get('left', 0)}, {m.get('top', 0)})", number))
    return out, "" if out else "no monitor found (is DISPLAY set?)"


def device_choices() -> tuple[list[tuple[str, str]], str]:
    """(label, serial) of the connected Android devices, and a note (why none, when none)."""
    import visagent.screen as executors

    lister = getattr(executors, "list_android_devices", None)
    if lister is None:
        return [], "Android control is not available in this build"
    try:
        devices = list(lister())
    except VisagentError as exc:
        return [], str(exc)
    out = [(d.describe() if hasattr(d, "describe") else str(d), str(getattr(d, "serial", d))) for d in devices]
    return out, "" if out else "no device: connect one with USB debugging on (adb devices)"


# -- models ------------------------------------------------------------------------------------------

def preset_values(name: str | None) -> tuple[str, str, str]:
    """(server URL, model name, provider) of a provider preset (ui.engines.PROVIDER_PRESETS).
    Raises ConfigError for an unknown preset."""
    from ui.engines import PROVIDER_PRESETS

    preset = PROVIDER_PRESETS.get(name or "")
    if preset is None:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PROVIDER_PRESETS)}")
    return preset.url, preset.model_name, preset.provider


def connection_check(settings: Settings, url: str, model_name: str = "", provider: str = "",
                     api_key: str = "") -> tuple[bool, str]:
    """Run `visagent doctor`'s checks (visagent.commands.doctor.run, the same code) against a server URL with
    the form's model name, provider and API key (empty: the settings' own). Returns (all passed, one line per
    check). Raises ConfigError for a bad URL or provider (nothing checked)."""
    import io

    from engine.errors import EngineError
    from ui.engines import with_server
    from visagent.commands import doctor

    choice = ModelChoice.from_form("server", url=url, model_name=model_name, provider=provider, api_key=api_key)
    checked = with_server(settings, provider=choice.provider, api_key=choice.api_key)
    checked = dataclasses.replace(checked, model=choice.spec, model_name=choice.model_name)
    out = io.StringIO()
    try:
        code = doctor.run(SimpleNamespace(settings=checked, history_images=None), out=out)
    except EngineError as exc:  # a URL the engine cannot use at all (doctor re-raises those)
        raise ConfigError(" ".join(str(exc).split())) from None
    return code == 0, out.getvalue().rstrip("\n")


# -- runs --------------------------------------------------------------------------------------------

def run_request(task: str, executor: str, scenario: str | None, seed: float | int | None, model_kind: str,
                checkpoint: str, url: str, model_name: str, thinking: bool, max_steps: float | int,
                history: float | int, settle: bool, monitor: Any = None, serial: str | None = None,
                provider: str = "", api_key: str = "") -> RunRequest:
    """A RunRequest from the Run form's raw values. Raises ConfigError for a bad value. `api_key` (a server's;
    empty: the settings' own) travels in the request's ModelChoice to the engine and nowhere else."""
    choice = ModelChoice.from_form(model_kind, checkpoint, url, model_name, provider, api_key)
    if executor == "sim" and real_scenario(scenario) is not None:
        seed = None  # a real-desktop scenario has no seeds (the form hides the field)
    try:
        seed_value = None if seed is None or seed == "" else int(seed)
        mon = None if monitor in (None, "") else int(monitor)
        steps, hist = int(max_steps), int(history)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a number field holds a non-number ({exc}); enter whole numbers") from None
    return RunRequest(task=(task or "").strip(), model=choice, executor=executor, scenario=scenario or None,
                      seed=seed_value, monitor=mon, serial=serial or None, thinking=bool(thinking),
                      max_steps=steps, history_images=hist, settle=bool(settle))


def snapshot_dict(snap: RunSnapshot) -> dict[str, Any]:
    """A JSON-ready view of a run snapshot (no image) for the API."""
    return {
        "run_id": snap.id, "task": snap.task, "executor": snap.executor, "model": snap.model,
        "state": snap.state, "phase": snap.phase, "status": snap.status, "reason": snap.reason, "step": snap.step,
        "screenshots": snap.screen_version, "has_screenshot": snap.screenshot is not None,
        "thinking": snap.thinking, "answer": snap.answer, "log": list(snap.log),
        "confirmation": snap.confirmation, "trace_dir": snap.trace_dir, "final_answer": snap.final_answer,
        "timings": [t.__dict__ for t in snap.timings], "elapsed_s": round(snap.elapsed, 2),
        "verdict": snap.verdict, "report": snap.report, "side_effects": list(snap.side_effects),
    }


STATE_LABELS = {"waiting_confirmation": "waiting for your approval", "taken_over": "yours: the agent waits for Hand back",
                "max_steps": "step limit reached", "parse_error": "unreadable model answers"}


def status_html(snap: RunSnapshot | None, max_steps: int | None = None) -> str:
    """The run status above the live screen, as HTML: the state line, and once the run ends the verdict badge
    (goal met / NOT met / no check), the model's own claim labelled as such, and links to the trace and its
    HTML report. Every piece of text is escaped: a reason or answer holding `</tool_call>` shows as written."""
    from visagent.core.verdict import badge_html, claim_text

    e = html.escape
    if snap is None:
        return '<div class="vg-status-line"><b>idle</b> · no run yet: pick a task and press <b>Start</b></div>'
    state = snap.status or snap.state
    state = STATE_LABELS.get(state, state)
    if snap.phase and snap.state == "running":
        state = f"{state}: {snap.phase}"
    steps = f"step {snap.step}" + (f"/{max_steps}" if max_steps else "")
    parts = [f"<b>{e(state)}</b>", e(steps), f"{snap.elapsed:.0f} s", e(snap.executor), f"model {e(snap.model)}",
             f'run <code class="vg-run-id">{e(snap.id)}</code>']
    lines = [f'<div class="vg-status-line">{" · ".join(parts)}</div>']
    if snap.status:
        claim = claim_text(snap.status) + (f" — {snap.reason}" if snap.reason else "")
        lines.append(f'<div class="vg-outcome">{badge_html(snap.verdict, pending=snap.verdict is None)} '
                     f'<span class="vg-claim">{e(claim)}</span></div>')
        if snap.side_effects:
            items = "".join(f"<li>{e(item)}</li>" for item in snap.side_effects)
            lines.append(f'<div class="vg-side-effects">side effects the task did not ask for:<ul>{items}</ul></div>')
        if snap.status == "parse_error":
            lines.append('<div class="vg-hint">The model\'s answers could not be read as actions. The tiny model is a '
                         'demo that runs the whole path and does not solve tasks: connect a real model (Model '
                         'section), or pick <b>Scripted oracle</b> to watch this scenario solved.</div>')
    if snap.trace_dir:
        links = [f'trace <code class="vg-trace-path">{e(snap.trace_dir)}</code>']
        if snap.report:
            links.append(f'<a class="vg-report-link" href="{e(file_url(snap.report))}" target="_blank" '
                         'rel="noopener">HTML report</a>')
        lines.append(f'<div class="vg-links">{" · ".join(links)}</div>')
    return "".join(lines)


def file_url(path: str | Path) -> str:
    """The dashboard's URL of a file under the trace root (Gradio serves its allowed paths there), relative to
    the page so it works behind a proxy's root path."""
    from urllib.parse import quote

    return "gradio_api/file=" + quote(str(Path(path).resolve()))
