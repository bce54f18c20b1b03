"""A grounding set from the sim world, written in the ScreenSpot-Pro layout so `visagent ground-eval` reads it.

Layout under OUT: `images/<scenario>/s<seed>_<k>.png` (screen k of that episode) and
`annotations/<application>_<platform>.json` (one list per sim app and platform, Pro field names:
`img_filename` relative to images/, `bbox` [x1, y1, x2, y2] pixels, `img_size`, `instruction`, `ui_type`
text/icon, `group` "sim", `platform` desktop/phone, `application`, `id`; plus `label`, `role`, `scenario`,
`seed`, `split` for reference).

Screens: for each scenario of the split and each seed, the first screen and then, following the scenario's
oracle, each later screen whose visible elements differ from the ones already taken (never mid-animation),
up to `screens` per episode. A screen identical (pixel for pixel) to one already written is skipped: scenarios
that start alike share their first screen, which would otherwise count several times. Items: every visible
element whose instruction is unique on its screen (case-insensitive, see `unambiguous`). A desktop icon and its
taskbar button share a label but not an instruction ("open Notes" / "switch to Notes in the taskbar"), so both are
items; two list rows both labelled "Notes" would make "select Notes in the list" ambiguous, so neither is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.core.errors import ConfigError

log = logging.getLogger(__name__)

#: role → instruction template ({label} is the element's visible label).
INSTRUCTIONS: dict[str, str] = {
    "button": "click the {label} button",
    "icon": "open {label}",
    "taskbar_button": "switch to {label} in the taskbar",
    "list_item": "select {label} in the list",
    "system_button": "press the {label} button",
    "radio": "choose the {label} option",
    "textfield": "click the {label} field",
    "dropdown": "open the {label} drop-down",
    "tab": "open the {label} tab",
    "toggle": "toggle {label}",
    "slider": "click the {label} slider",
    "menu": "open the {label} menu",
    "menu_item": "choose {label} in the menu",
    "option": "pick {label}",
    "checkbox": "tick {label}",
}
_DEFAULT_INSTRUCTION = "click {label}"


@dataclass
class SimExportSummary:
    """What an export wrote: counts, the annotation files, and the skipped duplicate-label elements."""

    out: Path
    screens: int = 0
    items: int = 0
    skipped_duplicates: int = 0
    repeated_screens: int = 0  # screens identical, pixel for pixel, to one already written (skipped)
    annotation_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # episodes cut short by the oracle, and why

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "screens": self.screens, "items": self.items,
                "skipped_duplicates": self.skipped_duplicates, "repeated_screens": self.repeated_screens,
                "annotation_files": [str(p) for p in self.annotation_files], "notes": self.notes}


def instruction_for(label: str, role: str) -> str:
    """The instruction naming an element, e.g. ("Save", "button") → "click the Save button"."""
    return INSTRUCTIONS.get(role, _DEFAULT_INSTRUCTION).format(label=label)


def unambiguous(elements: list) -> tuple[list, int]:
    """(the labelled elements whose instruction no other element of the screen shares, case-insensitive; the
    number of labelled elements left out for sharing one). Used by the held-out set and the training records."""
    def key(e: Any) -> str:
        return instruction_for(e.label.strip(), e.role).casefold()

    labelled = [e for e in elements if e.label.strip()]
    counts = Counter(key(e) for e in labelled)
    kept = [e for e in labelled if counts[key(e)] == 1]
    return kept, len(labelled) - len(kept)


def export_sim_grounding(
    out: str | Path,
    *,
    split: str = "heldout",
    seeds: int = 3,
    screens: int = 2,
    scenario_ids: list[str] | None = None,
) -> SimExportSummary:
    """Render sim screens for `split` × `seeds` (0..seeds-1) and write images + annotations under `out`.

    Raises ConfigError for seeds/screens < 1, an unknown split, no matching scenario, no item at all (every
    label duplicated) or an unwritable `out`;
    ScenarioError for broken scenario files.
    """
    from visagent.sim.scenarios import SPLITS, load_scenarios

    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if seeds < 1 or screens < 1:
        raise ConfigError(f"--seeds and --screens must be at least 1, got {seeds} and {screens}")
    chosen = [s for s in load_scenarios() if s.split == split and (not scenario_ids or s.id in scenario_ids)]
    if not chosen:
        raise ConfigError(f"no scenario in split {split!r}" + (f" among {scenario_ids}" if scenario_ids else ""))
    root = Path(out).expanduser()
    summary = SimExportSummary(out=root)
    files: dict[str, list[dict[str, Any]]] = {}
    written: set[str] = set()  # digests of the screens written: scenarios that start alike share a first screen
    try:
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        for scenario in sorted(chosen, key=lambda s: s.id):
            for seed in range(seeds):
                for k, (image, elements) in enumerate(_episode_screens(scenario, seed, screens, summary)):
                    digest = hashlib.sha256(image.tobytes()).hexdigest()
                    if digest in written:
                        summary.repeated_screens += 1
                        continue
                    written.add(digest)
                    rel = f"{scenario.id}/s{seed}_{k}.png"
                    (root / "images" / scenario.id).mkdir(parents=True, exist_ok=True)
                    image.save(root / "images" / rel)
                    summary.screens += 1
                    for row in _rows(elements, image.size, rel, scenario, seed, k, split, summary):
                        files.setdefault(f"{row['application']}_{row['platform']}", []).append(row)
        if not files:
            raise ConfigError(f"no element with a unique instruction on the {summary.screens} screen(s) exported "
                              f"({summary.skipped_duplicates} skipped as duplicates); try more --screens or --seeds")
        for name in sorted(files):
            path = root / "annotations" / f"{name}.json"
            body = ",\n".join(json.dumps(row, ensure_ascii=False) for row in files[name])
            path.write_text(f"[\n{body}\n]\n", encoding="utf-8")  # one item per line: diffable, greppable
            summary.annotation_files.append(path)
            summary.items += len(files[name])
    except OSError as exc:
        raise ConfigError(f"--out {root}: cannot write: {exc.strerror or exc}") from exc
    return summary


def _episode_screens(scenario: Any, seed: int, screens: int, summary: SimExportSummary) -> list[tuple[Any, list]]:
    """Up to `screens` (image, elements) pairs with distinct element sets along the oracle's path."""
    from visagent.sim.oracle import OracleError, next_action

    world = scenario.make_world(seed)
    taken: list[tuple[Any, list]] = []
    seen: set[tuple] = set()
    for _ in range(scenario.max_steps * 4 + 20):
        if not world.busy():
            elements = world.visible_elements()
            key = tuple((e.label, e.bbox) for e in elements)
            if key not in seen:
                seen.add(key)
                taken.append((world.render().convert("RGB"), elements))
                if len(taken) >= screens:
                    break
        try:
            action = next_action(scenario, world)
        except OracleError as exc:
            summary.notes.append(f"{scenario.id} seed {seed}: stopped after {len(taken)} screen(s): {exc}")
            log.warning("export-grounding: %s seed %d: %s", scenario.id, seed, exc)
            break
        if action.action == "terminate":
            break
        world.apply(action)
    return taken


def _rows(elements: list, size: tuple[int, int], rel: str, scenario: Any, seed: int, k: int, split: str,
          summary: SimExportSummary) -> list[dict[str, Any]]:
    kept, skipped = unambiguous(elements)
    summary.skipped_duplicates += skipped
    kept_ids = {id(e) for e in kept}
    rows = []
    for n, e in enumerate(elements):  # n: the element's index on the screen, part of the item id
        if id(e) not in kept_ids:
            continue
        label = e.label.strip()
        x1, y1 = max(0, e.bbox[0]), max(0, e.bbox[1])
        x2, y2 = min(size[0], e.bbox[2]), min(size[1], e.bbox[3])
        if x2 <= x1 or y2 <= y1:
            continue
        rows.append({
            "img_filename": rel, "bbox": [x1, y1, x2, y2], "img_size": list(size),
            "instruction": instruction_for(label, e.role), "ui_type": e.ui_type, "group": "sim",
            "platform": scenario.platform, "application": e.app, "id": f"{scenario.id}_s{seed}_{k}_{n}",
            "label": label, "role": e.role, "scenario": scenario.id, "seed": seed, "split": split,
        })
    return rows
