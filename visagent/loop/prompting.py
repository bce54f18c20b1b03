"""Chat messages for one model call, in the Qwen agent format (the engine applies the chat template).

Layout at step n (screenshots o_1..o_n, model turns a_1..a_{n-1}, tool results r_1..r_{n-1})::

    system: instructions (visagent/prompts/system_<platform>.md)
    user:   task [+ one-line summaries of steps older than the image window] + image o_s
    assistant: a_s            tool: r_s + image o_{s+1}      (a_s exactly as the model produced it: ModelTurn)
    ...
    assistant: a_{n-1}        tool: r_{n-1} + image o_n [+ feedback]

With `history_images=K` only the last K screenshots are sent as images (s = n-K+1); earlier steps appear
as one line each. `append_only=True` keeps every turn unchanged from step to step (all images, no
summaries), so an engine reusing its cache across steps (`session_id`) only prefills the new turns.
The tool schema is not part of the messages: pass `tools=[visagent.core.schemas.tool_for(...)]` to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from pathlib import Path
from typing import Any

from PIL import Image

from visagent.core.actions import Action
from visagent.core.errors import ConfigError
from visagent.core.schemas import COMPACT_PROFILES, PROMPT_PROFILES, TASK_FIRST_PROFILES

Message = dict[str, Any]


@cache
def load_prompt(name: str) -> str:
    """Text of `visagent/prompts/<name>.md` (trailing whitespace stripped)."""
    return resources.files("visagent.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8").rstrip()


def system_prompt(platform: str, profile: str = "full") -> str:
    """Instructions for `platform` ("desktop" or "phone") in prompt `profile` ("full", or a compact profile: the
    one-paragraph `system_compact_<platform>.md` for small models trained on it, see visagent.core.schemas)."""
    if profile not in PROMPT_PROFILES:
        raise ValueError(f"unknown prompt profile {profile!r}; expected one of: {', '.join(PROMPT_PROFILES)}")
    device = "phone" if platform == "phone" else "desktop"
    return load_prompt(f"system_compact_{device}" if profile in COMPACT_PROFILES else f"system_{device}")


@dataclass(frozen=True)
class ModelTurn:
    """One assistant turn exactly as the model produced it, and so exactly as later prompts send it back.

    `content`: the turn without its thinking — the prose beside structured calls when the server returned
    `tool_calls` (vLLM / SGLang with a tool-call parser), else the whole answer text with the call written in it
    (the model's own Qwen3.5 XML, Nous JSON or UI-TARS text). `reasoning`: the thinking ("" when none).
    `tool_calls`: the structured calls (OpenAI form, arguments decoded) or None. A call is in `content` or in
    `tool_calls`, never both: Qwen3.5's chat template prints the content and then every tool call, so a turn
    carrying both would show the model each past action twice.
    """

    content: str
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] | None = None

    @classmethod
    def from_result(cls, result: Any) -> ModelTurn:
        """The turn of an engine's GenerationResult (engine.api)."""
        calls = list(result.tool_calls) if result.tool_calls else None
        content = result.turn_content() if hasattr(result, "turn_content") else result.answer
        return cls(content=content or "", reasoning=result.thinking or "", tool_calls=calls)

    @classmethod
    def from_record(cls, model: dict[str, Any]) -> ModelTurn:
        """The turn of a trace step's `model` field (docs/trace-format.md). Traces written before `content` was
        recorded held the structured calls both in `tool_calls` and, as XML, in `answer`: the prose is the part
        of `answer` before the first call."""
        calls = model.get("tool_calls") or None
        content = model.get("content")
        if not isinstance(content, str):
            answer = str(model.get("answer") or model.get("raw") or "")
            content = answer.split("<tool_call>")[0].strip() if calls else answer
        return cls(content=content, reasoning=str(model.get("thinking") or ""),
                   tool_calls=list(calls) if calls else None)

    def to_record(self) -> dict[str, Any]:
        """The fields a trace step's `model` holds for this turn (`content`, `thinking`, `tool_calls` when any)."""
        out: dict[str, Any] = {"content": self.content, "thinking": self.reasoning}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    def message(self, *, thinking: bool = False) -> Message:
        """The assistant message for a later prompt. With `thinking` on the turn's reasoning goes back as
        `reasoning_content`, which Qwen3.5's template prints as `<think>…</think>` for the turns after the last
        user query (without it, those turns show an empty thought)."""
        msg: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        if thinking and self.reasoning:
            msg["reasoning_content"] = self.reasoning
        return msg


@dataclass
class StepMemory:
    """One step as the loop keeps it: what the model saw, what it produced, what ran and what the screen did.

    The next prompts (`build_messages`), the trace (the step's `model`, `feedback` and `tool_result` fields) and,
    from the trace, the export and training records are all derived from it, so they cannot drift apart.
    `image`: the screenshot the model saw (physical pixels; a path in exports; None once the agent dropped it for
    being older than the image window — the trace keeps it); `note`: text shown with that
    screenshot (e.g. a hand-back note or the parse error of an earlier attempt); `turn`: the assistant turn as the
    model produced it (ModelTurn); `actions`: the parsed actions in the model's coordinate space; `result`: what
    executing them did, as told to the model in the tool turn (in the model's coordinate space).
    """

    step: int
    image: Image.Image | None
    turn: ModelTurn
    actions: list[Action] = field(default_factory=list)
    result: str = ""
    note: str = ""

    def summary(self) -> str:
        """One line: `Step 3: left_click [512, 300] -> the screen did not change.`"""
        did = "; ".join(a.summary() for a in self.actions) or "no valid action"
        result = " ".join(self.result.split())
        return f"Step {self.step}: {did}" + (f" -> {result}" if result else "")

    def to_record(self) -> dict[str, Any]:
        """The trace fields later prompts are rebuilt from: `feedback` and `tool_result` (the turn goes in `model`,
        see ModelTurn.to_record)."""
        return {"feedback": self.note or None, "tool_result": self.result}


def history_window(asked: int, trained: int | None) -> int:
    """Screenshots a prompt shows as images: the `asked` window (settings' `history_images`), capped at the one
    the model was trained with when its checkpoint declares it (`EngineInfo.history_images`): a small model
    trained on one screenshot plus one-line summaries reads four screenshots as something it has never seen."""
    return min(asked, trained) if trained else asked


def _content(text: str, image: Image.Image | None, text_first: bool = False) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if image is not None:
        parts.append({"type": "image", "image": image})
    if text:
        parts.insert(0 if text_first else len(parts), {"type": "text", "text": text})
    return parts


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def task_sentence(task: str) -> str:
    """The task as the compact profiles write it: first letter upper-case, ending in ".", "!" or "?".

    The small models trained on compact prompts saw every task as a sentence (scenario instructions, and grounding
    records "Click the Save button."), and they are that sensitive to it: the first trained number-token model
    clicked inside the target on 12/40 of "Click the X button." and 0/40 of "click the X button". The prompt
    builder therefore writes every task this way, in training data and at run time alike."""
    text = task.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def build_messages(
    task: str,
    history: list[StepMemory],
    observation: Image.Image,
    *,
    platform: str,
    space: str,
    history_images: int = 4,
    append_only: bool = False,
    feedback: str | None = None,
    profile: str = "full",
    thinking: bool = False,
) -> list[Message]:
    """Messages for the next model call.

    `history`: the finished steps, oldest first; `observation`: the current screenshot; `feedback`: text shown
    with it (a parse error to fix, a loop warning, a hand-back note); `profile` picks the system prompt
    ("full" or "compact", matching the tool schema's profile); `thinking`: the run thinks, so each past turn's
    reasoning goes back as `reasoning_content` (ModelTurn.message). `space` names the coordinate space the
    model answers in (the tool schema describes it; it is not repeated here). Raises ValueError when
    `history_images` < 1.
    """
    if history_images < 1:
        raise ValueError(f"history_images must be at least 1, got {history_images}")
    del space  # the coordinate space reaches the model through the tool schema
    if profile in COMPACT_PROFILES:
        task = task_sentence(task)
    n = len(history) + 1
    first_full = 1 if append_only else max(1, n - history_images + 1)
    older = [m for m in history if m.step < first_full]
    full = [m for m in history if m.step >= first_full]

    task_text = Template(load_prompt("task")).safe_substitute(task=task)
    summary = ""
    if older:
        summary = Template(load_prompt("history")).safe_substitute(lines="\n".join(m.summary() for m in older))

    messages: list[Message] = [{"role": "system", "content": system_prompt(platform, profile)}]
    # The screenshots in order: full[0].image ... full[-1].image, then the current observation.
    images = [m.image for m in full] + [observation]
    notes = [m.note for m in full] + [feedback or ""]
    first = profile in TASK_FIRST_PROFILES  # text before each screenshot (the screenshot's tokens see it)
    messages.append({"role": "user", "content": _content(_join(task_text, summary, notes[0]), images[0], first)})
    for i, mem in enumerate(full):
        messages.append(mem.turn.message(thinking=thinking))
        text = _join(mem.result or "Done.", notes[i + 1])
        messages.append({"role": "tool", "content": _content(text, images[i + 1], first)})
    return messages


def with_images(messages: list[Message], root: Path | None = None) -> list[Message]:
    """Copies of `messages` whose image parts hold PIL images loaded from the file paths an export or training
    record writes there (relative ones under `root`). Raises ConfigError naming a missing image."""
    out: list[Message] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image" and isinstance(part.get("image"), str):
                    path = Path(part["image"])
                    path = path if path.is_absolute() or root is None else root / path
                    if not path.is_file():
                        raise ConfigError(f"record image {path} is missing; rebuild the records (the data "
                                          "directory, or the export)")
                    with Image.open(path) as img:
                        part = {**part, "image": img.convert("RGB")}
                parts.append(part)
            msg = {**msg, "content": parts}
        out.append(msg)
    return out


def count_images(messages: list[Message]) -> int:
    """Images carried by `messages`."""
    total = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            total += sum(1 for part in content if part.get("type") == "image")
    return total
