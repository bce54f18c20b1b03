"""The Scenarios tab: run a suite of sim or real-desktop scenarios (oracle or model) with a progress bar and a
results table."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from engine.errors import EngineError
from ui import forms, text as md
from ui.engines import ModelChoice
from ui.suites import WORLDS, SuiteRequest, SuiteSnapshot
from visagent.core.errors import VisagentError

#: keys of a suite row in the API (`/suite_status`), in the order SuiteRun keeps them
RESULT_KEYS = ["scenario", "seed", "success", "status", "steps", "seconds", "trace"]
#: the results table's columns: the world's verdict and the model's claim, each named for what it is
RESULT_HEADERS = ["scenario", "seed", "goal (world check)", "model's claim", "steps", "seconds", "trace"]


def display_row(row: tuple[Any, ...]) -> list[Any]:
    """A SuiteRun row as the results table shows it."""
    from visagent.core.verdict import claim_text, verdict_text

    scenario, seed, success, status, steps, seconds, trace = row
    return [scenario, seed, verdict_text(success == "✔"), claim_text(status), steps, seconds, trace_link(trace)]


def trace_link(trace: str) -> str:
    """The trace column: a Markdown link named by the run id to its HTML report when written, else its path."""
    from pathlib import Path

    if not trace:
        return ""
    report = Path(trace) / "report.html"
    if not report.is_file():
        return str(trace)
    return f"[{Path(trace).name}]({forms.file_url(report)})"


def progress_html(snap: SuiteSnapshot | None) -> str:
    """A progress bar for a suite (HTML)."""
    if snap is None:
        return '<div class="vg-progress"><div class="vg-bar" style="width:0%"></div></div>' \
               '<div class="vg-progress-label">no suite yet</div>'
    pct = 100.0 * snap.done / snap.total if snap.total else 100.0
    label = f"{snap.done}/{snap.total} episodes · {snap.successes} succeeded · {snap.elapsed:.0f} s"
    return (f'<div class="vg-progress"><div class="vg-bar" style="width:{pct:.1f}%"></div></div>'
            f'<div class="vg-progress-label">{html.escape(label)}</div>')


def tag_chart_html(per_tag: tuple[tuple[str, int, int], ...]) -> str:
    """Success (goal met) per tag as horizontal bars (HTML; tags come from the scenario files, escaped)."""
    if not per_tag:
        return ""
    rows = []
    for tag, won, n in per_tag:
        pct = 100.0 * won / n if n else 0.0
        rows.append(f'<div class="vg-tag-row" data-tag="{html.escape(tag)}" data-rate="{pct:.0f}">'
                    f'<span class="vg-tag-name">{html.escape(tag)}</span>'
                    f'<span class="vg-tag-bar"><span style="width:{pct:.1f}%"></span></span>'
                    f'<span class="vg-tag-rate">{won}/{n} · {pct:.0f}%</span></div>')
    return f'<div class="vg-tag-chart"><div class="vg-tag-title">goal met, per tag</div>{"".join(rows)}</div>'


def suite_request(dash: forms.Dashboard, split: str, tags: str, policy: str, seeds: float, workers: float,
                  max_steps: float | None, ray: str = "", world: str = "sim") -> SuiteRequest:
    """A SuiteRequest from the form (`ray`: a Ray address to run the episodes on, "" here; `world`: sim or
    real-desktop). Raises ConfigError for a bad number, address or world."""
    from visagent.core.errors import ConfigError

    try:
        n_seeds, n_workers = int(seeds), int(workers)
        limit = int(max_steps) if max_steps else None
    except (TypeError, ValueError):
        raise ConfigError("seeds, workers and max steps must be whole numbers") from None
    if world not in WORLDS:
        raise ConfigError(f"world must be {' or '.join(WORLDS)}, got {world!r}")
    model = ModelChoice("oracle", "") if policy == "oracle" else dash.default_model
    tag_list = tuple(t.strip() for t in (tags or "").replace(";", ",").split(",") if t.strip())
    address = (ray or "").strip()
    if address:
        from visagent.traces.ray_eval import check_address

        check_address(address)
    return SuiteRequest(model=model, split="" if split == "any" else split, tags=tag_list, seeds=n_seeds,
                        workers=n_workers, max_steps=limit, ray=address, world=world)


def build(dash: forms.Dashboard) -> None:
    """Add the Scenarios tab's components and events to the current Blocks."""
    seen = gr.State({})
    with gr.Row():
        world = gr.Radio([("sim", "sim"), ("real-desktop (real programs, an Xvfb per episode)", "real-desktop")],
                         value="sim", label="World", scale=2, elem_id="vg-suite-world")
        split = gr.Dropdown(["any", "train", "heldout"], value="train", label="Split", scale=1)
        tags = gr.Textbox(label="Tags (any of, comma-separated)", placeholder="easy, app:settings", scale=2)
        policy = gr.Radio([("Scripted oracle", "oracle"), (f"Model ({dash.default_model.label})", "model")],
                          value="oracle", label="Policy", scale=2, elem_id="vg-suite-policy")
    with gr.Row():
        seeds = gr.Number(value=1, precision=0, label="Seeds per scenario", minimum=1)
        workers = gr.Number(value=2, precision=0, label="Parallel episodes", minimum=1)
        max_steps = gr.Number(value=0, precision=0, minimum=0, label="Step limit (0: each scenario's own)")
        ray = gr.Textbox(value=dash.settings.ray or "", label="Ray address (blank: run here)",
                         placeholder="auto or ray://head:10001", elem_id="vg-suite-ray")
    with gr.Row():
        run_btn = gr.Button("Run suite", variant="primary", elem_id="vg-suite-run")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="vg-suite-cancel")
    progress = gr.HTML(progress_html(None), elem_id="vg-suite-progress")
    message = gr.Markdown("", elem_id="vg-suite-message", **md.MARKDOWN_SAFE)
    chart = gr.HTML("", elem_id="vg-suite-chart")
    results = gr.Dataframe(headers=RESULT_HEADERS, value=[], interactive=False, label="Results", wrap=True,
                           datatype=["str", "number", "str", "str", "number", "number", "markdown"],
                           elem_id="vg-suite-results", max_height=420)

    def on_run(*values: Any) -> tuple[str, dict]:
        try:
            suite = dash.suites.start(suite_request(dash, *values))
        except (VisagentError, EngineError) as exc:
            return f"⚠ {md.text(exc)}", gr.skip()
        return f"started {suite.id}: {suite.total} episodes", {}

    run_btn.click(on_run, [split, tags, policy, seeds, workers, max_steps, ray, world], [message, seen],
                  api_visibility="private")

    def on_world(kind: str) -> tuple[Any, str]:
        """The real-desktop scenarios are all held out: a real-desktop suite starts from every split."""
        if kind == "real-desktop":
            return "any", ("real-desktop: each episode starts its own Xvfb and programs (`visagent scenarios list "
                           "--world real-desktop`); seeds repeat a scenario")
        return "train", ""

    world.change(on_world, world, [split, message], api_visibility="private")

    def on_cancel() -> str:
        suite = dash.suites.current()
        if suite is None or suite.snapshot().finished:
            return "no suite is running"
        suite.cancel.set()
        return "cancelling: episodes already running finish, the rest are skipped"

    cancel_btn.click(on_cancel, None, message, api_visibility="private")

    def poll(last: dict | None) -> tuple[Any, ...]:
        last = dict(last or {})
        suite = dash.suites.current()
        if suite is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        snap = suite.snapshot()
        key = (snap.id, snap.done, snap.finished, round(snap.elapsed))
        if last.get("key") == key:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        rows_changed = last.get("rows") != (snap.id, snap.done)
        last.update(key=key, rows=(snap.id, snap.done))
        rows = [display_row(r) for r in snap.rows] if rows_changed else gr.skip()
        chart_html = tag_chart_html(snap.per_tag) if rows_changed else gr.skip()
        return progress_html(snap), md.text(snap.message), rows, chart_html, last

    timer = gr.Timer(0.5)
    timer.tick(poll, seen, [progress, message, results, chart, seen], show_progress="hidden", api_visibility="private",
               concurrency_limit=None, trigger_mode="always_last")
