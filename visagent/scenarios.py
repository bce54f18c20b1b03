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

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from visagent.errors import ScenarioError

if TYPE_CHECKING:
    from visagent.sim.clock import VirtualClock
    from visagent.sim.world import SimWorld

PLATFORMS = ("desktop", "phone")
SPLITS = ("train", "heldout")
DIFFICULTIES = ("easy", "medium", "hard")
OPS = ("equals", "not_equals", "contains", "not_contains", "gte", "lte", "in", "exists", "length")
REQUIRED = ("id", "platform", "instruction", "success", "max_steps", "split", "oracle")
ALLOWED = set(REQUIRED) | {"apps", "open", "setup", "seed", "params", "tags", "description"}
_TEMPLATE = re.compile(r"\{(\w+(?:\.\w+)*)\}")


def default_dir() -> Path:
    """The repo's `scenarios/` folder, found relative to this package (works from an editable install)."""
    return Path(__file__).resolve().parent.parent / "scenarios"


@dataclass(frozen=True)
class Scenario:
    id: str
    platform: str
    instruction: str
    success: Any
    max_steps: int
    split: str
    oracle: str
    apps: tuple[str, ...] = ()
    open: str | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    path: str = ""

    # -- params and worlds -----------------------------------------------------------------------
    def resolve_params(self, seed: int | None = None) -> dict[str, Any]:
        """Concrete parameter values for a seed (choices drawn with a per-scenario RNG)."""
        seed = self.seed if seed is None else seed
        rng = random.Random(f"{self.id}:{seed}")
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            if isinstance(spec, dict) and "choice" in spec:
                out[name] = rng.choice(list(spec["choice"]))
            elif isinstance(spec, dict) and "int" in spec:
                lo, hi = spec["int"]
                out[name] = rng.randint(int(lo), int(hi))
            else:
                out[name] = spec
        case = out.pop("case", None)
        if isinstance(case, dict):  # a chosen mapping of related values: its keys become params
            out.update(case)
        return {k: fill(v, out) for k, v in out.items()}  # params may refer to other params ("{item}")

    def make_world(self, seed: int | None = None, clock: VirtualClock | None = None) -> SimWorld:
        """A fresh world set up for this scenario; `seed` randomises layout, labels, positions and theme
        (None = the scenario's own seed)."""
        from visagent.sim.world import SimWorld

        seed = self.seed if seed is None else seed
        params = self.resolve_params(seed)
        setup = fill(self.setup, params)
        for app, opts in setup.items():
            if not isinstance(opts, dict):
                raise ScenarioError(f"{self.path or self.id}: setup.{app}: {self.setup[app]!r} must name a param that "
                                    f"holds a mapping of options, got {opts!r}")
        open_app = fill(self.open, params) or None
        if open_app is not None and not _installed(open_app, self.apps):
            raise ScenarioError(f"{self.path or self.id}: open: {self.open!r} must name an installed app (or be empty "
                                f"for none), got {open_app!r}")
        try:
            world = SimWorld(self.platform, apps=list(self.apps) or None, seed=seed, setup=setup,
                             open_app=open_app, clock=clock, params=params)
        except (ValueError, KeyError) as exc:
            raise ScenarioError(f"{self.path or self.id}: setup: {exc}") from exc
        world.scenario_id = self.id  # type: ignore[attr-defined]
        return world

    def instruction_for(self, world: SimWorld | None = None) -> str:
        """The instruction with {params} filled from the world (or the scenario's own seed)."""
        params = world.params if world is not None else self.resolve_params()
        return str(fill(self.instruction, params))

    def is_success(self, world: SimWorld) -> bool:
        """Whether the success predicate holds on the world's current state."""
        return evaluate(self.success, world.state(), world.params)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "platform": self.platform, "max_steps": self.max_steps, "split": self.split,
                "tags": dict(self.tags), "oracle": self.oracle, "instruction": self.instruction}


def _is_param_ref(value: Any) -> bool:
    """A setup value (or `open`) may be exactly "{param}", filled per seed (e.g. from a `case`)."""
    return isinstance(value, str) and _TEMPLATE.fullmatch(value) is not None


def _installed(app: Any, apps: tuple[str, ...] | list[str]) -> bool:
    """Whether `app` names a known app that the scenario installs (all of them when `apps` is empty)."""
    from visagent.sim.apps import APP_CLASSES

    return app in APP_CLASSES and (not apps or app in apps)


# -- predicates ------------------------------------------------------------------------------------
_MISSING = object()


def _param(params: dict[str, Any], dotted: str) -> Any:
    cur: Any = params
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def fill(value: Any, params: dict[str, Any]) -> Any:
    """Replace {name} / {name.field} templates in strings (recursively); a string that is exactly "{name}"
    keeps the parameter's type."""
    if isinstance(value, str):
        m = _TEMPLATE.fullmatch(value)
        if m and _param(params, m.group(1)) is not _MISSING:
            return _param(params, m.group(1))

        def sub(mm: re.Match[str]) -> str:
            v = _param(params, mm.group(1))
            return mm.group(0) if v is _MISSING else str(v)

        return _TEMPLATE.sub(sub, value)
    if isinstance(value, list):
        return [fill(v, params) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, params) for k, v in value.items()}
    return value


def lookup(state: Any, path: Any, params: dict[str, Any]) -> Any:
    parts = path if isinstance(path, list) else str(path).split(".")
    cur = state
    for raw in parts:
        part = fill(raw, params) if isinstance(raw, str) else raw
        if isinstance(cur, dict):
            if part not in cur:
                return _MISSING
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return cur


def evaluate(pred: Any, state: dict[str, Any], params: dict[str, Any]) -> bool:
    """Evaluate a (validated) predicate against a world state."""
    if isinstance(pred, list):
        return all(evaluate(p, state, params) for p in pred)
    if "all" in pred:
        return all(evaluate(p, state, params) for p in pred["all"])
    if "any" in pred:
        return any(evaluate(p, state, params) for p in pred["any"])
    if "not" in pred:
        return not evaluate(pred["not"], state, params)
    got = lookup(state, pred["path"], params)
    (op, want), = [(k, v) for k, v in pred.items() if k != "path"]
    want = fill(want, params)
    if op == "exists":
        return (got is not _MISSING) == bool(want)
    if got is _MISSING:
        return False
    try:
        if op == "equals":
            return _norm(got) == _norm(want)
        if op == "not_equals":
            return _norm(got) != _norm(want)
        if op == "contains":
            return _norm(want) in _norm(got)
        if op == "not_contains":
            return _norm(want) not in _norm(got)
        if op == "gte":
            return got >= want
        if op == "lte":
            return got <= want
        if op == "in":
            return _norm(got) in [_norm(w) for w in want]
        if op == "length":
            return len(got) == int(want)
    except TypeError:
        return False
    return False


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


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
    scenarios = load_scenarios(paths)
    for sc in scenarios:
        if sc.id == sid:
            return sc
    import difflib

    close = difflib.get_close_matches(sid, [s.id for s in scenarios], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `visagent scenarios list`"
    raise ScenarioError(f"unknown scenario {sid!r}{hint}")


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
