"""One scenario of the sim world: its fields, its parameters drawn per seed, its world and its success predicate.

The type the oracle's solvers are written against; loading and validating scenario files is visagent.sim.scenarios
(which imports the solvers to check a scenario's oracle name, so this module must not import it).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from visagent.core.errors import ScenarioError

if TYPE_CHECKING:
    from visagent.sim.clock import VirtualClock
    from visagent.sim.world import SimWorld

_TEMPLATE = re.compile(r"\{(\w+(?:\.\w+)*)\}")


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


