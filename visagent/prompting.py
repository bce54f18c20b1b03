"""Chat messages for one model call, in the Qwen agent format (the engine applies the chat template).

Layout at step n (screenshots o_1..o_n, model turns a_1..a_{n-1}, tool results r_1..r_{n-1})::

    system: instructions (visagent/prompts/system_<platform>.md)
    user:   task [+ one-line summaries of steps older than the image window] + image o_s
    assistant: a_s            tool: r_s + image o_{s+1}
    ...
    assistant: a_{n-1}        tool: r_{n-1} + image o_n [+ feedback]

With `history_images=K` only the last K screenshots are sent as images (s = n-K+1); earlier steps appear
as one line each. `append_only=True` keeps every turn unchanged from step to step (all images, no
summaries), so an engine reusing its cache across steps (`session_id`) only prefills the new turns.
The tool schema is not part of the messages: pass `tools=[visagent.schemas.tool_for(...)]` to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from pathlib import Path
from typing import Any

from PIL import Image

from visagent.actions import Action
from visagent.errors import ConfigError
from visagent.schemas import COMPACT_PROFILES, PROMPT_PROFILES, TASK_FIRST_PROFILES

Message = dict[str, Any]


@cache
def load_prompt(name: str) -> str:
    """Text of `visagent/prompts/<name>.md` (trailing whitespace stripped)."""
    return resources.files("visagent.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8").rstrip()


def system_prompt(platform: str, profile: str = "full") -> str:
    """Instructions for `platform` ("desktop" or "phone") in prompt `profile` ("full", or a compact profile: the
    one-paragraph `system_compact_<platform>.md` for small models trained on it, see visagent.schemas)."""
    if profile not in PROMPT_PROFILES:
        raise ValueError(f"unknown prompt profile {profile!r}; expected one of: {', '.join(PROMPT_PROFILES)}")
    device = "phone" if platform == "phone" else "desktop"
    return load_prompt(f"system_compact_{device}" if profile in COMPACT_PROFILES else f"system_{device}")


@dataclass
class StepMemory:
    """What the model saw and did at one step, as later prompts replay it.

    `image`: the screenshot the model saw (physical pixels); `note`: text shown with that screenshot (e.g. a
    hand-back note or the parse error of an earlier attempt); `output`: the assistant turn as the model wrote
    it (thinking removed); `tool_calls`: structured calls when the engine returned them (OpenAI form);
    `actions`: the parsed actions in the model's coordinate space; `result`: what executing them did, as told
    to the model in the tool turn.
    """

    step: int
    image: Image.Image | None
    output: str
    actions: list[Action] = field(default_factory=list)
    result: str = ""
    note: str = ""
    tool_calls: list[dict[str, Any]] | None = None

    def summary(self) -> str:
        """One line: `Step 3: left_click [512, 300] -> the screen did not change.`"""
        did = "; ".join(a.summary() for a in self.actions) or "no valid action"
        result = " ".join(self.result.split())
        return f"Step {self.step}: {did}" + (f" -> {result}" if result else "")


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


def _assistant(mem: StepMemory) -> Message:
    msg: Message = {"role": "assistant", "content": mem.output}
    if mem.tool_calls:
        msg["tool_calls"] = mem.tool_calls
    return msg


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
) -> list[Message]:
    """Messages for the next model call.

    `history`: the finished steps, oldest first; `observation`: the current screenshot; `feedback`: text shown
    with it (a parse error to fix, a loop warning, a hand-back note); `profile` picks the system prompt
    ("full" or "compact", matching the tool schema's profile). `space` names the coordinate space the
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
        messages.append(_assistant(mem))
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
