"""The text the agent actually produces and reads, gathered for training the tiny checkpoint's tokenizer.

Sources: the `computer_use` / `mobile_use` tool schemas (`visagent.core.schemas`), actions rendered the way
Qwen3.5 writes them (`visagent.loop.parsing.render_action(action, "qwen35")`), scenario instructions
(`visagent.sim.scenarios`, params drawn for several seeds), the agent's prompt files (`visagent/prompts/`),
and plain agent prose (thoughts, answers, tool responses).
Each source that cannot be read is named in the returned `sources` so the caller can report it.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.core.errors import VisagentError

log = logging.getLogger(__name__)

_APPS = ("Settings", "Files", "Notes", "Calendar", "Mail", "Browser", "Terminal", "Calculator", "Contacts",
         "Music", "Photos", "Clock", "Weather", "Maps", "Messages", "Store", "Editor", "Spreadsheet")
_WIDGETS = ("button", "checkbox", "text field", "menu", "tab", "icon", "link", "dropdown", "toggle", "slider",
            "list item", "search box", "dialog", "toolbar", "scroll bar", "window")
_LABELS = ("OK", "Cancel", "Save", "Open", "Delete", "Search", "Submit", "Next", "Back", "Close", "Send",
           "Apply", "Sign in", "New folder", "Rename", "Share", "Edit", "Done", "Yes", "No", "Continue")
_WORDS = ("hello", "world", "meeting", "report", "budget", "notes", "todo", "invoice", "photo", "draft",
          "project", "summary", "agenda", "milk", "bread", "coffee", "monday", "friday", "alice", "bob")
_KEYS = (("ctrl", "c"), ("ctrl", "v"), ("ctrl", "s"), ("ctrl", "a"), ("alt", "tab"), ("enter",), ("esc",),
         ("tab",), ("backspace",), ("ctrl", "shift", "t"), ("super",), ("f5",), ("down",), ("up",))


@dataclass
class Corpus:
    texts: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # source → "N texts" or why it was skipped


def agent_corpus(*, seed: int = 0, actions: int = 3000) -> Corpus:
    """Gather the corpus. `actions`: how many random actions to render. Deterministic for a seed."""
    rng = random.Random(seed)
    corpus = Corpus()
    _add(corpus, "tool schemas", _tool_schemas)
    _add(corpus, "rendered actions", lambda: _rendered_actions(rng, actions))
    _add(corpus, "scenario instructions", _scenario_instructions)
    _add(corpus, "prompt files", _prompt_files)
    _add(corpus, "agent prose", lambda: _prose(rng, actions))
    return corpus


def _add(corpus: Corpus, name: str, source) -> None:
    try:
        texts = [t for t in source() if t]
    except (ImportError, VisagentError) as exc:  # a source missing or broken: build without it, and say so
        corpus.sources[name] = f"skipped ({exc})"
        log.warning("tiny corpus: %s skipped: %s", name, exc)
        return
    corpus.texts.extend(texts)
    corpus.sources[name] = f"{len(texts)} texts"


def _tool_schemas() -> list[str]:
    from visagent.core.schemas import tool_for

    out = []
    for platform, sizes in (("desktop", ((1920, 1088), (1280, 800), (2560, 1440))), ("phone", ((1080, 2400), (720, 1600)))):
        for space in ("norm1000", "resized"):
            for w, h in sizes:
                # the chat template writes each tool as one JSON line (tojson: ", " / ": " separators)
                for profile in ("full", "compact"):
                    out.append(json.dumps(tool_for(platform, space, w, h, profile), ensure_ascii=False))
    return out


def _rendered_actions(rng: random.Random, count: int) -> list[str]:
    from visagent.core.actions import COMPUTER_ACTIONS, MOBILE_ACTIONS, Action
    from visagent.core.errors import VisagentError
    from visagent.loop.parsing import render_action

    out = []
    for _ in range(count):
        platform = rng.choice(("desktop", "phone"))
        name = rng.choice(COMPUTER_ACTIONS if platform == "desktop" else MOBILE_ACTIONS)
        try:
            action = Action(**_random_arguments(rng, name, platform), space="norm1000")
            out.append(render_action(action, "qwen35", platform=platform))
        except VisagentError:  # an argument mix this platform's tool cannot write: draw another
            continue
    return out


def _random_arguments(rng: random.Random, name: str, platform: str) -> dict[str, Any]:
    def point() -> tuple[int, int]:
        return rng.randint(0, 1000), rng.randint(0, 1000)

    args: dict[str, Any] = {"action": name}
    if name in ("mouse_move", "left_click_drag", "click", "long_press", "swipe") or (
        name in ("left_click", "right_click", "middle_click", "double_click", "triple_click") and rng.random() < 0.9
    ):
        args["coordinate"] = point()
    if name == "swipe":
        args["coordinate2"] = point()
    if name == "type":
        args["text"] = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 5)))
    if name == "key":
        if platform == "desktop":
            args["keys"] = rng.choice(_KEYS)
        else:
            args["text"] = rng.choice(("Enter", "Back", "Home"))
    if name in ("scroll", "hscroll"):
        args["pixels"] = rng.choice((-1, 1)) * rng.choice((1, 2, 3, 5, 10, 100, 300))
    if name == "wait":
        args["time"] = rng.choice((0.5, 1, 2, 3, 5))
    if name == "terminate":
        args["status"] = rng.choice(("success", "failure"))
    if name == "answer":
        args["text"] = rng.choice(_LABELS + _WORDS) + " " + str(rng.randint(0, 9999))
    if name == "system_button":
        args["button"] = rng.choice(("Back", "Home", "Menu", "Enter"))
    if name == "open":
        args["text"] = rng.choice(_APPS)
    if name == "call_user":
        args["text"] = "Please sign in, then tell me to continue."
    return args


#: The scenario files whose instructions feed the tokenizer's corpus. Frozen so the fresh-base recipe
#: (`visagent tiny`, `train-tiny` without --base) still rebuilds the shipped checkpoint's tokenizer byte for byte
#: after scenario files are added: `variants.yaml` trains the policy but is not read here;
#: its words tokenise into sub-words. A future fresh base that should know new files' words whole adds them here,
#: and is then a new recipe (the shipped checkpoint's test says so when it no longer matches).
CORPUS_SCENARIO_FILES = ("calculator.yaml", "contacts.yaml", "files.yaml", "messages.yaml", "notes.yaml",
                         "settings.yaml", "shop.yaml")


def _scenario_instructions(seeds: int = 8) -> list[str]:
    from visagent.sim.scenario import fill
    from visagent.sim.scenarios import default_dir, load_scenarios

    out: list[str] = []
    for scenario in load_scenarios([default_dir() / name for name in CORPUS_SCENARIO_FILES]):
        out.extend(str(fill(scenario.instruction, scenario.resolve_params(s))) for s in range(seeds))
        if scenario.description:
            out.append(scenario.description)
    return list(dict.fromkeys(out))


def _prompt_files() -> list[str]:
    root = Path(__file__).resolve().parents[1] / "prompts"
    if not root.is_dir():
        raise ImportError(f"no prompt folder at {root}")
    return [p.read_text(encoding="utf-8") for p in sorted(root.glob("*.md"))]


def _prose(rng: random.Random, count: int) -> list[str]:
    """Thoughts, instructions, answers and tool responses of the kind a GUI agent writes and reads."""
    patterns = (
        "I see the {app} window. The {label} {widget} is at the bottom right, so I will click it.",
        "The task is to open {app} and press {label}. First I need to find the {app} icon.",
        "Open {app}, type \"{word}\" into the {widget} and press {label}.",
        "The {widget} labelled \"{label}\" is not visible yet; I will scroll down by {n} pixels.",
        "The screen shows {app} with a {widget}. Nothing changed after the last action, so I will wait {n} seconds.",
        "The task is complete: the {app} {widget} now shows \"{word}\".",
        "Clicked at ({x}, {y}). The {label} {widget} is now highlighted.",
        "Error: the action left_click needs a coordinate [x, y] on the 0..1000 grid.",
        "In {app}, select the {word} {widget}, then choose {label} from the menu.",
        "The answer is {n}.",
    )
    out = []
    for _ in range(count):
        out.append(
            rng.choice(patterns).format(
                app=rng.choice(_APPS), label=rng.choice(_LABELS), widget=rng.choice(_WIDGETS),
                word=rng.choice(_WORDS), n=rng.randint(0, 2000), x=rng.randint(0, 1000), y=rng.randint(0, 1000),
            )
        )
    return out
