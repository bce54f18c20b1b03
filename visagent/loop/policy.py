"""Safety policy: which actions need a human's confirmation, and secrets that never leave the executor.

Risky-action rules come from `SafetySettings` (the `[safety]` config section): hotkeys (e.g. ctrl+alt+delete,
alt+f4), typed text matching regular expressions (e.g. `rm -rf`), and clicks while the model's thought
mentions words such as pay / delete / send.

Secrets: a task may reference `{{secret:NAME}}`; the value comes from `VISAGENT_SECRET_NAME` or `NAME` in the
environment. The model, the trace and every event only ever see the placeholder; `SecretVault.substitute`
puts the real value into an action right before the executor runs it, and `SecretVault.redact` turns any
real value back into its placeholder on everything that is written or shown.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from visagent.core import actions as A
from visagent.core.actions import Action
from visagent.core.command_lines import canonical_commands
from visagent.core.errors import ConfigError
from visagent.screen.keynames import pressed_combo
from visagent.core.settings import SafetySettings

SECRET_RE = re.compile(r"\{\{secret:([A-Za-z_][A-Za-z0-9_]*)\}\}")
#: A cut-off start of a secret this long (in characters of the value) or longer is redacted too.
MIN_SECRET_PREFIX = 8

# Clicks / presses that commit something; checked against the model's thought.
_COMMIT_ACTIONS = frozenset({A.LEFT_CLICK, A.DOUBLE_CLICK, A.TRIPLE_CLICK, A.CLICK, A.LONG_PRESS, A.RIGHT_CLICK,
                             A.MIDDLE_CLICK})
_TOOL_CALL_RE = re.compile(r"<tool_call>.*?(</tool_call>|$)", re.S)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.lower().endswith("e") else word


def _pressed(action: Action) -> frozenset[str] | None:
    """The keys a key action (or a click with held keys) presses, as the executors read it: `keys`, else a
    mobile_use key `text` such as "alt+f4" (visagent.sim.gestures.split_combo)."""
    if action.keys is not None:
        return pressed_combo(action.keys)
    if action.action == A.KEY and action.text:
        return pressed_combo(action.text.replace(" ", "+").split("+"))
    return None


@dataclass(frozen=True)
class PolicyDecision:
    """`verdict`: "allow" (execute), "confirm" (ask a human first), "block" (never execute)."""

    verdict: Literal["allow", "confirm", "block"]
    reason: str = ""


class SafetyPolicy:
    """Checks one action (in any coordinate space) against the safety settings. Pure: no I/O, thread-safe."""

    def __init__(self, safety: SafetySettings, secrets: SecretVault | None = None) -> None:
        self.safety = safety
        self.secrets = secrets  # typed secrets are checked with their real value (never put in a reason)
        self._hotkeys = [(pressed_combo(h.replace(" ", "").split("+")), h)
                         for h in safety.risky_hotkeys if h.strip()]
        self._patterns = []
        for pattern in safety.risky_text_patterns:
            try:
                self._patterns.append(re.compile(pattern, re.I))
            except re.error as exc:
                raise ConfigError(f"safety.risky_text_patterns: {pattern!r} is not a valid regular expression "
                                  f"({exc}); fix it in the [safety] section") from None
        # A trailing "e" is dropped so inflections match too (delete → deleting, purchase → purchasing).
        words = [re.escape(_stem(w.strip())) for w in safety.risky_thought_words if w.strip()]
        self._words = re.compile(r"\b(" + "|".join(words) + r")\w*", re.I) if words else None

    def check(self, action: Action, *, thought: str = "") -> PolicyDecision:
        """Whether `action` may run. `thought`: what the model wrote before its tool call (thinking + text).

        Key combos are compared as the executor will press them (visagent.screen.keynames.pressed_combo:
        aliases, sides such as altleft / Control_R, case, any order), and a combo holding a risky one plus more
        keys (shift+alt+f4) is risky too. Typed text is checked with the real value of any secret in it, and
        the patterns are searched in the text and in its commands' canonical spelling
        (visagent.core.command_lines: `rm -fr`, `rm --recursive --force`, `poweroff` ...). Reasons never quote the
        typed text."""
        if not self.safety.confirm_risky:
            return PolicyDecision("allow")
        if self.secrets:
            action = self.secrets.for_execution(action)
        combo = _pressed(action) if action.action in (A.KEY, A.LEFT_CLICK) else None
        if combo:
            for risky, label in self._hotkeys:
                if risky <= combo:
                    return PolicyDecision("confirm", f"hotkey {label} is on the risky list")
        if action.text and action.action in (A.TYPE, A.KEY, A.OPEN) and self._patterns:
            texts = [action.text, *canonical_commands(action.text)]
            for pattern in self._patterns:
                if any(pattern.search(text) for text in texts):
                    return PolicyDecision("confirm", f"typed text matches the risky pattern {pattern.pattern!r}")
        if action.action in _COMMIT_ACTIONS and self._words is not None and thought:
            found = self._words.search(_TOOL_CALL_RE.sub(" ", thought))
            if found:
                return PolicyDecision("confirm", f"a click while the model's thought mentions {found.group(0)!r}")
        return PolicyDecision("allow")


def secret_names(text: str) -> list[str]:
    """Names referenced as `{{secret:NAME}}` in `text`, in order, without repeats."""
    return list(dict.fromkeys(SECRET_RE.findall(text)))


def resolve_secrets(task: str, given: Mapping[str, str] | None = None,
                    env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values of the secrets `task` references: from `given`, else `VISAGENT_SECRET_<NAME>`, else `<NAME>`.

    Raises ConfigError naming the secret and the variables to set when one is missing or empty.
    """
    env = os.environ if env is None else env
    out: dict[str, str] = dict(given or {})
    for name in secret_names(task):
        if name in out:
            continue
        value = env.get(f"VISAGENT_SECRET_{name}") or env.get(name)
        if not value:
            raise ConfigError(f"the task references {{{{secret:{name}}}}} but neither VISAGENT_SECRET_{name} "
                              f"nor {name} is set in the environment; export one of them")
        out[name] = value
    for name, value in out.items():
        if not value:
            raise ConfigError(f"secret {name!r} is empty; give it a value")
    return out


def _py_escape(value: str, quote: str, ascii_only: bool) -> str:
    """`value` as Python writes it inside quotes (`repr` / `ascii`, `quote` escaped; "" escapes no quote)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\" or (quote and ch == quote):
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ch.isprintable() and not (ascii_only and code > 127):
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


#: How a string can be written out by the code between a secret and the user: as is, escaped by Python
#: (`repr`, `ascii`, `!r` with either quote), escaped by JSON (with and without ensure_ascii).
_ENCODERS: tuple[Callable[[str], str], ...] = (
    lambda v: v,
    lambda v: _py_escape(v, "'", False),
    lambda v: _py_escape(v, "", False),
    lambda v: _py_escape(v, "'", True),
    lambda v: _py_escape(v, "", True),
    lambda v: json.dumps(v)[1:-1],
    lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
)


def secret_forms(value: str) -> list[tuple[str, str]]:
    """(written form, its shortest redacted start) of `value`: every encoding above, and each applied twice
    (a repr inside a repr, JSON of a repr ...). The start is the encoding of the first MIN_SECRET_PREFIX
    characters: a text holding it, followed by as much of the form as it goes on matching, is redacted."""
    head = value[:MIN_SECRET_PREFIX]
    seen: dict[str, str] = {}
    for outer in _ENCODERS:
        for inner in _ENCODERS:
            form = outer(inner(value))
            if form and form not in seen:
                seen[form] = outer(inner(head))
    return sorted(seen.items(), key=lambda fa: len(fa[0]), reverse=True)


class SecretVault:
    """Holds secret values; substitutes placeholders at execution time and redacts values everywhere else.

    `redact` is the one pass every string leaving the executor or the loop goes through (trace, events, the
    terminal, reports, replay output, errors, logs): it finds each value written as is, escaped by Python
    (`repr`, `ascii`) or JSON, escaped twice, and cut off (a start of at least MIN_SECRET_PREFIX characters, as
    `text[:20]!r` in an error message leaves it), and puts `{{secret:NAME}}` in its place.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self._secrets = dict(secrets or {})
        self._forms = [(name, form, start) for name, value in self._secrets.items()
                       for form, start in secret_forms(value)]

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def names(self) -> list[str]:
        return list(self._secrets)

    def redact(self, text: str) -> str:
        """Replace every secret value in `text` (any form, see the class doc) by its `{{secret:NAME}}`."""
        if not self._forms or not text:
            return text
        spans: list[tuple[int, int, str]] = []
        for name, form, start in self._forms:
            at = text.find(start)
            while at >= 0:
                end, i = at + len(start), len(start)
                while i < len(form) and end < len(text) and text[end] == form[i]:
                    end, i = end + 1, i + 1
                spans.append((at, end, name))
                at = text.find(start, at + 1)
        if not spans:
            return text
        kept = [(m.start(), m.end()) for m in SECRET_RE.finditer(text)]  # placeholders already there stay
        spans.sort(key=lambda s: (s[0], -s[1]))
        out, pos = [], 0
        for begin, end, name in spans:
            if end <= pos or any(b < end and begin < e for b, e in kept):
                continue
            begin = max(begin, pos)
            out.append(text[pos:begin])
            out.append(f"{{{{secret:{name}}}}}")
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def redact_obj(self, value: Any) -> Any:
        """`redact` applied to every string inside dicts / lists / tuples (dict keys too)."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_obj(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_obj(v) for v in value)
        return value

    def redact_any(self, value: Any) -> Any:
        """`redact_obj`, also through dataclasses (events, actions, results): changed ones are copied with
        `dataclasses.replace`, the rest returned as they are (images are never copied)."""
        if not self._forms or isinstance(value, (Image.Image, int, float, bool, type(None))):
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                if not f.init:
                    continue
                old = getattr(value, f.name)
                new = self.redact_any(old)
                if new is not old and new != old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        if isinstance(value, (dict, list, tuple)):
            if isinstance(value, dict):
                return {self.redact_any(k): self.redact_any(v) for k, v in value.items()}
            items = [self.redact_any(v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, str):
            return self.redact(value)
        return value

    def substitute(self, text: str) -> str:
        """Replace known placeholders by their real values (unknown names are left as written)."""
        return SECRET_RE.sub(lambda m: self._secrets.get(m.group(1), m.group(0)), text)

    def for_execution(self, action: Action) -> Action:
        """The action the executor should run: placeholders in `text` replaced by real values."""
        if action.text is None or not self._secrets or not SECRET_RE.search(action.text):
            return action
        return action.with_(text=self.substitute(action.text))
