"""Replay a trace with no model: re-execute its recorded actions and compare every resulting screen.

The recorded actions are in "screen" space, so they go straight to a fresh executor (for the sim: the same
scenario and seed, from meta.json). The screen before step 1 is compared with `step_001.png`, the screen
after step N's actions with `step_{N+1}.png`, and after the last step with `final.png`.

A run cut short (killed: meta.json still says "running" and there is no `final.png`) replays the steps it
recorded. An incomplete last line of trace.jsonl (the kill hit a write) is left out and said in the message;
any other damage (a line that is not JSON, a record that breaks the format, a screenshot name outside the
trace) refuses the replay with one line naming it. The screen after the
last recorded step is compared with the next step's screenshot when the loop saved it before dying, else it
was never recorded and is not compared (`ReplayResult.uncompared` says so).

Difference metric (`screen_difference`): both screenshots are reduced to a grayscale thumbnail
`COMPARE_WIDTH` pixels wide (box filter), the absolute gray-level difference is averaged over square tiles of
`TILE` thumbnail pixels, and the largest tile mean (0..1, 1 = black vs white everywhere in that tile) is
the difference. A tile maximum rather than a global mean, so one moved button on a large screen is not
averaged away; a thumbnail, so sub-pixel anti-aliasing noise is. Different sizes count as 1.0. Measured on
the sim: a flipped toggle scores ~0.2, a new settings page ~0.16, a re-render of the same screen 0.0.
Screens match when the difference is at or below `threshold` (default `DEFAULT_THRESHOLD`).

Every call goes through the screen seam (visagent.screen.seam.Screen) as the loop's do: the same settling
(on the world's virtual clock in the sim, so a sim replay advances time exactly as the recorded run did and a
healthy replay differs by 0.0), the same time limit per call, one worker thread, one-line errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visagent.core.actions import Action
from visagent.core.errors import ActionError, ExecutorError, TraceError, VisagentError
from visagent.screen.base import ExecResult, Executor
from visagent.screen.seam import Screen
from visagent.loop.policy import SecretVault, resolve_secrets
from visagent.core.trace import Trace, read_trace

log = logging.getLogger(__name__)

COMPARE_WIDTH = 320
TILE = 8
DEFAULT_THRESHOLD = 0.05
#: Policy decisions under which the loop executed a step's actions.
EXECUTED_DECISIONS = frozenset({"allowed", "approved"})


@dataclass(frozen=True)
class Comparison:
    """One compared screen: after step `step`'s actions (0 = the start), against the recorded `expected` file."""

    step: int
    expected: str
    difference: float
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "expected": self.expected, "difference": round(self.difference, 5), "ok": self.ok}


@dataclass(frozen=True)
class Divergence:
    """The first screen that did not match, with the saved images (recorded, replayed, amplified diff)."""

    step: int
    expected: str
    difference: float
    threshold: float
    recorded_path: Path
    replayed_path: Path
    diff_path: Path

    human: bool = False  # a human had the screen between this step and the compared one

    def describe(self) -> str:
        where = "the start" if self.step == 0 else f"step {self.step}'s actions"
        hint = "; a human had control there and their input is not in the trace" if self.human else ""
        return (f"replay diverged after {where}: screen differs from {self.expected} by {self.difference:.4f} "
                f"(threshold {self.threshold}){hint}; images in {self.diff_path.parent}")


@dataclass
class ReplayResult:
    """The outcome of a replay. `ok` only when every screen matched; `message` is one line for the CLI."""

    trace_path: Path
    ok: bool
    threshold: float
    comparisons: list[Comparison] = field(default_factory=list)
    divergence: Divergence | None = None
    actions_executed: int = 0
    human_steps: set[int] = field(default_factory=set)  # steps after which a human took the screen
    cut_short: bool = False  # the recorded run never ended (killed); only its recorded steps were replayed
    uncompared: str | None = None  # why the screen after the last replayed step has nothing to compare with
    ignored: str | None = None  # the torn last line of trace.jsonl that was left out

    @property
    def message(self) -> str:
        if self.divergence is not None:
            return self.divergence.describe()
        worst = max((c.difference for c in self.comparisons), default=0.0)
        line = (f"replay matched: {len(self.comparisons)} screens, {self.actions_executed} actions, "
                f"largest difference {worst:.4f} (threshold {self.threshold})")
        if self.cut_short:
            line += "; the recorded run was cut short (never finished, no final.png)"
        if self.uncompared:
            line += f"; {self.uncompared}"
        if self.ignored:
            line += f"; ignored {self.ignored}"
        return line

    def to_dict(self) -> dict[str, Any]:
        div = self.divergence
        return {
            "trace": str(self.trace_path), "ok": self.ok, "threshold": self.threshold, "message": self.message,
            "actions_executed": self.actions_executed, "comparisons": [c.to_dict() for c in self.comparisons],
            "cut_short": self.cut_short, "uncompared": self.uncompared,
            "divergence": None if div is None else {
                "step": div.step, "expected": div.expected, "difference": round(div.difference, 5),
                "recorded": str(div.recorded_path), "replayed": str(div.replayed_path), "diff": str(div.diff_path)},
        }


# -- the metric ------------------------------------------------------------------------------------------

def _thumb(image: Image.Image, width: int) -> np.ndarray:
    gray = image.convert("L")
    height = max(1, round(gray.height * width / gray.width))
    return np.asarray(gray.resize((width, height), Image.Resampling.BOX), dtype=np.float32) / 255.0


def screen_difference(a: Image.Image, b: Image.Image, *, width: int = COMPARE_WIDTH, tile: int = TILE) -> float:
    """Perceptual difference of two screenshots in 0..1: the largest tile-mean gray difference (module doc)."""
    if a.size != b.size:
        return 1.0
    diff = np.abs(_thumb(a, width) - _thumb(b, width))
    h, w = diff.shape
    worst = 0.0
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            worst = max(worst, float(diff[y:y + tile, x:x + tile].mean()))
    return worst


def diff_image(a: Image.Image, b: Image.Image) -> Image.Image:
    """A picture of where two screenshots differ: the recorded screen dimmed, changed pixels in red."""
    if a.size != b.size:
        b = b.resize(a.size)
    ga = np.asarray(a.convert("L"), dtype=np.int16)
    gb = np.asarray(b.convert("L"), dtype=np.int16)
    changed = np.abs(ga - gb) > 8
    base = (np.asarray(a.convert("L"), dtype=np.float32) * 0.35).astype(np.uint8)
    rgb = np.stack([base, base, base], axis=-1)
    rgb[changed] = (255, 40, 40)
    return Image.fromarray(rgb, "RGB")


# -- replay ------------------------------------------------------------------------------------------------

def step_actions(record: dict[str, Any], *, only_executed: bool = True) -> list[Action]:
    """The actions of a step record ("screen" space, with their mapping), in order.

    With `only_executed` (default), [] when the loop did not act on them: the policy blocked them or a human
    denied them. Raises TraceError for an action the trace holds but that is not a valid Action.
    """
    decision = (record.get("policy") or {}).get("decision") or "allowed"
    if only_executed and decision not in EXECUTED_DECISIONS:
        return []
    out = []
    for raw in record.get("actions") or []:
        try:
            action = Action.from_dict(raw)
        except ActionError as exc:
            raise TraceError(f"step {record.get('step')}: recorded action {raw!r} is invalid ({exc})") from None
        out.append(action)
    return out


def replay_trace(
    path: str | Path,
    executor: Executor | Screen | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    executor_kind: str | None = None,
    out_dir: str | Path | None = None,
) -> ReplayResult:
    """Re-execute the trace at `path` on `executor` (default: a fresh one like the recorded run's) and compare.

    `executor_kind` ("sim", "desktop", "android") picks the executor to open when none is given (default:
    the recorded one); a Screen may be passed too (its time limit stands; else each call gets the run's
    recorded `execute_timeout_s`). Divergence images go to `out_dir` (default `<trace>/replay/`). An executor
    passed in is left open; one opened here is closed. Raises TraceError for a damaged trace (torn line, missing
    screenshot), ExecutorError when the executor cannot be opened or driven, ValueError for a threshold
    outside 0..1. A run cut short (meta status "running", no final.png) replays the steps it recorded (module
    doc); TraceError when it recorded none.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"replay threshold must be within 0..1, got {threshold}")
    trace = read_trace(path)
    trace_path = Path(trace.path)
    cut_short = trace.status == "running" and not (trace_path / "final.png").is_file()
    problems = trace.damage  # a torn last line is left out, as docs/trace-format.md says
    if problems:
        raise TraceError(f"{trace_path}: {problems[0]}; replay needs an undamaged trace")
    steps = trace.steps
    if cut_short and not steps:
        raise TraceError(f"{trace_path}: the run was cut short before it recorded a step; there is nothing to replay")
    expected = [_recorded(trace, r.get("screenshot") or f"step_{int(r['step']):03d}.png") for r in steps]
    final_expected: Path | None = None
    uncompared = None
    if cut_short:  # the loop saves step N+1's screenshot before recording it; a kill may have come between
        last_no = int(steps[-1].get("step", len(steps)))
        following = trace.file(f"step_{last_no + 1:03d}.png")
        if following.is_file():
            final_expected = following
        else:
            uncompared = (f"the screen after step {last_no}'s actions was never recorded "
                          f"(no {following.name}), so it is not compared")
    else:
        final_expected = _recorded(trace, "final.png")
    out = Path(out_dir) if out_dir is not None else trace_path / "replay"
    owned = executor is None
    if executor is None:
        executor = _open_recorded_executor(trace.meta, executor_kind)
    settle = bool((trace.meta.get("settings") or {}).get("settle", True))
    screen = Screen.over(executor, settle=settle, **_recorded_timeout(trace.meta, executor))
    result = ReplayResult(trace_path, ok=True, threshold=threshold, human_steps=_human_steps(trace.records),
                          cut_short=cut_short, uncompared=uncompared, ignored=trace.torn)
    try:
        _check_geometry(trace.meta, steps, screen)
        # Mirror the loop (visagent.loop.agent): a step's screen is the settled screen its previous action
        # left, else a fresh capture settled on the executor's clock; final.png is a plain capture.
        pending: Image.Image | None = None
        secrets: dict[str, str] = {}  # values of the {{secret:NAME}} met so far (from the environment)
        for index, record in enumerate(steps):
            step_no = int(record.get("step", index + 1))
            shown = pending if pending is not None else screen.observe().image
            pending = None
            if not _compare(result, step_no - 1, expected[index], shown, out):
                return result
            for action in step_actions(record):
                if action.is_final or action.action == "call_user":
                    continue  # nothing to execute; the loop captures afresh at the next step
                vault = _with_secrets(action, secrets)
                exec_result = _execute(screen, vault.for_execution(action), vault, step_no, shown)
                result.actions_executed += 1
                if not exec_result.ok:
                    log.warning("step %s: %s failed on replay: %s", step_no, action.summary(),
                                vault.redact(exec_result.message))
                # the settled screen it left (settle off: none, the next capture is plain)
                pending = exec_result.observation.image if exec_result.observation is not None else None
        last = int(steps[-1].get("step", len(steps))) if steps else 0
        if final_expected is not None:
            if cut_short:  # the next step's screenshot: taken as the loop takes a step's screen
                replayed = pending if pending is not None else screen.observe().image
            else:
                replayed = screen.screenshot().image
            _compare(result, last, final_expected, replayed, out)
        return result
    finally:
        if owned:
            screen.close()
        else:
            screen.release()


def _recorded_timeout(meta: dict[str, Any], executor: Executor | Screen) -> dict[str, float]:
    """The run's executor time limit for a bare executor (a Screen passed in keeps its own)."""
    limit = (meta.get("settings") or {}).get("execute_timeout_s")
    if isinstance(executor, Screen) or isinstance(limit, bool) or not isinstance(limit, (int, float)) \
            or not 0 < limit < 1e6:  # a trace is untrusted: anything odd falls back to the default limit
        return {}
    return {"timeout_s": float(limit)}


def _human_steps(records: list[dict[str, Any]]) -> set[int]:
    """Steps after which a human had the screen (a takeover record follows them, or call_user)."""
    out: set[int] = set()
    last = 0
    for rec in records:
        if rec.get("type") == "step":
            last = int(rec["step"])
            if any(a.get("action") == "call_user" for a in rec.get("actions") or []):
                out.add(last)
        elif rec.get("type") == "control" and rec.get("control") == "takeover":
            out.add(last)
    return out


def _recorded(trace: Trace, name: str) -> Path:
    """A recorded screenshot of the trace (only a file inside it: TraceError for any other name)."""
    trace_path = Path(trace.path)
    path = trace.file(name)
    if not path.is_file():
        hint = " (the run never ended)" if name == "final.png" else ""
        raise TraceError(f"{trace_path}: screenshot {name} is missing{hint}; replay needs every recorded screen")
    return path


def _compare(result: ReplayResult, step: int, expected_path: Path, replayed: Image.Image, out: Path) -> bool:
    try:
        with Image.open(expected_path) as img:
            recorded = img.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise TraceError(f"{expected_path}: cannot be read as an image ({exc})") from None
    difference = screen_difference(recorded, replayed)
    ok = difference <= result.threshold
    result.comparisons.append(Comparison(step, expected_path.name, difference, ok))
    if ok:
        return True
    out.mkdir(parents=True, exist_ok=True)
    stem = f"step{step:03d}"
    paths = (out / f"{stem}_recorded.png", out / f"{stem}_replayed.png", out / f"{stem}_diff.png")
    recorded.save(paths[0])
    replayed.convert("RGB").save(paths[1])
    diff_image(recorded, replayed).save(paths[2])
    result.ok = False
    result.divergence = Divergence(step, expected_path.name, difference, result.threshold, *paths,
                                   human=step in result.human_steps)
    return False


def _check_geometry(meta: dict[str, Any], steps: list[dict[str, Any]], executor: Screen) -> None:
    recorded = (steps[0].get("geometry") if steps else None) or (meta.get("executor") or {}).get("geometry")
    if not recorded:
        return
    actual = executor.geometry().to_dict()
    keys = ("width", "height", "physical_width", "physical_height", "offset_x", "offset_y")
    if any(int(recorded.get(k, actual[k])) != int(actual[k]) for k in keys):
        raise ExecutorError(
            f"the replay screen is {actual['width']}x{actual['height']}+{actual['offset_x']}+{actual['offset_y']} "
            f"but the trace was recorded on {recorded.get('width')}x{recorded.get('height')}"
            f"+{recorded.get('offset_x', 0)}+{recorded.get('offset_y', 0)}; replay on the same screen size")


def _open_recorded_executor(meta: dict[str, Any], kind: str | None) -> Executor:
    from visagent.screen import open_executor

    recorded = meta.get("executor") or {}
    kind = kind or recorded.get("name")
    if not kind:
        raise TraceError("meta.json names no executor; pass --executor sim|desktop|android")
    geometry = recorded.get("geometry") or {}
    if kind == "sim":
        scenario = recorded.get("scenario")
        if not scenario:
            raise TraceError("meta.json has no executor.scenario, so the sim world cannot be rebuilt for replay")
        seed = recorded.get("seed")
        return open_executor("sim", scenario=str(scenario), seed=None if seed is None else int(seed),
                             scale=float(geometry.get("scale") or 1.0))
    if kind == "desktop":
        return open_executor("desktop", monitor=int(geometry.get("monitor") or 1))
    return open_executor(kind)


def _with_secrets(action: Action, secrets: dict[str, str]) -> SecretVault:
    """The vault for `action`: typed text recorded as `{{secret:NAME}}` gets its real value back from the
    environment (ConfigError when it is not set there); `secrets` keeps the values met so far, so every later
    message is redacted of all of them."""
    if action.text and "{{secret:" in action.text:
        secrets.update(resolve_secrets(action.text, secrets))
    return SecretVault(secrets)


def _execute(screen: Screen, action: Action, vault: SecretVault, step: int, before: Image.Image) -> ExecResult:
    """Run one recorded action and settle; a failure is a one-line error with every secret value redacted (the
    executor saw the real value and may quote it, escaped or cut off)."""
    try:
        return screen.act(action, before=before)
    except VisagentError as exc:
        if not vault:
            raise
        raise type(exc)(vault.redact(str(exc))) from None
    except Exception as exc:  # an executor bug: still one line, still redacted
        raise ExecutorError(f"step {step}: executing {action.action} failed on replay: {type(exc).__name__}: "
                            f"{vault.redact(' '.join(str(exc).split()))}") from None
