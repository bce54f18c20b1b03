"""A run as an animated GIF: each step's screenshot with the markers (visagent/traces/markers.py) and a caption band
under it (never over the screen) saying the step and its action, then the final screen with the verdict and
the model's claim. Written with Pillow; `visagent report TRACE --gif` and the dashboard's Traces tab use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from visagent.traces.markers import draw_cross, draw_ring, marker_size
from visagent.traces.report import model_point_to_image, screen_point_to_image
from visagent.core.trace import read_trace
from visagent.core.verdict import claim_text, verdict_text

#: Longest side of a frame's screenshot, in pixels (the caption band is added below it).
GIF_MAX_SIDE = 640
STEP_MS = 1200
FINAL_MS = 3000
CAPTION_LINES = 2
EXECUTED = ("allowed", "approved")


def write_gif(trace_path: str | Path, out_path: str | Path | None = None, *, max_side: int = GIF_MAX_SIDE) -> Path:
    """Write the run's GIF to `out_path` (default `<trace>/run.gif`); returns the path. Steps without a
    readable screenshot are left out. Raises TraceError for a missing trace, ValueError when there is no screen
    at all to show or `max_side` is below 64."""
    if max_side < 64:
        raise ValueError(f"the GIF's size must be at least 64 px, got {max_side}")
    trace = read_trace(trace_path)
    frames, durations = gif_frames(trace, max_side=max_side)
    if not frames:
        raise ValueError(f"{trace.path}: no screenshot to animate (the run recorded none)")
    out = Path(out_path) if out_path is not None else Path(trace.path) / "run.gif"
    out.parent.mkdir(parents=True, exist_ok=True)
    # one shared palette is not needed: Pillow quantizes each frame; loop=0 repeats forever
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   disposal=1, optimize=False)
    return out


def gif_frames(trace: Any, *, max_side: int = GIF_MAX_SIDE) -> tuple[list[Image.Image], list[int]]:
    """(frames, milliseconds each): one per step with a screenshot, then the final screen."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    total = len(trace.steps)
    for record in trace.steps:
        image = _open(Path(trace.path) / str(record.get("screenshot") or ""))
        if image is None:
            continue
        geometry = record.get("geometry") or (trace.meta.get("executor") or {}).get("geometry") or {}
        pointed, landed = _points(record, geometry)
        caption = [f"step {record.get('step', '?')}/{total}: {_action_words(record)}", _result_words(record)]
        frames.append(_frame(image, pointed, landed, caption, max_side))
        durations.append(STEP_MS)
    final = _open(Path(trace.path) / "final.png")
    if final is not None:
        meta = trace.meta
        caption = [f"final screen · {verdict_text(meta.get('verdict'))} · {claim_text(meta.get('status'))}",
                   str(meta.get("reason") or "")]
        frames.append(_frame(final, [], [], caption, max_side))
        durations.append(FINAL_MS)
    return frames, durations


def _open(path: Path) -> Image.Image | None:
    if not path.name or not path.is_file():
        return None
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError):
        return None


def _points(record: dict[str, Any], geometry: dict[str, Any]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    pointed: list[tuple[float, float]] = []
    landed: list[tuple[float, float]] = []
    executed = (record.get("policy") or {}).get("decision") in EXECUTED and record.get("result") is not None
    for action in record.get("actions") or []:
        if not isinstance(action, dict):
            continue
        mapping = action.get("mapping")
        for which in ("model", "model2"):
            try:
                p = model_point_to_image(mapping, which) if isinstance(mapping, dict) else None
            except (KeyError, TypeError, ValueError):
                p = None
            if p is not None:
                pointed.append(p)
        if executed and geometry and action.get("space", "screen") == "screen":
            for key in ("coordinate", "coordinate2"):
                if action.get(key) is not None:
                    try:
                        landed.append(screen_point_to_image(action[key], geometry))
                    except (TypeError, ValueError, IndexError):
                        pass
    return pointed, landed


def _action_words(record: dict[str, Any]) -> str:
    actions = [a for a in record.get("actions") or [] if isinstance(a, dict)]
    if not actions:
        return "parse error" if record.get("parse_error") else "no action"
    parts = []
    for action in actions:
        args = {k: v for k, v in action.items() if k not in ("space", "mapping", "action")}
        parts.append(" ".join([str(action.get("action", "?"))]
                              + [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items()]))
    return "; ".join(parts)


def _result_words(record: dict[str, Any]) -> str:
    decision = (record.get("policy") or {}).get("decision")
    if decision and decision not in EXECUTED:
        return f"not executed: {decision} {(record.get('policy') or {}).get('reason') or ''}".strip()
    result = record.get("result")
    if not isinstance(result, dict):
        return str(record.get("error") or "")
    state = "ok" if result.get("ok", True) else f"failed: {result.get('message') or ''}"
    changed = {True: ", screen changed", False: ", screen did not change"}.get(result.get("changed"), "")
    return f"result: {state}{changed}"


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # an old Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """`text` (printable characters only) cut with … to fit `width` pixels."""
    text = "".join(c if c.isprintable() else " " for c in text)
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _frame(image: Image.Image, pointed: list[tuple[float, float]], landed: list[tuple[float, float]],
           caption: list[str], max_side: int) -> Image.Image:
    ratio = min(1.0, max_side / max(image.size))
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    shot = image.resize(size, Image.Resampling.LANCZOS) if ratio < 1.0 else image.copy()
    draw = ImageDraw.Draw(shot)
    radius, width = marker_size(*shot.size)
    for p in pointed:
        draw_ring(draw, (p[0] * ratio, p[1] * ratio), radius, width)
    for p in landed:
        draw_cross(draw, (p[0] * ratio, p[1] * ratio), radius, width)
    font_px = max(11, min(16, shot.width // 40))
    line_h = font_px + 6
    band = line_h * CAPTION_LINES + 8
    frame = Image.new("RGB", (shot.width, shot.height + band), (24, 24, 32))
    frame.paste(shot, (0, 0))
    text = ImageDraw.Draw(frame)
    font = _font(font_px)
    for i, line in enumerate(caption[:CAPTION_LINES]):
        text.text((6, shot.height + 4 + i * line_h), _fit(text, line, font, shot.width - 12), font=font,
                  fill=(240, 240, 245) if i == 0 else (170, 175, 190))
    return frame
