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

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from visagent import actions as A
from visagent.actions import Action
from visagent.errors import ConfigError
from visagent.settings import SafetySettings

SECRET_RE = re.compile(r"\{\{secret:([A-Za-z_][A-Za-z0-9_]*)\}\}")

# Clicks / presses that commit something; checked against the model's thought.
_COMMIT_ACTIONS = frozenset({A.LEFT_CLICK, A.DOUBLE_CLICK, A.TRIPLE_CLICK, A.CLICK, A.LONG_PRESS, A.RIGHT_CLICK,
                             A.MIDDLE_CLICK})
_KEY_ALIASES = {
    "control": "ctrl", "ctl": "ctrl", "del": "delete", "cmd": "super", "command": "super", "win": "super",
    "windows": "super", "meta": "super", "option": "alt", "return": "enter", "esc": "escape",
    "bksp": "backspace",
}
_TOOL_CALL_RE = re.compile(r"<tool_call>.*?(</tool_call>|$)", re.S)


def _norm_key(key: str) -> str:
    k = key.strip().lower()
    return _KEY_ALIASES.get(k, k)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.lower().endswith("e") else word


def _combo(keys: tuple[str, ...] | list[str]) -> frozenset[str]:
    return frozenset(_norm_key(k) for k in keys)


@dataclass(frozen=True)
class PolicyDecision:
    """`verdict`: "allow" (execute), "confirm" (ask a human first), "block" (never execute)."""

    verdict: Literal["allow", "confirm", "block"]
    reason: str = ""


class SafetyPolicy:
    """Checks one action (in any coordinate space) against the safety settings. Pure: no I/O, thread-safe."""

    def __init__(self, safety: SafetySettings) -> None:
        self.safety = safety
        self._hotkeys = [(_combo(h.replace(" ", "").split("+")), h) for h in safety.risky_hotkeys if h.strip()]
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
        """Whether `action` may run. `thought`: what the model wrote before its tool call (thinking + text)."""
        if not self.safety.confirm_risky:
            return PolicyDecision("allow")
        if action.keys is not None and action.action in (A.KEY, A.LEFT_CLICK):
            combo = _combo(action.keys)
            for risky, label in self._hotkeys:
                if combo == risky:
                    return PolicyDecision("confirm", f"hotkey {label} is on the risky list")
        texts = [action.text] if action.text and action.action in (A.TYPE, A.KEY, A.OPEN) else []
        for text in texts:
            for pattern in self._patterns:
                if pattern.search(text):
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


class SecretVault:
    """Holds secret values; substitutes placeholders at execution time and redacts values everywhere else."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self._secrets = dict(secrets or {})
        # Longest first, so a secret containing another is redacted whole.
        self._by_length = sorted(self._secrets.items(), key=lambda kv: len(kv[1]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def names(self) -> list[str]:
        return list(self._secrets)

    def redact(self, text: str) -> str:
        """Replace every secret value in `text` by its `{{secret:NAME}}` placeholder."""
        for name, value in self._by_length:
            if value in text:
                text = text.replace(value, f"{{{{secret:{name}}}}}")
        return text

    def redact_obj(self, value: Any) -> Any:
        """`redact` applied to every string inside dicts / lists / tuples."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_obj(v) for v in value]
        return value

    def substitute(self, text: str) -> str:
        """Replace known placeholders by their real values (unknown names are left as written)."""
        return SECRET_RE.sub(lambda m: self._secrets.get(m.group(1), m.group(0)), text)

    def for_execution(self, action: Action) -> Action:
        """The action the executor should run: placeholders in `text` replaced by real values."""
        if action.text is None or not self._secrets or not SECRET_RE.search(action.text):
            return action
        return action.with_(text=self.substitute(action.text))
