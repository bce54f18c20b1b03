"""An HTML page of the items a model missed: the screenshot with the box (green) and the predicted point (red),
a close-up around both, the instruction and the model's output.

Pictures go next to the page in `<page stem>_files/` as JPEGs (a ScreenSpot-Pro run misses hundreds of 4K
screenshots; inlining them would make one huge file). Nothing is fetched from the network.
"""

from __future__ import annotations

import html
from pathlib import Path

from PIL import Image

from visagent.core.errors import ConfigError
from visagent.grounding.predict import annotate
from visagent.grounding.scoring import GroundingReport, ItemOutcome

_VIEW_SIDE = 1280  # longest side of the full-screen picture
_CLOSE_SIDE = 480  # longest side of the close-up

_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
.miss{border-top:1px solid #ccc;padding:1em 0}
.pics{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}
.pics img{max-width:100%;border:1px solid #999}
pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;max-height:12em;overflow:auto}
.tag{display:inline-block;background:#eee;border-radius:3px;padding:0 .4em;margin-right:.3em}
.wrong_format{background:#fdd}.error{background:#fbb}"""


def write_misses_html(report: GroundingReport, out: str | Path, *, limit: int | None = None) -> Path:
    """Write the misses page (wrong, wrong_format and error items, in input order) to `out`; returns its path.

    `limit`: at most this many misses are drawn (the page says how many more there were).
    Raises ConfigError when the page or its picture folder cannot be written.
    """
    page = Path(out).expanduser()
    files = page.with_name(page.stem + "_files")
    misses = report.misses()
    shown = misses if limit is None else misses[:limit]
    try:
        files.mkdir(parents=True, exist_ok=True)
        body = [_entry(n, o, files) for n, o in enumerate(shown, 1)]
        rest = len(misses) - len(shown)
        head = (f"<h1>Grounding misses: {len(misses)} of {len(report.outcomes)}</h1>"
                f"<p>model <b>{html.escape(report.model)}</b>; accuracy {report.accuracy:.1%}; "
                f"wrong_format {report.count('wrong_format')}; engine errors {report.count('error')}; "
                f"skipped {len(report.problems)}. Green: the annotated box; red: the predicted point.</p>")
        tail = f"<p>{rest} more misses not drawn.</p>" if rest > 0 else ""
        page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>grounding misses</title>"
                        f"<style>{_STYLE}</style></head><body>{head}{''.join(body)}{tail}</body></html>\n",
                        encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html {page}: cannot write: {exc.strerror or exc}") from exc
    return page


def _entry(n: int, outcome: ItemOutcome, files: Path) -> str:
    item, result = outcome.item, outcome.result
    pics = ""
    try:
        with Image.open(outcome.image_path) as img:
            marked = annotate(img, result, outcome.box)
        full = _shrink(marked, _VIEW_SIDE)
        full.save(files / f"{n:05d}.jpg", quality=85)
        pics = f"<img src='{files.name}/{n:05d}.jpg' alt='screenshot'>"
        crop = _close_up(marked, outcome)
        if crop is not None:
            crop.save(files / f"{n:05d}_close.jpg", quality=90)
            pics += f"<img src='{files.name}/{n:05d}_close.jpg' alt='close-up'>"
    except OSError as exc:  # the image vanished since scoring: say so on the page
        pics = f"<p>image unavailable: {html.escape(str(exc))}</p>"
    point = "none" if result is None or result.point is None else \
        f"[{result.point[0]:.1f}, {result.point[1]:.1f}] px (model {result.space} {list(result.point_model or ())})"
    tags = "".join(f"<span class='tag'>{html.escape(k)}: {html.escape(str(v))}</span>" for k, v in (
        ("ui_type", item.ui_type), ("group", item.group), ("platform", item.platform),
        ("application", item.application)))
    raw = "" if result is None else result.raw
    why = f"<p>{html.escape(outcome.error)}</p>" if outcome.error else ""
    return (f"<div class='miss'><h3>{n}. <span class='tag {outcome.correctness}'>{outcome.correctness}</span> "
            f"{html.escape(item.instruction)}</h3><p>{tags}</p>"
            f"<p>id {html.escape(item.id)} &middot; {html.escape(item.file)} row {item.row} &middot; "
            f"box {[round(v, 1) for v in outcome.box]} &middot; point {html.escape(point)}</p>{why}"
            f"<div class='pics'>{pics}</div><pre>{html.escape(raw)}</pre></div>")


def _shrink(img: Image.Image, side: int) -> Image.Image:
    scale = side / max(img.size)
    if scale >= 1:
        return img
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def _close_up(img: Image.Image, outcome: ItemOutcome) -> Image.Image | None:
    """The region around the box and the point (padded), when it is much smaller than the screenshot."""
    x1, y1, x2, y2 = outcome.box
    result = outcome.result
    if result is not None and result.point is not None:
        px, py = result.point
        x1, y1, x2, y2 = min(x1, px), min(y1, py), max(x2, px), max(y2, py)
    pad = max(40.0, 0.5 * max(x2 - x1, y2 - y1))
    left, top = max(0, int(x1 - pad)), max(0, int(y1 - pad))
    right, bottom = min(img.width, int(x2 + pad) + 1), min(img.height, int(y2 + pad) + 1)
    if right <= left or bottom <= top or (right - left) * (bottom - top) > 0.5 * img.width * img.height:
        return None
    return _shrink(img.crop((left, top, right, bottom)), _CLOSE_SIDE)
