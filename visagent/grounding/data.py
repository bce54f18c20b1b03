"""Grounding annotation files as distributed: ScreenSpot-Pro, original ScreenSpot / ScreenSpot-v2, converted v2.

Flavours (every box becomes (x1, y1, x2, y2) in pixels of the annotated image):

- "pro": ScreenSpot-Pro, one JSON list per application (`<application>_<platform>.json`): `img_filename`,
  `bbox` [x1, y1, x2, y2], `img_size` [w, h], `instruction`, `ui_type` (text/icon), `group`, `platform`,
  `application`, `id`. The sim export (`visagent scenarios export-grounding`) writes this flavour.
- "v1": original ScreenSpot and ScreenSpot-v2 files as released (`screenspot_desktop.json`,
  `screenspot_mobile_v2.json`, ...): `img_filename`, `bbox` [x, y, w, h], `instruction`, `data_type`
  (text/icon), `data_source` (ios, android, macos, windows, a web site). No `img_size`.
- "v2": ScreenSpot-v2 converted to the Pro layout: `bbox` [x1, y1, x2, y2] with `img_size`, and the v1 names
  (`data_type`, `data_source`) or the Pro ones.

Detection ("auto", per file, from the keys of its rows): `ui_type`, `group` or `application` → pro;
`data_type` / `data_source` with `img_size` → v2, without → v1. A file with none of these keys is judged by
its boxes: a box whose third/fourth number is not above its first/second cannot be x1,y1,x2,y2 → v1; a box
whose x+w or y+h overruns `img_size` cannot be x,y,w,h → pro. Otherwise it is ambiguous: the file is reported
and skipped, and `--flavour` decides. For v1/v2 the group is the file's kind (mobile / desktop / web, from
its name) and the platform is `data_source`.

Bad rows are never fatal: each becomes a `LoadProblem` naming the file and the row (0-based index in its
JSON list), and the row is skipped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.core.errors import ConfigError

FLAVOURS: tuple[str, ...] = ("auto", "pro", "v1", "v2")
_PRO_KEYS = ("ui_type", "group", "application")
_V1_KEYS = ("data_type", "data_source")
_FILE_KINDS = ("mobile", "desktop", "web")
#: data_source / platform values of phones and tablets (the prompt uses the mobile_use tool for them).
PHONE_PLATFORMS = frozenset({"ios", "android", "phone", "mobile", "ipados"})

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GroundingItem:
    """One instruction on one screenshot. `bbox` (x1, y1, x2, y2) in pixels of the annotated image, whose size
    is `img_size` (None when the file does not say). `file`/`row` say where it came from."""

    id: str
    file: str
    row: int
    img_filename: str
    bbox: Box
    instruction: str
    ui_type: str
    group: str
    platform: str
    application: str
    img_size: tuple[int, int] | None = None
    flavour: str = "pro"

    @property
    def prompt_platform(self) -> str:
        """"phone" for phone/tablet items (ScreenSpot mobile, android/ios sources), else "desktop"."""
        return "phone" if self.platform.lower() in PHONE_PLATFORMS or self.group == "mobile" else "desktop"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.file, "row": self.row, "img_filename": self.img_filename,
                "bbox": list(self.bbox), "img_size": None if self.img_size is None else list(self.img_size),
                "instruction": self.instruction, "ui_type": self.ui_type, "group": self.group,
                "platform": self.platform, "application": self.application, "flavour": self.flavour}


@dataclass(frozen=True)
class LoadProblem:
    """A file or row that was skipped, and why. `row` is the 0-based index in the file's list (None: whole file)."""

    file: str
    row: int | None
    message: str

    def line(self) -> str:
        return f"{self.file}: {'' if self.row is None else f'row {self.row}: '}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "message": self.message}


@dataclass
class GroundingSet:
    """Items read from annotation files, the problems met, and the flavour used per file with the reason."""

    items: list[GroundingItem] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    flavours: dict[str, tuple[str, str]] = field(default_factory=dict)


def load_annotations(path: str | Path, flavour: str = "auto") -> GroundingSet:
    """Read one annotation JSON file, or every `*.json` file directly inside a directory (sorted by name).

    Raises ConfigError when `path` does not exist, a directory holds no .json file, or `flavour` is unknown;
    everything wrong inside the files is reported in `GroundingSet.problems` and skipped.
    """
    if flavour not in FLAVOURS:
        raise ConfigError(f"unknown annotation flavour {flavour!r}; expected one of: {', '.join(FLAVOURS)}")
    root = Path(path).expanduser()
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".json" and p.is_file())
        if not files:
            raise ConfigError(f"{root} holds no .json annotation files (ScreenSpot-Pro: the annotations/ folder)")
    elif root.is_file():
        files = [root]
    else:
        raise ConfigError(f"annotations {root} not found; give a ScreenSpot JSON file or a folder of them")
    out = GroundingSet()
    for file in files:
        _load_file(file, flavour, out)
    return out


def detect_flavour(rows: list[Any]) -> tuple[str | None, str]:
    """(flavour, reason) for one file's rows; flavour None when the data cannot decide (see the module doc)."""
    dicts = [r for r in rows if isinstance(r, dict)]
    keys = set().union(*(r.keys() for r in dicts)) if dicts else set()
    pro = [k for k in _PRO_KEYS if k in keys]
    if pro:
        return "pro", f"rows have {', '.join(pro)} (ScreenSpot-Pro fields; bbox x1,y1,x2,y2)"
    v1 = [k for k in _V1_KEYS if k in keys]
    if v1 and "img_size" in keys:
        return "v2", f"rows have {', '.join(v1)} and img_size (converted ScreenSpot-v2; bbox x1,y1,x2,y2)"
    if v1:
        return "v1", f"rows have {', '.join(v1)} without img_size (original ScreenSpot / v2; bbox x,y,w,h)"
    for r in dicts:
        box = _numbers(r.get("bbox"), 4)
        if box is not None and (box[2] <= box[0] or box[3] <= box[1]):
            return "v1", "no type fields; a bbox's 3rd/4th number is not above its 1st/2nd, so it is x,y,w,h"
        size = _numbers(r.get("img_size"), 2)
        if box is not None and size is not None and (box[0] + box[2] > size[0] or box[1] + box[3] > size[1]):
            return "pro", "no type fields; a bbox read as x,y,w,h would overrun img_size, so it is x1,y1,x2,y2"
    return None, ("cannot tell whether bbox is x,y,w,h or x1,y1,x2,y2 (no ui_type/data_type fields); "
                  "pass --flavour pro|v1|v2")


def _load_file(file: Path, flavour: str, out: GroundingSet) -> None:
    name = str(file)
    try:
        rows = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        out.problems.append(LoadProblem(name, None, f"cannot read: {exc.strerror or exc}"))
        return
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        out.problems.append(LoadProblem(name, None, f"not valid JSON ({exc}); expected a list of annotation objects"))
        return
    if not isinstance(rows, list):
        out.problems.append(
            LoadProblem(name, None, f"expected a JSON list of annotation objects, got {type(rows).__name__}"))
        return
    if flavour == "auto":
        chosen, reason = detect_flavour(rows)
        if chosen is None:
            out.problems.append(LoadProblem(name, None, reason))
            return
    else:
        chosen, reason = flavour, "forced with --flavour"
    out.flavours[name] = (chosen, reason)
    kind = next((k for k in _FILE_KINDS if k in file.stem.lower()), file.stem)
    for index, raw in enumerate(rows):
        try:
            out.items.append(_item(raw, chosen, name, file.stem, index, kind))
        except ValueError as exc:
            out.problems.append(LoadProblem(name, index, str(exc)))


def _item(raw: Any, flavour: str, name: str, stem: str, index: int, kind: str) -> GroundingItem:
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {type(raw).__name__}")
    img = raw.get("img_filename")
    if not isinstance(img, str) or not img.strip():
        raise ValueError("img_filename is missing or not a string")
    instruction = raw.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError("instruction is missing or empty")
    numbers = _numbers(raw.get("bbox"), 4)
    if numbers is None:
        raise ValueError(f"bbox must be 4 numbers, got {_show(raw.get('bbox'))}")
    if flavour == "v1":
        x, y, w, h = numbers
        if w <= 0 or h <= 0:
            raise ValueError(f"bbox {_show(raw['bbox'])} read as x,y,w,h has no area (w and h must be positive)")
        box = (x, y, x + w, y + h)
    else:
        box = numbers  # type: ignore[assignment]
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"bbox {_show(raw['bbox'])} read as x1,y1,x2,y2 has x2 <= x1 or y2 <= y1")
    size = None
    if raw.get("img_size") is not None:
        dims = _numbers(raw.get("img_size"), 2)
        if dims is None or dims[0] <= 0 or dims[1] <= 0 or not all(float(d).is_integer() for d in dims):
            raise ValueError(f"img_size must be two positive whole numbers [w, h], got {_show(raw.get('img_size'))}")
        size = (int(dims[0]), int(dims[1]))
    ui_type = raw.get("ui_type", raw.get("data_type"))
    platform = raw.get("platform", raw.get("data_source"))
    group = raw.get("group", kind if flavour != "pro" else None)
    return GroundingItem(
        id=str(raw.get("id", f"{stem}_{index}")), file=name, row=index, img_filename=img.strip(),
        bbox=box, instruction=instruction.strip(), ui_type=_text(ui_type), group=_text(group),
        platform=_text(platform), application=_text(raw.get("application")), img_size=size, flavour=flavour,
    )


def _numbers(value: Any, n: int) -> tuple[float, ...] | None:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return tuple(float(v) for v in value)


def _text(value: Any) -> str:
    return "unknown" if value is None or value == "" else str(value)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
