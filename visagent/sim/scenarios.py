"""Scenarios: a task in the sim world with a seed, an instruction, a success predicate and an oracle.

Scenario files are YAML under the repo's `scenarios/` (one scenario per file, or a `scenarios:` list).
Fields: id, platform (desktop|phone), apps (installed; default all), open (app in front at start; may be "{param}"),
setup (app name → options), seed, params (name → value | {choice: [...]} | {int: [lo, hi]}; a param named
`case` choosing among mappings spreads the chosen mapping's keys into params), instruction
(may use {param}), success (predicate), max_steps, tags (difficulty, app, platform), split (train|heldout),
oracle (a solver name in visagent.sim.solvers).

Predicates: a list (all hold) or {all: [...]}, {any: [...]}, {not: P}, or a leaf
{path: "settings.wifi", <op>: value} with op one of equals, not_equals, contains, not_contains, gte, lte,
in, exists, length. Paths are dotted (or a list of segments); "{param}" in paths and values is filled
from the world's params. Every problem raises ScenarioError naming the file, the field and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from visagent.core.errors import ScenarioError
from visagent.sim.scenario import _TEMPLATE, Scenario, _installed, _is_param_ref

PLATFORMS = ("desktop", "phone")
SPLITS = ("train", "heldout")
DIFFICULTIES = ("easy", "medium", "hard")
OPS = ("equals", "not_equals", "contains", "not_contains", "gte", "lte", "in", "exists", "length")
REQUIRED = ("id", "platform", "instruction", "success", "max_steps", "split", "oracle")
ALLOWED = set(REQUIRED) | {"apps", "open", "setup", "seed", "params", "tags", "description"}


def default_dir() -> Path:
    """The repo's `scenarios/` folder, found relative to this package (works from an editable install)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


def _check_pred(pred: Any, where: str) -> None:
    if isinstance(pred, list):
        if not pred:
            raise ScenarioError(f"{where}: an empty list never says what success is; add at least one condition")
        for i, p in enumerate(pred):
            _check_pred(p, f"{where}[{i}]")
        return
    if not isinstance(pred, dict):
        raise ScenarioError(f"{where}: a condition must be a mapping like {{path: settings.wifi, equals: true}}, "
                            f"got {pred!r}")
    for combo in ("all", "any"):
        if combo in pred:
            if len(pred) != 1 or not isinstance(pred[combo], list):
                raise ScenarioError(f"{where}: '{combo}' takes a list of conditions and nothing beside it")
            _check_pred(pred[combo], f"{where}.{combo}")
            return
    if "not" in pred:
        if len(pred) != 1:
            raise ScenarioError(f"{where}: 'not' takes one condition and nothing beside it")
        _check_pred(pred["not"], f"{where}.not")
        return
    if "path" not in pred or not isinstance(pred["path"], (str, list)) or not pred["path"]:
        raise ScenarioError(f"{where}: a condition needs 'path' (e.g. settings.wifi), got {pred!r}")
    ops = [k for k in pred if k != "path"]
    if len(ops) != 1 or ops[0] not in OPS:
        raise ScenarioError(f"{where}: a condition needs exactly one operator of {', '.join(OPS)}, got "
                            f"{ops or 'none'}")


# -- loading ---------------------------------------------------------------------------------------
def _parse(raw: Any, where: str) -> Scenario:
    from visagent.sim.apps import APP_CLASSES
    from visagent.sim.oracle import SOLVERS

    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a scenario must be a mapping of fields, got {type(raw).__name__}")
    sid = raw.get("id")
    if sid is not None:
        where = f"{where} (id {sid})"
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ScenarioError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - ALLOWED)
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED))}")
    if not isinstance(sid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", sid):
        raise ScenarioError(f"{where}: field 'id' must be lower-case letters, digits, '-', '_' or '.', got {sid!r}")
    if raw["platform"] not in PLATFORMS:
        raise ScenarioError(f"{where}: field 'platform' must be desktop or phone, got {raw['platform']!r}")
    if raw["split"] not in SPLITS:
        raise ScenarioError(f"{where}: field 'split' must be train or heldout, got {raw['split']!r}")
    ms = raw["max_steps"]
    if isinstance(ms, bool) or not isinstance(ms, int) or not 1 <= ms <= 100:
        raise ScenarioError(f"{where}: field 'max_steps' must be a whole number 1..100, got {ms!r}")
    if not isinstance(raw["instruction"], str) or not raw["instruction"].strip():
        raise ScenarioError(f"{where}: field 'instruction' must be a non-empty string")
    apps = raw.get("apps") or []
    if not isinstance(apps, list) or any(a not in APP_CLASSES for a in apps):
        raise ScenarioError(f"{where}: field 'apps' must list known apps ({', '.join(APP_CLASSES)}), got {apps!r}")
    op = raw.get("open")
    if op is not None and not _is_param_ref(op) and not _installed(op, apps):
        raise ScenarioError(f"{where}: field 'open' must name an installed app, got {op!r}")
    setup = raw.get("setup") or {}
    if not isinstance(setup, dict) or any(k not in APP_CLASSES or not (isinstance(v, dict) or _is_param_ref(v))
                                          for k, v in setup.items()):
        raise ScenarioError(f"{where}: field 'setup' must map app names to option mappings (or to \"{{param}}\" naming "
                            f"a mapping param), got {setup!r}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"{where}: field 'seed' must be an integer, got {seed!r}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ScenarioError(f"{where}: field 'params' must be a mapping, got {params!r}")
    for name, spec in params.items():
        if isinstance(spec, dict) and ("choice" in spec or "int" in spec) and len(spec) != 1:
            raise ScenarioError(f"{where}: params.{name}: {{choice: [...]}} or {{int: [lo, hi]}} takes nothing beside it")
        if isinstance(spec, dict) and "int" in spec and (not isinstance(spec["int"], list) or len(spec["int"]) != 2):
            raise ScenarioError(f"{where}: params.{name}.int must be [lo, hi]")
        if isinstance(spec, dict) and "choice" in spec and (not isinstance(spec["choice"], list) or not spec["choice"]):
            raise ScenarioError(f"{where}: params.{name}.choice must be a non-empty list")
    used = {u.split(".")[0] for u in _TEMPLATE.findall(raw["instruction"])}
    case = params.get("case")
    if isinstance(case, dict) and isinstance(case.get("choice"), list):
        keys = [set(c) if isinstance(c, dict) else set() for c in case["choice"]]
        used -= set.intersection(*keys) if keys else set()
    if used - set(params):
        raise ScenarioError(f"{where}: field 'instruction' uses undefined param(s) {', '.join(sorted(used - set(params)))}")
    _check_pred(raw["success"], f"{where}: field 'success'")
    tags = raw.get("tags") or {}
    if not isinstance(tags, dict):
        raise ScenarioError(f"{where}: field 'tags' must be a mapping (difficulty, app, platform)")
    tags = {str(k): str(v) for k, v in tags.items()}
    if "difficulty" in tags and tags["difficulty"] not in DIFFICULTIES:
        raise ScenarioError(f"{where}: tags.difficulty must be one of {', '.join(DIFFICULTIES)}, got {tags['difficulty']!r}")
    tags.setdefault("platform", raw["platform"])
    if raw["oracle"] not in SOLVERS:
        raise ScenarioError(f"{where}: field 'oracle' names no solver: {raw['oracle']!r}; known: {', '.join(sorted(SOLVERS))}")
    return Scenario(id=sid, platform=raw["platform"], instruction=raw["instruction"].strip(), success=raw["success"],
                    max_steps=ms, split=raw["split"], oracle=raw["oracle"], apps=tuple(apps), open=op, setup=setup,
                    seed=seed, params=params, tags=tags, description=str(raw.get("description", "")),
                    path=where.split(" ")[0])


def load_file(path: str | Path) -> list[Scenario]:
    """Scenarios in one YAML file. Raises ScenarioError naming the file, field and problem."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{p}: invalid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    if isinstance(data, dict) and "scenarios" in data:
        items = data["scenarios"]
        if not isinstance(items, list):
            raise ScenarioError(f"{p}: field 'scenarios' must be a list of scenarios")
        return [_parse(it, f"{p}: scenarios[{i}]") for i, it in enumerate(items)]
    if data is None:
        raise ScenarioError(f"{p}: the file is empty; expected a scenario mapping or a 'scenarios:' list")
    return [_parse(data, str(p))]


def load_scenarios(paths: list[str | Path] | None = None) -> list[Scenario]:
    """Load scenario files (default: every `scenarios/*.yaml` of the repo); a folder means its *.yaml files.
    Raises ScenarioError on an invalid file or a duplicate id."""
    files: list[Path] = []
    for p in [default_dir()] if paths is None else [Path(x) for x in paths]:
        if p.is_dir():
            files += sorted(p.glob("*.yaml"))
        elif p.exists():
            files.append(p)
        else:
            raise ScenarioError(f"{p}: no such scenario file or folder")
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for f in files:
        for sc in load_file(f):
            if sc.id in seen:
                raise ScenarioError(f"{f}: duplicate scenario id {sc.id!r} (also in {seen[sc.id]})")
            seen[sc.id] = str(f)
            out.append(sc)
    return out


def get_scenario(sid: str, paths: list[str | Path] | None = None) -> Scenario:
    """The scenario with this id. Raises ScenarioError listing close ids when unknown."""
    return scenario_by_id(load_scenarios(paths), sid, "scenario", "`visagent scenarios list`")


def scenario_by_id(scenarios: list, sid: str, kind: str, listing: str) -> Any:
    """The one of `scenarios` whose id is `sid`; else ScenarioError "unknown <kind>", with close ids when there
    are some, otherwise where to see them all (`listing`). Shared by the sim's and the real desktop's ids."""
    for sc in scenarios:
        if sc.id == sid:
            return sc
    import difflib

    close = difflib.get_close_matches(sid, [s.id for s in scenarios], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; see {listing}"
    raise ScenarioError(f"unknown {kind} {sid!r}{hint}")


def filter_by_tags(scenarios: list[Scenario], tags: list[str] | None) -> list[Scenario]:
    """The scenarios carrying at least one of `tags`, each written `key:value` (`app:settings`) or as a value
    alone (`settings`): the one syntax `visagent scenarios list` prints. Raises ScenarioError for a tag written
    `key=value` (naming the `key:value` spelling) or one no scenario carries (listing the known tags)."""
    if not tags:
        return list(scenarios)
    wanted: set[str] = set()
    for tag in tags:
        tag = tag.strip()
        if "=" in tag:
            raise ScenarioError(f"tag {tag!r}: write tags as key:value ({tag.replace('=', ':', 1)}) or a value alone")
        wanted.add(tag)
    known = sorted({t for s in scenarios for t in tag_strings(s)})
    names = set(known) | {t.split(":", 1)[-1] for t in known}
    unknown = sorted(wanted - names)
    if unknown and not wanted & names:
        raise ScenarioError(f"no scenario carries tag {', '.join(unknown)}; known tags: {' '.join(known)}")
    return [s for s in scenarios if wanted & (set(tag_strings(s)) | {t.split(':', 1)[-1] for t in tag_strings(s)})]


def tag_strings(scenario: Any) -> list[str]:
    """A scenario's tags as sorted "key:value" strings (e.g. "app:settings", "difficulty:easy")."""
    tags = getattr(scenario, "tags", None) or {}
    if isinstance(tags, dict):
        return [f"{k}:{v}" for k, v in sorted(tags.items())]
    return [str(t) for t in tags]
