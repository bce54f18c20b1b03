"""The Run tab: set a task up, start it, watch the live screen, steer it (pause, step, take over, approve)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from engine.errors import EngineError
from ui import forms, text as md
from ui.overlay import draw_markers
from ui.views import model_picker
from visagent.core.actions import EXECUTOR_KINDS
from visagent.core.errors import VisagentError
from visagent.traces.markers import legend_html

POLL_S = 0.4
# After Gradio has written the new value, scroll the log's textarea to its end.
FOLLOW_LOG_JS = """() => { requestAnimationFrame(() => setTimeout(() => {
  const t = document.querySelector('#vg-log textarea'); if (t) { t.scrollTop = t.scrollHeight; } }, 30)); }"""
LIVE_LABEL = "Live screen · after Take over, click it to act (sim, real-desktop)"
PREVIEW_LABEL = "The scenario's first screen (before Start)"
REAL_PREVIEW_LABEL = "Live screen · a real-desktop scenario's screen appears once Start has started its display"
TIMING_HEADERS = ["step", "action", "policy", "capture s", "model s", "execute s", "settle s", "total s"]


def build(dash: forms.Dashboard) -> tuple[Any, list[Any]]:
    """Add the Run tab's components and events to the current Blocks. Returns (on_load, outputs): on page
    load the view attaches to the newest run still going, so a reloaded page can watch and stop it."""
    settings = dash.settings
    choices, scenario_error = forms.scenario_choices()
    scenario = dash.default_scenario if any(v == dash.default_scenario for _, v in choices) else None
    preview0 = None
    real0 = forms.real_scenario(scenario) is not None
    usable0 = True  # False: the picked real-desktop scenario's Debian program is missing
    try:
        task0 = forms.scenario_task(scenario, None)
        seed0 = forms.scenario_seed(scenario)
        preview0 = forms.scenario_preview(scenario, None)
        note0, usable0 = forms.scenario_note(scenario)
        scenario_error = scenario_error or (note0 if usable0 else f"⚠ Start is disabled: {note0}")
    except VisagentError as exc:
        task0, seed0, scenario_error = "", 0, str(exc)

    run_id = gr.State(None)
    seen = gr.State({})
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=340, elem_classes=["vg-panel"]):
            task = gr.Textbox(label="Task", value=task0, lines=2, placeholder="What should the agent do?",
                              elem_id="vg-task")
            with gr.Accordion("Screen", open=True):
                executor = gr.Radio(list(EXECUTOR_KINDS), value="sim", label="Executor",
                                    elem_id="vg-executor")
                with gr.Group(visible=True) as sim_box:
                    with gr.Row():
                        scenario_dd = gr.Dropdown(choices, value=scenario, label="Scenario", scale=3,
                                                  info="sim · the drawn world; real-desktop · real programs on "
                                                  "a private Xvfb", elem_id="vg-scenario")
                        seed = gr.Number(value=seed0, precision=0, label="Seed", scale=1, min_width=80,
                                         visible=not real0, elem_id="vg-seed")
                with gr.Group(visible=False) as desktop_box:
                    monitor = gr.Dropdown([], label="Monitor", elem_id="vg-monitor")
                with gr.Group(visible=False) as android_box:
                    device = gr.Dropdown([], label="Android device", elem_id="vg-device")
                device_note = gr.Markdown(md.text(scenario_error or ""), elem_classes=["vg-note"], **md.MARKDOWN_SAFE)
            with gr.Accordion("Model", open=True):
                picker = model_picker.build(dash, "vg")
                with gr.Row():
                    thinking = gr.Checkbox(value=settings.thinking, label="Thinking")
                    settle = gr.Checkbox(value=settings.settle, label="Wait for the screen to settle")
                with gr.Row():
                    max_steps = gr.Slider(1, 50, value=min(settings.max_steps, 50), step=1, label="Max steps")
                    history = gr.Slider(1, 8, value=min(settings.history_images, 8), step=1,
                                        label="Screenshots in history",
                                        info="never more than the model was trained with (its visagent.json)")
            with gr.Row():
                start = gr.Button("Start", variant="primary", interactive=usable0, elem_id="vg-start")
                stop = gr.Button("Stop", variant="stop", elem_id="vg-stop")
            watch = gr.Button("Watch this scenario solved (scripted oracle)", size="sm", elem_id="vg-watch")
            with gr.Row():
                pause = gr.Button("Pause", size="sm", min_width=60, elem_id="vg-pause")
                resume = gr.Button("Resume", size="sm", min_width=60, elem_id="vg-resume")
                step = gr.Button("Step", size="sm", min_width=60, elem_id="vg-step")
            with gr.Row():
                takeover = gr.Button("Take over", size="sm", min_width=60, elem_id="vg-takeover")
                handback = gr.Button("Hand back", size="sm", min_width=60, elem_id="vg-handback")
            note = gr.Textbox(label="Note for the agent on hand back", lines=1, placeholder="optional")
            message = gr.Markdown("", elem_id="vg-message", elem_classes=["vg-note"], **md.MARKDOWN_SAFE)
        with gr.Column(scale=7, min_width=480):
            status = gr.HTML(forms.status_html(None), elem_id="vg-status", elem_classes=["vg-status"])
            with gr.Group(visible=False, elem_classes=["vg-confirm"]) as confirm_box:
                confirm_text = gr.Markdown("", elem_id="vg-confirm-text", **md.MARKDOWN_SAFE)
                with gr.Row():
                    approve = gr.Button("Approve", variant="primary", size="sm", elem_id="vg-approve")
                    deny = gr.Button("Deny", variant="stop", size="sm", elem_id="vg-deny")
            label0 = PREVIEW_LABEL if preview0 is not None else REAL_PREVIEW_LABEL if real0 else LIVE_LABEL
            screen = gr.Image(value=preview0, label=label0, type="pil",
                              interactive=False, elem_id="vg-screen", buttons=["fullscreen", "download"],
                              height=520)
            gr.HTML(legend_html(), elem_id="vg-legend")
            with gr.Row():
                thought = gr.Textbox(label="Thinking", lines=5, max_lines=10, autoscroll=True,
                                     interactive=False, elem_id="vg-thinking")
                answer = gr.Textbox(label="Model answer", lines=5, max_lines=10, autoscroll=True,
                                    interactive=False, elem_id="vg-answer")
    with gr.Row():
        with gr.Column(scale=2):
            action_log = gr.Textbox(label="Action log", lines=12, max_lines=12, autoscroll=True,
                                    interactive=False, elem_id="vg-log")
        with gr.Column(scale=3):
            timings = gr.Dataframe(headers=TIMING_HEADERS, value=[], label="Per-step timings",
                                   interactive=False, elem_id="vg-timings", max_height=300)

    # -- form behaviour -------------------------------------------------------------------------------
    def on_executor(kind: str, scenario_id: str | None) -> tuple[Any, ...]:
        monitors, devices, note_text, usable = gr.skip(), gr.skip(), "", True
        if kind == "sim":  # a real-desktop scenario's line (a missing Debian program disables Start)
            try:
                note_text, usable = forms.scenario_note(scenario_id)
            except VisagentError as exc:
                note_text = str(exc)
        elif kind == "desktop":
            found, note_text = forms.monitor_choices()
            monitors = gr.update(choices=found, value=found[0][1] if found else None)
            usable = bool(found)
        elif kind == "android":
            found, note_text = forms.device_choices()
            devices = gr.update(choices=found, value=found[0][1] if found else None)
            usable = bool(found)
        if not usable:  # Start could only fail: it waits, disabled, with the reason beside it
            note_text = f"⚠ Start is disabled: {note_text}"
        return (gr.update(visible=kind == "sim"), gr.update(visible=kind == "desktop"),
                gr.update(visible=kind == "android"), monitors, devices, md.text(note_text), gr.update(interactive=usable))

    executor.change(on_executor, [executor, scenario_dd],
                    [sim_box, desktop_box, android_box, monitor, device, device_note, start], api_visibility="private")

    def preview(scenario_id: str | None, seed_value: int | None, current: str | None) -> Any:
        """The scenario's first screen, unless a run is going (its live screen stays). A real-desktop scenario
        has none before Start (its display does not exist yet)."""
        run = dash.runs.get(current)
        if run is not None and run.snapshot().active:
            return gr.skip()
        if forms.real_scenario(scenario_id) is not None:
            return gr.update(value=None, label=REAL_PREVIEW_LABEL)
        return gr.update(value=forms.scenario_preview(scenario_id, seed_value), label=PREVIEW_LABEL)

    def on_scenario(scenario_id: str | None, current: str | None) -> tuple[Any, ...]:
        """Fill the task (and seed) from the scenario. A real-desktop one hides the seed and says what Start
        starts, or which Debian program is missing (Start is then disabled)."""
        try:
            seed_value = forms.scenario_seed(scenario_id)
            real = forms.real_scenario(scenario_id) is not None
            note_text, usable = forms.scenario_note(scenario_id)
            if not usable:
                note_text = f"⚠ Start is disabled: {note_text}"
            return (forms.scenario_task(scenario_id, seed_value), gr.update(value=seed_value, visible=not real),
                    md.text(note_text), preview(scenario_id, seed_value, current), gr.update(interactive=usable))
        except VisagentError as exc:
            return gr.skip(), gr.skip(), md.text(exc), gr.skip(), gr.skip()

    scenario_dd.input(on_scenario, [scenario_dd, run_id], [task, seed, device_note, screen, start],
                      api_visibility="private")

    def on_seed(scenario_id: str | None, seed_value: float | None, current: str | None) -> tuple[Any, Any]:
        try:
            value = None if seed_value is None else int(seed_value)
            return forms.scenario_task(scenario_id, value), preview(scenario_id, value, current)
        except VisagentError:
            return gr.skip(), gr.skip()

    seed.input(on_seed, [scenario_dd, seed, run_id], [task, screen], api_visibility="private")

    # -- start and controls ---------------------------------------------------------------------------
    form = [task, executor, scenario_dd, seed, *picker.inputs[:4], thinking, max_steps, history, settle, monitor,
            device, picker.provider, picker.api_key]  # run_request's order; the key goes to the engine only

    def on_start(current: str | None, *values: Any) -> tuple[Any, Any, Any]:
        try:
            run = dash.runs.start(forms.run_request(*values))
        except (VisagentError, EngineError) as exc:
            return current, f"⚠ {md.text(exc)}", gr.skip()
        return run.id, f"started run {md.text(run.id)} (its trace: {md.text(str(dash.trace_root / run.id))})", {}

    start.click(on_start, [run_id, *form], [run_id, message, seen], api_visibility="private")

    def on_watch(current: str | None, scenario_id: str | None, seed_value: float | None) -> tuple[Any, Any, Any]:
        """One click to a solved run: the scenario's own task played by the scripted oracle."""
        from ui.engines import ModelChoice
        from ui.run_request import RunRequest

        try:
            real = forms.real_scenario(scenario_id) is not None
            value = None if seed_value is None or real else int(seed_value)
            own = forms.scenario_task(scenario_id, value)
            limit = forms.scenario_max_steps(scenario_id, settings.max_steps)
            run = dash.runs.start(RunRequest(own, ModelChoice("oracle", ""), scenario=scenario_id, seed=value,
                                             max_steps=limit))
        except (VisagentError, EngineError) as exc:
            return current, f"⚠ {exc}", gr.skip()
        return run.id, f"started run `{run.id}`: the scripted oracle plays {scenario_id}'s own task", {}

    watch.click(on_watch, [run_id, scenario_dd, seed], [run_id, message, seen], api_visibility="private")

    def control(name: str):
        def apply(current: str | None, note_text: str = "") -> str:
            run = dash.runs.get(current)
            if run is None:
                return "no run on this page yet; press Start"
            return md.text(run.control(name, note_text or ""))

        return apply

    for button, name in ((stop, "stop"), (pause, "pause"), (resume, "resume"), (step, "step"),
                         (takeover, "takeover"), (approve, "approve"), (deny, "deny")):
        button.click(control(name), run_id, message, api_visibility="private")
    handback.click(control("handback"), [run_id, note], message, api_visibility="private")

    def on_screen_click(current: str | None, evt: gr.SelectData) -> str:
        run = dash.runs.get(current)
        if run is None or evt is None or not isinstance(evt.index, (list, tuple)):
            return "no run on this page yet; press Start"
        return md.text(run.human_click(float(evt.index[0]), float(evt.index[1])))

    screen.select(on_screen_click, run_id, message, api_visibility="private")

    # -- the live view --------------------------------------------------------------------------------
    outputs = [screen, status, thought, answer, action_log, timings, confirm_box, confirm_text, seen]

    def poll(current: str | None, last: dict[str, Any] | None) -> tuple[Any, ...]:
        last = dict(last or {})
        run = dash.runs.get(current)
        snap = run.snapshot() if run is not None else None
        out: list[Any] = [gr.skip()] * (len(outputs) - 1)

        def put(index: int, key: str, version: Any, value: Any) -> None:
            if last.get(key) != version:
                last[key] = version
                out[index] = value() if callable(value) else value

        status_html = forms.status_html(snap, run.request.max_steps if run else None)
        put(1, "status", status_html, status_html)
        if snap is not None:
            if snap.screenshot is not None:
                put(0, "screen", (snap.id, snap.screen_version),
                    lambda: gr.update(value=draw_markers(snap.screenshot, snap.markers), label=LIVE_LABEL))
            put(2, "thinking", (snap.id, snap.step, len(snap.thinking)), snap.thinking)
            put(3, "answer", (snap.id, snap.step, len(snap.answer)), snap.answer)
            put(4, "log", (snap.id, snap.log_version), lambda: "\n".join(snap.log))
            put(5, "timings", (snap.id, len(snap.timings)),
                lambda: [[t.step, t.action, t.decision, t.capture, t.model, t.execute, t.settle, t.total]
                         for t in snap.timings])
            put(6, "confirm_box", snap.confirmation is not None, gr.update(visible=snap.confirmation is not None))
            put(7, "confirm", snap.confirmation, f"**Risky action — approve?** {md.text(snap.confirmation or '')}")
        return (*out, last)

    def on_load() -> tuple[Any, dict]:
        active = dash.runs.active()
        return (active[-1].id if active else None), {}

    # The action log follows its newest line (the `finished` and `world check` lines end up in view).
    action_log.change(None, None, None, js=FOLLOW_LOG_JS)

    timer = gr.Timer(POLL_S)
    timer.tick(poll, [run_id, seen], outputs, show_progress="hidden", api_visibility="private",
               concurrency_limit=None, trigger_mode="always_last")
    return on_load, [run_id, seen]
