"""Build and launch the dashboard: four tabs (Run, Traces, Grounding, Scenarios) plus a small JSON API.

The API endpoints (`/start_run`, `/run_status`, `/control_run`, `/list_runs`, `/start_suite`,
`/suite_status`) call the same functions as the page, so scripts and tests (gradio_client) drive exactly
what a user clicks.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing may call home from here

import gradio as gr  # noqa: E402

from ui import forms, text as md  # noqa: E402
from ui.views import playground_view, run_view, scenarios_view, traces_view  # noqa: E402
from visagent.core.errors import ConfigError, VisagentError  # noqa: E402

CSS_PATH = Path(__file__).resolve().parent / "style.css"
TITLE = "visagent"


def theme() -> gr.themes.Base:
    """A calm theme with system fonts (no web-font download: the dashboard often runs offline)."""
    return gr.themes.Soft(
        primary_hue="indigo", secondary_hue="sky", neutral_hue="slate", radius_size="md",
        font=("Inter", "ui-sans-serif", "system-ui", "DejaVu Sans", "sans-serif"),
        font_mono=("ui-monospace", "DejaVu Sans Mono", "monospace"),
    )


def _api(dash: forms.Dashboard) -> None:
    """Register the JSON endpoints (see the module docstring)."""

    def start_run(task: str, scenario: str = "", model: str = "tiny", executor: str = "sim", seed: int = -1,
                  max_steps: int = 5, thinking: bool = False, settle: bool = True, history: int = 4) -> dict:
        """Start a run. `model`: tiny | oracle | a checkpoint directory | an http(s) URL; seed -1: the
        scenario's own. Returns {"run_id"} or {"error"}."""
        try:
            choice = "oracle" if model == "oracle" else None
            from ui.engines import ModelChoice

            picked = ModelChoice("oracle", "") if choice else ModelChoice.from_spec(model)
            request = forms.run_request(task, executor, scenario or None, None if seed < 0 else seed, picked.kind,
                                        picked.spec if picked.kind == "checkpoint" else "",
                                        picked.spec if picked.kind == "server" else "", "", thinking, max_steps,
                                        history, settle)
            return {"run_id": dash.runs.start(request).id}
        except VisagentError as exc:
            return {"error": str(exc)}

    def run_status(run_id: str) -> dict:
        """The buffered state of a run (no image): state, status, step, log, thinking, answer, timings."""
        run = dash.runs.get(run_id)
        if run is None:
            return {"error": f"no run {run_id!r}; start one with /start_run"}
        return forms.snapshot_dict(run.snapshot())

    def control_run(run_id: str, control: str, note: str = "") -> str:
        """pause | resume | step | stop | takeover | handback | approve | deny."""
        run = dash.runs.get(run_id)
        if run is None:
            return f"no run {run_id!r}"
        try:
            return run.control(control, note)
        except ConfigError as exc:
            return str(exc)

    def list_runs() -> list:
        """Traces under the trace root, newest first."""
        from visagent.core.trace import list_traces

        return [{"run_id": t.run_id, "task": t.task, "status": t.status, "steps": t.steps,
                 "started_at": t.started_at, "trace_dir": str(t.path)} for t in list_traces(dash.trace_root)]

    def start_suite(split: str = "train", tags: str = "", policy: str = "oracle", seeds: int = 1,
                    workers: int = 2, ray: str = "", world: str = "sim") -> dict:
        """Start a scenario suite; policy oracle | model; ray: a Ray address ("" runs here); world: sim |
        real-desktop.
        Returns {"suite_id", "total"} or {"error"}."""
        try:
            suite = dash.suites.start(scenarios_view.suite_request(dash, split or "any", tags, policy, seeds,
                                                                   workers, None, ray or "", world or "sim"))
            return {"suite_id": suite.id, "total": suite.total}
        except VisagentError as exc:
            return {"error": str(exc)}

    def suite_status() -> dict:
        """Progress and results of the current suite."""
        suite = dash.suites.current()
        if suite is None:
            return {"error": "no suite has been started"}
        snap = suite.snapshot()
        return {"suite_id": snap.id, "total": snap.total, "done": snap.done, "successes": snap.successes,
                "finished": snap.finished, "message": snap.message,
                "rows": [dict(zip(scenarios_view.RESULT_KEYS, r)) for r in snap.rows]}

    for fn in (start_run, run_status, control_run, list_runs, start_suite, suite_status):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)


def build_app(dash: forms.Dashboard) -> gr.Blocks:
    """The dashboard's Blocks over a Dashboard (settings, run manager, suite runner)."""
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as app:
        with gr.Row(elem_classes=["vg-header"]):
            gr.Markdown(f"## visagent  \nwatch, steer and review a visual GUI agent · traces in {md.code(dash.trace_root)}")
        with gr.Tabs():
            with gr.Tab("Run", id="run", elem_id="vg-tab-run"):
                attach, attach_outputs = run_view.build(dash)
            with gr.Tab("Traces", id="traces", elem_id="vg-tab-traces") as traces_tab:
                refresh, refresh_inputs, refresh_outputs = traces_view.build(dash)
            with gr.Tab("Grounding", id="grounding", elem_id="vg-tab-grounding"):
                playground_view.build(dash)
            with gr.Tab("Scenarios", id="scenarios", elem_id="vg-tab-scenarios"):
                scenarios_view.build(dash)
        _api(dash)
        traces_tab.select(refresh, refresh_inputs, refresh_outputs, api_visibility="private")
        app.load(refresh, refresh_inputs, refresh_outputs, api_visibility="private")
        app.load(attach, None, attach_outputs, api_visibility="private")
    return app


def launch(app: gr.Blocks, dash: forms.Dashboard, *, host: str = "127.0.0.1", port: int | None = None,
           auth: tuple[str, str] | None = None, share: bool = False) -> str:
    """Start the server in the background and return the URL to open (the share link when `share`).

    `port` None or 0 lets Gradio pick from 7860 up. Raises ConfigError when the port is taken.
    """
    try:
        _, url, _ = app.launch(
            server_name=host, server_port=port or None, auth=auth, share=share, prevent_thread_lock=True,
            quiet=True, show_error=True, theme=theme(), css_paths=[CSS_PATH], footer_links=[],
            allowed_paths=[str(dash.trace_root.resolve())], ssr_mode=False,
        )
    except OSError as exc:
        why = "the port is taken" if "empty port" in str(exc) else str(exc)
        raise ConfigError(f"cannot serve on {host}:{port}: {why}; pick another --port") from None
    share_url = getattr(app, "share_url", None)
    return share_url if share and share_url else local_url(host, app.server_port or port or 7860)


def local_url(host: str, port: int) -> str:
    """The address to open in a browser for a server bound to `host`."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


