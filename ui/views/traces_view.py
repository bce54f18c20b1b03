"""The Traces tab: every run under the trace root; open one and step through it; HTML report; replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from engine.errors import EngineError
from ui import forms, text as md
from ui.overlay import draw_markers, markers_for_action
from visagent.core.errors import VisagentError
from visagent.traces.markers import legend_html
from visagent.core.trace import Trace, TraceSummary, list_traces, read_trace
from visagent.core.verdict import LABELS, claim_text, verdict_key, verdict_text

# the run id first (a clicked row opens it), the verdict and claim next, the task last: long tasks wrap there
LIST_HEADERS = ["run", "goal (world check)", "model's claim", "steps", "model", "started (UTC)", "suite", "task"]
EXECUTED = ("allowed", "approved")
ANY = "any"
STATUS_CHOICES = [ANY, "running", "success", "answered", "failure", "max_steps", "timeout", "stopped", "parse_error",
                  "loop", "error"]
VERDICT_CHOICES = [(ANY, ANY)] + [(label, key) for key, (label, _) in LABELS.items()]


def all_traces(root: Path) -> list[TraceSummary]:
    """The runs under `root` and under its `eval-*` folders (scenario suites), newest first."""
    found = list_traces(root)
    if root.is_dir():
        for child in root.glob("eval-*"):
            if child.is_dir():
                found += list_traces(child)
    return sorted(found, key=lambda t: (t.started_at, t.run_id), reverse=True)


def filter_traces(traces: list[TraceSummary], text: str = "", status: str = ANY, verdict: str = ANY,
                  model: str = ANY) -> list[TraceSummary]:
    """The traces matching every filter: `text` (case-insensitive, in the run id, task or model), `status`
    (the model's claim / how the run ended), `verdict` (met / not_met / none) and `model` (its spec)."""
    needle = (text or "").strip().lower()
    return [t for t in traces
            if (not needle or needle in f"{t.run_id}\n{t.task}\n{t.model}".lower())
            and (status in (ANY, "", None) or t.status == status)
            and (verdict in (ANY, "", None) or verdict_key(t.verdict) == verdict)
            and (model in (ANY, "", None) or t.model == model)]


def trace_rows(root: Path, text: str = "", status: str = ANY, verdict: str = ANY, model: str = ANY) -> list[list[Any]]:
    """Rows of the runs table, newest first (same order as `all_traces`), filtered as `filter_traces`."""
    return [[t.run_id, verdict_text(t.verdict), claim_text(t.status), t.steps, t.model,
             t.started_at.replace("T", " ").rstrip("Z"), t.path.parent.name if t.path.parent != root else "", t.task]
            for t in filter_traces(all_traces(root), text, status, verdict, model)]


def model_choices(root: Path) -> list[str]:
    return [ANY, *sorted({t.model for t in all_traces(root) if t.model})]


def trace_choices(root: Path) -> list[tuple[str, str]]:
    """(label, trace directory) for the run picker, newest first."""
    out = []
    for t in all_traces(root):
        task = t.task if len(t.task) <= 50 else t.task[:47] + "…"
        out.append((f"{t.run_id} · {t.status} · {task}", str(t.path)))
    return out


def trace_summary(trace: Trace) -> str:
    """Markdown header of an opened trace (every trace field escaped: it renders as text, ui/text.py)."""
    meta = trace.meta
    model = (meta.get("model") or {}).get("spec", "?")
    ex = meta.get("executor") or {}
    where = ex.get("name", "?") + (f" · {ex['scenario']} (seed {ex.get('seed')})" if ex.get("scenario") else "")
    lines = [f"**{md.text(meta.get('task', ''))}**",
             f"{md.text(verdict_text(meta.get('verdict')))} · {md.text(claim_text(trace.status))} · "
             f"run {md.code(trace.run_id)}",
             f"status **{md.text(trace.status)}** · {md.text(meta.get('reason') or '')} · "
             f"{md.text(meta.get('steps', 0))} steps · model {md.text(model)} · {md.text(where)} · "
             f"started {md.text(meta.get('started_at', '?'))}"]
    if meta.get("answer"):
        lines.append(f"answer: {md.text(meta['answer'])}")
    if trace.problems:
        lines.append("⚠ " + md.text("; ".join(trace.problems[:3])))
    return "\n\n".join(lines)


def step_view(trace: Trace, index: int) -> tuple[Image.Image | None, str, str, str]:
    """(screenshot with markers, thinking, action Markdown, timings Markdown) of step `index` (1-based over
    the recorded steps; len(steps)+1 shows the final screen)."""
    steps = trace.steps
    if index > len(steps) or not steps:
        try:
            final = trace.final_image()
        except VisagentError as exc:
            return None, "", f"final screen: {md.text(exc)}", ""
        status = trace.finished or {}
        return final, "", (f"**final screen** · {md.text(status.get('status', trace.status))} "
                           f"{md.text(status.get('reason', ''))}"), ""
    record = steps[max(1, index) - 1]
    try:
        path = trace.screenshot_path(record)  # only a file inside the trace (TraceError otherwise)
        image = Image.open(path).convert("RGB") if path is not None else None
    except (OSError, VisagentError, Image.DecompressionBombError):
        image = None
    geometry = record.get("geometry") or (trace.meta.get("executor") or {}).get("geometry")
    decision = (record.get("policy") or {}).get("decision")
    executed = decision in EXECUTED and record.get("result") is not None
    actions = record.get("actions") or []
    if image is not None and actions and isinstance(actions[0], dict):
        image = draw_markers(image, markers_for_action(actions[0], geometry, executed=executed))
    model = record.get("model") or {}
    thinking = model.get("thinking") or ""
    parts = [f"**step {record.get('step')}**"]
    for action in actions:
        args = {k: v for k, v in action.items() if k not in ("space", "mapping")}
        parts.append(md.code(json.dumps(args, ensure_ascii=False)))
    if decision:
        parts.append(f"policy: {md.text(decision)} {md.text((record.get('policy') or {}).get('reason') or '')}")
    if record.get("result"):
        r = record["result"]
        parts.append(f"result: {'ok' if r.get('ok', True) else 'failed'} {md.text(r.get('message') or '')} "
                     f"(screen changed: {md.text(r.get('changed'))})")
    for key in ("parse_error", "error"):
        if record.get(key):
            parts.append(f"{key.replace('_', ' ')}: {md.text(record[key])}")
    if model.get("answer"):
        parts.append("model answer:\n" + md.block(model["answer"][:2000]))
    timing = record.get("timings") or {}
    timing_md = " · ".join(f"{md.text(k)} {float(v):.3f} s" for k, v in timing.items()
                           if isinstance(v, (int, float)))
    return image, thinking, "\n\n".join(parts), timing_md


def report_for(path: str | None) -> tuple[Path | None, str]:
    """Write `<trace>/report.html`; returns (its path or None, a Markdown line saying what happened)."""
    if not path:
        return None, "open a run first"
    from visagent.traces.report import write_report

    try:
        out = write_report(path)
    except VisagentError as exc:
        return None, f"⚠ {md.text(exc)}"
    return out, f"report written to {md.code(out)}"


def gif_for(path: str | None) -> tuple[Path | None, str]:
    """Write `<trace>/run.gif` (visagent.traces.animation); returns (its path or None, a Markdown line)."""
    if not path:
        return None, "open a run first"
    from visagent.traces.animation import write_gif

    try:
        out = write_gif(path)
    except (VisagentError, ValueError) as exc:
        return None, f"⚠ {exc}"
    return out, f"GIF written to `{out}`"


def replay_message(path: str | None) -> str:
    """Replay the trace on a fresh executor like the recorded one; one Markdown line with the outcome."""
    if not path:
        return "open a run first"
    from visagent.traces.replay import replay_trace

    try:
        result = replay_trace(path)
    except (VisagentError, EngineError, ValueError) as exc:
        return f"⚠ replay could not run: {md.text(exc)}"
    return f"{'✔' if result.ok else '✘'} {md.text(result.message)}"


def build(dash: forms.Dashboard) -> tuple[Any, list[Any], list[Any]]:
    """Add the Traces tab's components and events to the current Blocks. Returns the refresh function and
    its inputs and outputs, for the app to call when the tab is shown or the page loads."""
    root = dash.trace_root
    loaded = gr.State(None)  # the opened trace's directory
    listing = gr.State({})  # the last listing: {"first": newest path, "state": {path: [status, steps]}}
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="vg-traces-refresh")
        picker = gr.Dropdown([], value=None, label="Open a run", scale=5, elem_id="vg-trace-picker")
    with gr.Row():
        find = gr.Textbox(label="Filter: text in run id, task or model", scale=3, elem_id="vg-trace-find")
        status_filter = gr.Dropdown(STATUS_CHOICES, value=ANY, label="Model's claim / end", scale=1,
                                    elem_id="vg-trace-status-filter")
        verdict_filter = gr.Dropdown(VERDICT_CHOICES, value=ANY, label="Goal (world check)", scale=1,
                                     elem_id="vg-trace-verdict-filter")
        model_filter = gr.Dropdown([ANY], value=ANY, label="Model", scale=1, allow_custom_value=True,
                                   elem_id="vg-trace-model-filter")
    filters = [find, status_filter, verdict_filter, model_filter]
    table = gr.Dataframe(headers=LIST_HEADERS, value=[], interactive=False, max_height=260, wrap=True,
                         label=f"Runs in {root}", elem_id="vg-trace-table")
    summary = gr.Markdown("", elem_id="vg-trace-summary", **md.MARKDOWN_SAFE)
    with gr.Row(equal_height=False):
        with gr.Column(scale=7):
            slider = gr.Slider(1, 2, value=1, step=1, label="Step (the last position is the final screen)",
                               elem_id="vg-trace-step")
            image = gr.Image(type="pil", interactive=False, label="Screenshot", elem_id="vg-trace-image",
                             height=480)
            gr.HTML(legend_html(), elem_id="vg-trace-legend")
        with gr.Column(scale=4):
            action = gr.Markdown("", elem_id="vg-trace-action", **md.MARKDOWN_SAFE)
            timing = gr.Markdown("", elem_id="vg-trace-timing", **md.MARKDOWN_SAFE)
            thinking = gr.Textbox(label="Thinking", lines=6, max_lines=14, interactive=False)
            with gr.Row():
                report_btn = gr.Button("HTML report", size="sm", elem_id="vg-report")
                gif_btn = gr.Button("Animated GIF", size="sm", elem_id="vg-gif")
                replay_btn = gr.Button("Replay", size="sm", elem_id="vg-replay")
            report_file = gr.File(label="Report", interactive=False, visible=False, elem_id="vg-report-file")
            replay_out = gr.Markdown("", elem_id="vg-replay-out", **md.MARKDOWN_SAFE)

    opened = [loaded, summary, slider, image, thinking, action, timing, report_file, replay_out]

    def on_refresh(current: str | None, last: dict | None, *filter_values: Any, reopen: bool = False) \
            -> tuple[Any, ...]:
        """New listing. Opens the newest run when a new one appeared (or none is open); re-reads the opened
        one when its status or step count moved (or `reopen`); else leaves the view as it is."""
        last = last or {}
        traces = all_traces(root)
        choices = trace_choices(root)
        first = str(traces[0].path) if traces else None
        state = {str(t.path): [t.status, t.steps] for t in traces}
        keep = current if current in state and first == last.get("first") else first
        moved = keep is not None and state.get(keep) != (last.get("state") or {}).get(keep)
        fresh = reopen or moved or keep != current or current is None
        opened_values = on_open(keep) if fresh else [gr.skip()] * len(opened)
        return (gr.update(choices=choices, value=keep), trace_rows(root, *filter_values),
                gr.update(choices=model_choices(root)), {"first": first, "state": state}, *opened_values)

    refresh_inputs = [loaded, listing, *filters]
    refresh_outputs = [picker, table, model_filter, listing, *opened]
    refresh.click(lambda current, seen, *values: on_refresh(current, seen, *values, reopen=True), refresh_inputs,
                  refresh_outputs, api_visibility="private")
    find.change(lambda *values: trace_rows(root, *values), filters, table, api_visibility="private",
                trigger_mode="always_last")
    for dropdown in (status_filter, verdict_filter, model_filter):
        dropdown.input(lambda *values: trace_rows(root, *values), filters, table, api_visibility="private")

    def on_open(path: str | None) -> tuple[Any, ...]:
        if not path:
            return None, "", gr.skip(), None, "", "", "", gr.update(visible=False), ""
        try:
            trace = read_trace(path)
        except VisagentError as exc:
            return None, f"⚠ {md.text(exc)}", gr.skip(), None, "", "", "", gr.update(visible=False), ""
        n = len(trace.steps)
        img, thought, act, tim = step_view(trace, 1)
        return (path, trace_summary(trace), gr.update(minimum=1, maximum=max(2, n + 1), value=1), img, thought,
                act, tim, gr.update(visible=False, value=None), "")

    picker.input(on_open, picker, opened, api_visibility="private")

    def on_row(evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value if evt is not None else None
        matches = [t for t in all_traces(root) if row and t.run_id == str(row[0])]
        if not matches:
            return (gr.skip(),) * (1 + len(opened))
        path = str(matches[0].path)
        return (path, *on_open(path))

    table.select(on_row, None, [picker, *opened], api_visibility="private")

    def on_step(path: str | None, index: float) -> tuple[Any, ...]:
        if not path:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            trace = read_trace(path)
        except VisagentError as exc:
            return None, "", f"⚠ {md.text(exc)}", ""
        return step_view(trace, int(index))

    slider.change(on_step, [loaded, slider], [image, thinking, action, timing], api_visibility="private",
                  trigger_mode="always_last")

    def on_report(path: str | None) -> tuple[Any, str]:
        out, text = report_for(path)
        return gr.update(visible=out is not None, value=None if out is None else str(out)), text

    report_btn.click(on_report, loaded, [report_file, replay_out], api_visibility="private")

    def on_gif(path: str | None) -> tuple[Any, str]:
        out, text = gif_for(path)
        return gr.update(visible=out is not None, value=None if out is None else str(out)), text

    gif_btn.click(on_gif, loaded, [report_file, replay_out], api_visibility="private")

    replay_btn.click(replay_message, loaded, replay_out, api_visibility="private")
    return on_refresh, refresh_inputs, refresh_outputs
