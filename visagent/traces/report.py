"""A self-contained HTML report of one trace: every step's screenshot with overlays, thoughts, actions, timings.

Screenshots are downscaled and inlined as base64 JPEG, so the page is one file that opens anywhere. Each
screenshot is drawn in an SVG whose viewBox is the screenshot's own pixel size, so overlays sit at image
pixels, in the one marker style (visagent/traces/markers.py): a pink ring where the model pointed (`mapping.model`
converted to image pixels) and a blue cross where the click landed (the executed screen point converted with
the geometry's offset and scale). Each marker carries `data-x` / `data-y` attributes with those image-pixel
coordinates.

A damaged trace (torn line, a record that breaks the format, missing screenshot, a screenshot name outside
the trace) is reported inside the page, never raised; only a trace whose directory or meta.json is missing or
invalid raises TraceError (from `visagent.core.trace.read_trace`). Only files inside the trace are ever inlined.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from visagent.core.errors import VisagentError
from visagent.traces.markers import legend_html, svg_marker
from visagent.core.trace import read_trace
from visagent.core.verdict import BADGE_CSS, badge_html, claim_text

#: Longest side, in pixels, of a screenshot inlined in the report (keeps a 15-step report well under 2 MB).
MAX_SIDE = 900
JPEG_QUALITY = 70

Point = tuple[float, float]


def write_report(trace_path: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the HTML report of the trace directory `trace_path` to `out_path` (default `<trace>/report.html`).

    Returns the path written. Raises TraceError when the directory or its meta.json is missing or unreadable;
    damaged lines and missing screenshots are shown in the page instead.
    """
    trace = read_trace(trace_path)
    out = Path(out_path) if out_path is not None else Path(trace.path) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(trace), encoding="utf-8")
    return out


def render_report(trace: Any) -> str:
    """The report page for a loaded `visagent.core.trace.Trace`, as one HTML string."""
    meta = trace.meta
    problems = list(trace.problems)
    # the CSS first: a task holding "{badge_css}" must stay text
    parts: list[str] = [_HEAD.replace("{badge_css}", BADGE_CSS).replace("{legend}", legend_html())
                        .replace("{title}", _e(f"visagent report: {meta.get('task', '')}"))]
    parts.append(_summary(meta, trace))
    step_html: list[str] = []
    for record in trace.records:
        kind = record.get("type")
        if kind == "step":
            step_html.append(_step(trace, record, problems))
        elif kind == "control":
            step_html.append(
                f'<div class="control">control: <b>{_e(record.get("control", ""))}</b> {_e(record.get("note", ""))}'
                f' <span class="t">{_time(record.get("t"))}</span></div>'
            )
    final = _final(trace, problems)
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        parts.append(f'<section class="problems"><h2>Problems in this trace</h2><ul>{items}</ul></section>')
    parts.extend(step_html)
    parts.append(final)
    parts.append("</body></html>\n")
    return "\n".join(parts)


# -- coordinates ---------------------------------------------------------------------------------------

def model_point_to_image(mapping: dict[str, Any], which: str = "model") -> Point | None:
    """Where the model pointed, in pixels of the screenshot it saw (physical pixels), or None.

    `mapping` is a trace action's `mapping` dict: screen ≈ offset + model * factor (logical px), and the
    screenshot has `scale` physical pixels per logical pixel, so image = model * factor * scale.
    """
    point = mapping.get(which)
    if point is None:
        return None
    scale = float(mapping.get("scale", 1.0))
    # norm1000 values are positions; resized/absolute values are pixel indices, whose centre is +0.5
    half = 0.0 if mapping.get("space") == "norm1000" else 0.5
    return ((float(point[0]) + half) * float(mapping["factor_x"]) * scale,
            (float(point[1]) + half) * float(mapping["factor_y"]) * scale)


def screen_point_to_image(point: Any, geometry: dict[str, Any]) -> Point:
    """A global logical screen point → pixels of the screenshot of the monitor described by `geometry`."""
    scale = float(geometry.get("scale") or geometry.get("physical_width", 1) / max(1, geometry.get("width", 1)))
    return ((float(point[0]) - float(geometry.get("offset_x", 0))) * scale,
            (float(point[1]) - float(geometry.get("offset_y", 0))) * scale)


# -- page parts ------------------------------------------------------------------------------------------

def _summary(meta: dict[str, Any], trace: Any) -> str:
    model = meta.get("model") or {}
    executor = meta.get("executor") or {}
    rows = [
        ("task", meta.get("task", "")),
        ("goal (world check)", _verdict(meta.get("verdict"))),
        ("side effects (not asked for)", _side_effects(meta.get("verdict"))),
        ("model's own claim", f"{meta.get('status', '?')}" + (f" — {meta['reason']}" if meta.get("reason") else "")),
        ("answer", meta.get("answer")),
        ("steps", meta.get("steps")),
        ("model", f"{model.get('spec', '?')} ({model.get('model_type', '?')}, {model.get('coord_space', '?')})"),
        ("executor", ", ".join(f"{k}={v}" for k, v in executor.items() if k != "geometry")),
        ("started / ended", f"{meta.get('started_at')} / {meta.get('ended_at')}"),
        ("run id", meta.get("run_id")),
        ("trace", str(trace.path)),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e('' if v is None else v)}</td></tr>" for k, v in rows)
    status = str(meta.get("status", "unknown"))
    return (f'<h1>{_e(meta.get("task", "(no task)"))}</h1>'
            f'<p class="verdict-line">{badge_html(meta.get("verdict"))} '
            f'<span class="status s-{_e(status)}">{_e(claim_text(status))}</span></p><table class="meta">{body}</table>')


def _step(trace: Any, record: dict[str, Any], problems: list[str]) -> str:
    step = record.get("step", "?")
    geometry = record.get("geometry") or (trace.meta.get("executor") or {}).get("geometry") or {}
    markers: list[tuple[str, Point, str]] = []
    action_rows: list[str] = []
    for action in record.get("actions") or []:
        action_rows.append(_action_row(action))
        mapping = action.get("mapping")
        for which, coord in (("model", "coordinate"), ("model2", "coordinate2")):
            if mapping and mapping.get(which) is not None:
                px = model_point_to_image(mapping, which)
                if px is not None:
                    markers.append(("pointed", px, f"model pointed at {mapping[which]} ({mapping['space']})"))
            if action.get(coord) is not None and action.get("space", "screen") == "screen" and geometry:
                px = screen_point_to_image(action[coord], geometry)
                markers.append(("landed", px, f"landed at screen {action[coord]}"))
    try:
        shot = trace.screenshot_path(record)
    except VisagentError as exc:
        problems.append(f"step {step}: {exc}")
        shot = None
    image_html = _image_svg(trace, shot, markers, f"step {step}", problems, needed=bool(record.get("screenshot")))
    model = record.get("model") or {}
    policy = record.get("policy") or {}
    result = record.get("result") or {}
    timings = record.get("timings") or {}
    prompt = record.get("prompt") or {}
    info: list[str] = []
    if model.get("thinking"):
        info.append(f'<div class="thinking"><h4>thinking</h4><pre>{_e(model["thinking"])}</pre></div>')
    if model.get("answer") or model.get("raw"):
        answer = model.get("answer") or model.get("raw")
        info.append(f'<div class="answer"><h4>answer</h4><pre>{_e(answer)}</pre></div>')
    if action_rows:
        info.append('<table class="actions"><tr><th>action</th><th>model point</th><th>screen point</th></tr>'
                    + "".join(action_rows) + "</table>")
    if policy:
        decision = _e(policy.get("decision") or "none")
        info.append(f'<p class="policy p-{decision}">policy: <b>{decision}</b>'
                    f' {_e(policy.get("reason", ""))}</p>')
    if result:
        ok = "ok" if result.get("ok", True) else "FAILED"
        info.append(f'<p class="result">result: {ok} {_e(result.get("message", ""))}'
                    f' (changed: {_e(result.get("changed"))})</p>')
    if record.get("ignored_actions"):
        ignored = "; ".join(_summary_of(a) for a in record["ignored_actions"])
        info.append(f'<p class="ignored">ignored further calls: {_e(ignored)}</p>')
    for message in record.get("parse_errors") or []:
        info.append(f'<p class="error">retried after: {_e(message)}</p>')
    if record.get("feedback"):
        info.append(f'<p class="feedback">shown with the screenshot: {_e(record["feedback"])}</p>')
    if record.get("tool_result"):
        info.append(f'<p class="told">told the model: {_e(record["tool_result"])}</p>')
    if record.get("parse_error"):
        info.append(f'<p class="error">parse error: {_e(record["parse_error"])}</p>')
    if record.get("error"):
        info.append(f'<p class="error">error: {_e(record["error"])}</p>')
    if timings:
        info.append('<p class="timings">timings (s): '
                    + ", ".join(f"{_e(k)} {float(v):.3f}" for k, v in timings.items() if _is_num(v)) + "</p>")
    tokens = []
    if prompt:
        tokens.append(f"prompt {prompt.get('tokens', '?')} tokens ({prompt.get('visual_tokens', '?')} visual, "
                      f"{prompt.get('cached_tokens', 0)} cached, {prompt.get('images', '?')} images)")
    if model.get("generated_tokens") is not None:
        tokens.append(f"generated {model['generated_tokens']} ({model.get('finish_reason', '?')})")
    if record.get("attempts", 1) != 1:
        tokens.append(f"attempts {record['attempts']}")
    if tokens:
        info.append(f'<p class="tokens">{_e("; ".join(tokens))}</p>')
    return (f'<section class="step" id="step-{_e(step)}"><h2>Step {_e(step)}</h2>'
            f'<div class="row"><div class="shot">{image_html}</div>'
            f'<div class="info">{"".join(info)}</div></div></section>')


def _final(trace: Any, problems: list[str]) -> str:
    try:
        path = trace.file("final.png")
    except VisagentError as exc:
        problems.append(f"final screen: {exc}")
        path = None
    ended = (trace.meta.get("status") or "running") != "running"
    image_html = _image_svg(trace, path, [], "final screen", problems, needed=ended)
    return f'<section class="step" id="final"><h2>Final screen</h2><div class="shot">{image_html}</div></section>'


def _action_row(action: dict[str, Any]) -> str:
    args = {k: v for k, v in action.items() if k not in ("space", "mapping")}
    name = args.pop("action", "?")
    mapping = action.get("mapping") or {}
    model_pt = f"{_pt(mapping['model'])} ({mapping.get('space')})" if mapping.get("model") is not None else ""
    screen_pt = f"{_pt(action['coordinate'])} ({action.get('space')})" if action.get("coordinate") is not None else ""
    rest = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items() if k not in ("coordinate",))
    return f"<tr><td><b>{_e(name)}</b> {_e(rest)}</td><td>{_e(model_pt)}</td><td>{_e(screen_pt)}</td></tr>"


def _verdict(verdict: Any) -> str:
    if not isinstance(verdict, dict) or not isinstance(verdict.get("success"), bool):
        return "no check (only a sim scenario's own task is checked)"
    return f"{'succeeded' if verdict['success'] else 'FAILED'} ({verdict.get('by', '?')})"


def _side_effects(verdict: Any) -> str | None:
    """The lasting changes the task did not ask for, from the verdict; None (row left empty) when unknown."""
    effects = verdict.get("side_effects") if isinstance(verdict, dict) else None
    if not isinstance(effects, list):
        return None
    return "; ".join(str(e) for e in effects) if effects else "none"


def _pt(point: Any) -> str:
    """[x, y] with whole numbers written without a decimal point."""
    return "[" + ", ".join(f"{float(v):g}" for v in point) + "]"


def _summary_of(action: dict[str, Any]) -> str:
    args = {k: v for k, v in action.items() if k not in ("space", "mapping")}
    return " ".join([str(args.pop("action", "?"))] + [f"{k}={json.dumps(v)}" for k, v in args.items()])


def _image_svg(trace: Any, path: Path | None, markers: list[tuple[str, Point, str]], label: str,
               problems: list[str], *, needed: bool) -> str:
    """The screenshot in an SVG of its own pixel size, with `markers` ((kind, image point, title)) drawn in the
    one marker style (visagent/traces/markers.py)."""
    if path is None or not path.is_file():
        name = "(none recorded)" if path is None else path.name
        if needed:
            problems.append(f"{label}: screenshot {name} is missing")
            return f'<p class="missing">screenshot {_e(name)} is missing</p>'
        return '<p class="missing">no screenshot</p>'
    try:
        with Image.open(path) as img:
            img.load()
            width, height = img.size
            data = _encode(img)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        problems.append(f"{label}: screenshot {path.name} cannot be read ({' '.join(str(exc).split())})")
        return f'<p class="missing">screenshot {_e(path.name)} cannot be read</p>'
    return (f'<svg class="screenshot" viewBox="0 0 {width} {height}" width="100%" data-width="{width}" '
            f'data-height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<image href="data:image/jpeg;base64,{data}" x="0" y="0" width="{width}" height="{height}"/>'
            + "".join(svg_marker(kind, px, title, (width, height)) for kind, px, title in markers) + "</svg>")


def _encode(img: Image.Image) -> str:
    """Downscale to MAX_SIDE and encode as base64 JPEG (the page stays small; overlays use the full size)."""
    img = img.convert("RGB")
    if max(img.size) > MAX_SIDE:
        ratio = MAX_SIDE / max(img.size)
        size = (max(1, round(img.width * ratio)), max(1, round(img.height * ratio)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _time(t: Any) -> str:
    if not _is_num(t):
        return ""
    try:
        return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"
    except (OverflowError, ValueError, OSError):  # a time no calendar holds (a made-up trace)
        return ""


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1b1b1b;max-width:1400px}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.1em;border-bottom:1px solid #ddd}
table.meta th{text-align:left;padding-right:1em;vertical-align:top;color:#555}
.status{display:inline-block;padding:.1em .6em;border-radius:1em;background:#eee;font-weight:bold}
.s-success,.s-answered{background:#c8f7d2}.s-failure,.s-error,.s-parse_error,.s-loop,.s-timeout{background:#ffd6d6}
.row{display:flex;gap:1.2em;align-items:flex-start}.shot{flex:0 0 55%}.info{flex:1;min-width:0}
svg.screenshot{border:1px solid #ccc;max-width:100%;height:auto}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;margin:.2em 0;font-size:.85em}
.problems{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}
.error,.missing{color:#b00020}.p-blocked,.p-denied{color:#b00020}.control{margin:.6em 0;color:#555}
table.actions td,table.actions th{border:1px solid #ddd;padding:.2em .4em;font-size:.9em}
.legend{display:flex;flex-wrap:wrap;gap:.4em 1.5em;font-size:.9em;color:#444}
.legend svg{vertical-align:middle}
{badge_css}
</style></head><body>
{legend}"""
