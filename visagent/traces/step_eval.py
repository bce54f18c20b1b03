"""Step accuracy: every step of the oracle's path scored on its own (`visagent eval --per-step`).

An episode succeeds only when every step is right, so a model that gets three steps in four right still scores 0
on a four-step task, and episode success moves last. Step accuracy (the "step success rate" of Mind2Web and
AndroidControl) shows the progress before it: the oracle plays each scenario × seed through the real agent loop;
`visagent.traces.export` rebuilds, for each of its steps, the exact prompt the agent would send at that point (the task,
the oracle's history, the screenshot, in the model's prompt profile and coordinate space); the model answers once
and the answer is compared with the oracle's action:

- the same action name (`left_click`, `type`, `terminate`, ...);
- a point inside the element the oracle acted on (the sim records it: `ExecResult.target`), or within 5% of the
  picture of the oracle's point where no element is known (drags, swipes); the pointing head's point when the
  run uses it, as the agent would click (visagent/loop/pointing.py);
- the same text, keys, button and status; a scroll in the same direction.

Prefix: how many of an episode's steps are right before the first wrong one — how far the model would get
unaided if the screens were the same (they are not once it errs: episode success stays the real measure).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import GenerationConfig
from visagent.core.actions import Action
from visagent.core.errors import ActionError, ConfigError, ParseError
from visagent.loop.pointing import uses_head, with_head_point
from visagent.loop.prompting import history_window, with_images

#: Greedy, and room for one tool call (as the agent's answers; the compact profiles write ~35 tokens).
STEP_CONFIG = GenerationConfig(max_new_tokens=128, temperature=0.0)
#: Where the oracle's step has no known element: the answer's point within this share of each side of the picture.
POINT_TOLERANCE = 0.05


@dataclass
class StepOutcome:
    """One oracle step and the model's answer to it."""

    scenario: str
    seed: int
    step: int
    target: str  # the oracle's action (model space), summarised
    answer: str  # the model's action as clicked (head point when used), or "" when none parsed
    correct: bool
    why: str = ""  # what differed ("" when correct)
    point_source: str = "text"  # "head" when the point came from the pointing head
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StepReport:
    """The outcomes of every oracle step, in scenario, seed, step order."""

    model: str
    split: str | None
    outcomes: list[StepOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "scenario seed: why" for episodes the oracle did not finish
    wall_s: float = 0.0

    @property
    def accuracy(self) -> float:
        return sum(o.correct for o in self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def episodes(self) -> dict[tuple[str, int], list[StepOutcome]]:
        out: dict[tuple[str, int], list[StepOutcome]] = {}
        for o in self.outcomes:
            out.setdefault((o.scenario, o.seed), []).append(o)
        return out

    def prefixes(self) -> dict[tuple[str, int], int]:
        """Per episode: the number of right steps before the first wrong one."""
        out = {}
        for key, steps in self.episodes().items():
            n = 0
            while n < len(steps) and steps[n].correct:
                n += 1
            out[key] = n
        return out

    def per_scenario(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        prefixes = self.prefixes()
        for (scenario, seed), steps in self.episodes().items():
            row = rows.setdefault(scenario, {"steps": 0, "correct": 0, "first_correct": 0, "episodes": 0,
                                             "prefix_sum": 0, "whole": 0})
            row["steps"] += len(steps)
            row["correct"] += sum(s.correct for s in steps)
            row["first_correct"] += steps[0].correct
            row["episodes"] += 1
            row["prefix_sum"] += prefixes[(scenario, seed)]
            row["whole"] += prefixes[(scenario, seed)] == len(steps)
        return rows

    def per_action(self) -> dict[str, tuple[int, int]]:
        """Oracle action name → (right, steps)."""
        out: dict[str, list[int]] = {}
        for o in self.outcomes:
            name = o.target.split(" ", 1)[0]
            cell = out.setdefault(name, [0, 0])
            cell[0] += o.correct
            cell[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def early_stops(self) -> int:
        """Steps the model answered `terminate` where the oracle still acts: in a real run the episode ends there."""
        return sum(o.answer.split(" ", 1)[0] == "terminate" and o.target.split(" ", 1)[0] != "terminate"
                   for o in self.outcomes)

    def totals(self) -> dict[str, Any]:
        """Steps, right steps, episodes, episodes with every step right, the mean prefix and the early stops."""
        episodes, prefixes = self.episodes(), self.prefixes()
        return {"steps": len(self.outcomes), "correct": sum(o.correct for o in self.outcomes),
                "episodes": len(episodes), "episodes_all_right": sum(prefixes[k] == len(v) for k, v in episodes.items()),
                "mean_prefix": sum(prefixes.values()) / max(1, len(prefixes)), "early_stops": self.early_stops()}

    def summary_table(self) -> str:
        lines = [f"{'scenario':<34} {'steps':>5} {'right':>6} {'first':>6} {'prefix':>7} {'all':>4}", "-" * 67]
        for scenario, r in sorted(self.per_scenario().items()):
            lines.append(f"{scenario:<34} {r['steps']:>5} {r['correct'] / r['steps']:>6.0%} "
                         f"{r['first_correct']}/{r['episodes']:<4} {r['prefix_sum'] / r['episodes']:>7.1f} "
                         f"{r['whole']:>4}")
        lines.append("-" * 67)
        lines.append("by oracle action: " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in self.per_action().items()))
        t = self.totals()
        lines.append(f"stopped early (terminate where the oracle still acts): {t['early_stops']} of "
                     f"{t['steps']} steps")
        lines.append(f"step accuracy {t['correct']}/{t['steps']} ({self.accuracy:.1%}) over {t['episodes']} oracle "
                     f"episodes; every step right in {t['episodes_all_right']}; mean prefix {t['mean_prefix']:.2f} "
                     f"steps; model {self.model}; split {self.split or 'any'}; {self.wall_s:.1f} s")
        for note in self.skipped:
            lines.append(f"skipped: {note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "split": self.split, "step_accuracy": self.accuracy, **self.totals(),
                "per_scenario": self.per_scenario(),
                "per_action": {k: {"correct": a, "steps": n} for k, (a, n) in self.per_action().items()},
                "skipped": self.skipped, "wall_s": self.wall_s,
                "outcomes": [o.to_dict() for o in self.outcomes]}


def oracle_step_records(scenarios: Sequence[Any], seeds: Sequence[int], work: str | Path, *, space: str,
                        profile: str, vision: Any = None, workers: int = 2,
                        history_images: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Run the oracle on every scenario × seed (traces under `work`, `workers` episodes at once) and export each
    acted step as a record (visagent.traces.export, absolute image paths) in the model's `space` and prompt `profile`,
    in the window the agent would show the model: its default, capped at the model's declared `history_images`
    (visagent.loop.prompting.history_window; a model trained on 8 still gets the agent's 4, as in a run).
    Returns (records, "scenario seed: why" for episodes the oracle did not finish)."""
    from visagent.loop.agent import AgentConfig
    from visagent.traces.evaluate import evaluate, oracle_factory
    from visagent.traces.export import export_records

    config = AgentConfig()
    report = evaluate(scenarios, oracle_factory, seeds=list(seeds), workers=workers, agent_config=config,
                      trace_dir=work, model="policy:oracle")
    done = [Path(e.trace) for e in report.episodes if e.success and e.trace]
    skipped = [f"{e.scenario} seed {e.seed}: the oracle did not finish ({e.status})"
               for e in report.episodes if not e.success]
    window = history_window(config.history_images, history_images)
    records = list(export_records(done, space=space, profile=profile, vision=vision, history_images=window))
    return records, skipped


def score_answer(answer: Action | None, record: dict[str, Any], model_size: tuple[int, int]) -> str:
    """Why `answer` (model space) is not the oracle's step of `record`; "" when it is."""
    from visagent.grounding.predict import model_to_image, point_in_box

    if answer is None:
        return "no action"
    target = Action.from_dict(record["action"]["model"][0])
    if answer.action != target.action:
        return f"action {answer.action}, not {target.action}"
    meta = record.get("meta") or {}
    if target.coordinate is not None:
        if answer.coordinate is None:
            return "no point"
        box = meta.get("bbox")
        if box:
            width, height = meta["image_size"]
            if not point_in_box(model_to_image(answer.coordinate, model_size, (width, height)), tuple(box)):
                return f"point outside {meta.get('target_label') or 'the element'}"
        elif not _near(answer.coordinate, target.coordinate, model_size):
            return "point too far from the oracle's"
    if target.coordinate2 is not None and (answer.coordinate2 is None
                                           or not _near(answer.coordinate2, target.coordinate2, model_size)):
        return "end point too far from the oracle's"
    if (target.text or "").strip() != (answer.text or "").strip():
        return "other text"
    if tuple(k.casefold() for k in target.keys or ()) != tuple(k.casefold() for k in answer.keys or ()):
        return "other keys"
    if target.pixels is not None and (answer.pixels is None or (answer.pixels > 0) != (target.pixels > 0)):
        return "scrolls the other way"
    if target.button != answer.button or target.status != answer.status:
        return "other button or status"
    return ""


def _near(a: Sequence[float], b: Sequence[float], size: tuple[int, int]) -> bool:
    return abs(a[0] - b[0]) <= POINT_TOLERANCE * size[0] and abs(a[1] - b[1]) <= POINT_TOLERANCE * size[1]


def step_accuracy(engine: Any, scenarios: Sequence[Any], seeds: Sequence[int], *, model: str = "",
                  split: str | None = None, point_from: str = "auto",
                  on_step: Callable[[StepOutcome], None] | None = None,
                  config: GenerationConfig | None = None, workers: int = 2,
                  trace_dir: str | Path | None = None) -> StepReport:
    """Score `engine` on every step of the oracle's runs of `scenarios` × `seeds` (see the module docstring).
    `workers`: oracle episodes run at once; `trace_dir`: keep the oracle's traces (the path each step's prompt
    is rebuilt from) there instead of in a temporary folder removed at the end.
    Raises ConfigError for no scenarios, or point_from "head" with an engine that has no head."""
    from visagent.traces.evaluate import scenario_tags
    from visagent.loop.parsing import parse_output

    if not scenarios:
        raise ConfigError("no scenarios to score; check the ids, --split and --tags")
    head = uses_head(engine.info, point_from)
    space, profile = engine.info.coord_space, engine.info.prompt_profile
    tags = {s.id: scenario_tags(s) for s in scenarios}
    report = StepReport(model=model, split=split)
    started = time.perf_counter()
    kept = contextlib.nullcontext(str(trace_dir)) if trace_dir is not None else None
    with kept or tempfile.TemporaryDirectory(prefix="visagent-steps-") as work:
        records, report.skipped = oracle_step_records(scenarios, seeds, work, space=space, profile=profile,
                                                      vision=engine.info.vision, workers=workers,
                                                      history_images=engine.info.history_images)
        for record in records:
            meta = record["meta"]
            model_size = (1000, 1000) if space == "norm1000" else tuple(meta["resized_size"])
            result = engine.generate(with_images(record["messages"]), tools=record["tools"], config=config or STEP_CONFIG)
            answer, source = None, "text"
            try:
                parsed = parse_output(result.text, space=space, tool_calls=result.tool_calls,
                                      platform=meta.get("platform"))
                answer = parsed.actions[0] if parsed.actions else None
            except (ParseError, ActionError):
                answer = None
            if answer is not None and head:
                moved = with_head_point(answer, result.pointer, space, model_size)  # type: ignore[arg-type]
                if moved is not None:
                    answer, source = moved, "head"
            why = score_answer(answer, record, model_size)  # type: ignore[arg-type]
            target = Action.from_dict(record["action"]["model"][0])
            outcome = StepOutcome(scenario=str(meta.get("scenario")), seed=int(meta.get("seed") or 0),
                                  step=int(meta["step"]), target=target.summary(),
                                  answer=answer.summary() if answer is not None else "", correct=not why, why=why,
                                  point_source=source, tags=tags.get(str(meta.get("scenario")), []))
            report.outcomes.append(outcome)
            if on_step is not None:
                on_step(outcome)
    report.wall_s = time.perf_counter() - started
    return report
