"""One settings object, resolved with precedence: CLI flag > environment (VISAGENT_*) > config file > defaults.

The config file is `visagent.toml` in the working directory, else `~/.config/visagent/visagent.toml`
(or the path in VISAGENT_CONFIG). Top-level keys are the fields of `Settings`; the `[safety]` table holds
the fields of `SafetySettings`. Environment variables are `VISAGENT_<FIELD>` and
`VISAGENT_SAFETY_<FIELD>` (lists comma-separated, booleans 1/0/true/false/yes/no/on/off).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import PROVIDER_CHOICES
from visagent.core.actions import EXECUTOR_KINDS
from visagent.core.errors import ConfigError

#: Where a click's point comes from: "text" (the model's digits), "head" (its pointing head), "auto" (the head
#: when the checkpoint has one).
POINT_SOURCES: tuple[str, ...] = ("auto", "text", "head")

CONFIG_NAME = "visagent.toml"
#: Ray addresses `ray` accepts: auto, local, ray://HOST:PORT (Ray Client) or HOST:PORT (the head's GCS)
RAY_ADDRESS = re.compile(r"auto|local|ray://[A-Za-z0-9.\-]+:\d{1,5}|[A-Za-z0-9.\-]+:\d{1,5}")
RAY_TRACE_MODES = ("ship", "shared")


@dataclass(frozen=True)
class SafetySettings:
    """Rules the agent loop checks before executing an action (see visagent.loop.policy)."""

    confirm_risky: bool = True
    risky_hotkeys: tuple[str, ...] = ("ctrl+alt+delete", "alt+f4", "ctrl+alt+backspace", "super+l")
    risky_text_patterns: tuple[str, ...] = (r"rm\s+-rf", r"mkfs", r"dd\s+if=", r"shutdown", r":\(\)\s*\{")
    risky_thought_words: tuple[str, ...] = ("pay", "purchase", "buy", "delete", "remove", "send", "transfer")


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with. Units: seconds, pixels, counts."""

    model: str = "tiny"
    model_name: str | None = None
    api_key: str | None = None
    # The server's provider profile (engine/providers.py): "auto" detects it from the server; vllm, sglang,
    # llamacpp, ollama, modelstudio, openai, visagent or generic choose it.
    provider: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    # In-process engine only (visagent/loop/engines.py → engine.load_engine): cached conversations kept, their
    # total MB (KV + linear-attention states + snapshots), snapshots per conversation, prompt tokens per
    # prefill forward (Stop is honoured between them; 0: the whole prompt in one forward).
    session_max_sessions: int = 8
    session_max_mb: float = 4096.0
    session_max_snapshots: int = 8
    prefill_chunk: int = 512
    executor: str = "sim"
    scenario: str | None = None
    trace_dir: str = "runs"
    max_steps: int = 15
    max_seconds: float = 600.0
    history_images: int = 4
    thinking: bool = False
    # Tokens a thought may take before its answer (thinking on), and tokens for the answer itself; a request
    # asks for at most thinking_budget + answer_tokens. A thought cut off at the budget is re-asked once with
    # thinking off (docs/agent.md).
    thinking_budget: int = 4096
    answer_tokens: int = 256
    # Sampling (visagent/loop/sampling.py): the model's recommended values per mode unless `greedy`; each value set
    # here replaces the recommended one in both modes.
    greedy: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    settle: bool = True
    # Where a click's point comes from (visagent/loop/pointing.py): "auto" (the checkpoint's pointing head when it
    # has one, else the written coordinate), "text" or "head".
    point_from: str = "auto"
    host: str = "127.0.0.1"
    port: int | None = None
    log_level: str = "WARNING"
    # `visagent eval` on a Ray cluster (visagent/traces/ray_eval.py): None runs here; "auto" (the cluster `ray start`
    # made on this machine), "local" (a throwaway one in this process), "ray://host:10001" or "host:6379".
    # ray_traces: "ship" (workers send each trace back to the head) or "shared" (workers write to trace_dir,
    # which must be the same path on a filesystem every node mounts).
    ray: str | None = None
    ray_traces: str = "ship"
    safety: SafetySettings = field(default_factory=SafetySettings)

    def describe(self) -> dict[str, Any]:
        """Plain-dict view for printing (the API key is masked)."""
        data = dataclasses.asdict(self)
        if data.get("api_key"):
            data["api_key"] = "***"
        return data


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _base_type(tp: Any) -> tuple[Any, bool]:
    """Strip `| None`; return (type, optional)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, where: str) -> Any:
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                items = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (list, tuple)):
                items = [str(v) for v in value]
            else:
                raise ValueError
            return tuple(items)
    except (TypeError, ValueError):
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"{where}: {value!r} is not a valid {name}") from None
    raise ConfigError(f"{where}: unsupported setting type {base}")


def find_config_file(cwd: Path | None = None, home: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies, or None. VISAGENT_CONFIG wins and must exist."""
    env = os.environ if env is None else env
    explicit = env.get("VISAGENT_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"VISAGENT_CONFIG points to {path}, which does not exist; fix the path or unset it")
        return path
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    for candidate in (cwd / CONFIG_NAME, home / ".config" / "visagent" / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None


def load_settings(
    cli: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    sources: dict[str, str] | None = None,
) -> Settings:
    """Resolve settings. `cli` holds flag values (None means "not given"); `safety_<field>` keys set safety fields.
    A `sources` dict given is filled with where each value came from ("file", "env", "flag"; keys as in
    `describe()`, safety fields as "safety.<field>"); a key left out kept its default.

    Raises ConfigError naming the source and key of any bad value or unknown key.
    """
    origin: dict[str, str] = {} if sources is None else sources
    env = os.environ if env is None else env
    top_types = _field_types(Settings)
    safety_types = _field_types(SafetySettings)
    top: dict[str, Any] = {}
    safety: dict[str, Any] = {}

    path = find_config_file(cwd, home, env)
    if path is not None:
        data = _read_config(path)
        for key, value in data.items():
            if key == "safety":
                if not isinstance(value, dict):
                    raise ConfigError(f"{path}: [safety] must be a table")
                for skey, svalue in value.items():
                    if skey not in safety_types:
                        raise ConfigError(f"{path}: unknown key safety.{skey}; known: {', '.join(safety_types)}")
                    safety[skey] = _coerce(svalue, safety_types[skey], f"{path}: safety.{skey}")
                    origin[f"safety.{skey}"] = "file"
            elif key in top_types:
                top[key] = _coerce(value, top_types[key], f"{path}: {key}")
                origin[key] = "file"
            else:
                known = ", ".join(k for k in top_types if k != "safety")
                raise ConfigError(f"{path}: unknown key {key!r}; known keys: {known}")

    for name, tp in top_types.items():
        if name == "safety":
            continue
        var = f"VISAGENT_{name.upper()}"
        if var in env:
            top[name] = _coerce(env[var], tp, var)
            origin[name] = "env"
    for name, tp in safety_types.items():
        var = f"VISAGENT_SAFETY_{name.upper()}"
        if var in env:
            safety[name] = _coerce(env[var], tp, var)
            origin[f"safety.{name}"] = "env"
    # The OpenAI client's conventional variable is honoured when ours is absent.
    if "api_key" not in top and env.get("OPENAI_API_KEY"):
        top["api_key"] = env["OPENAI_API_KEY"]
        origin["api_key"] = "env"

    for key, value in (cli or {}).items():
        if value is None:
            continue
        if key.startswith("safety_") and key[7:] in safety_types:
            safety[key[7:]] = _coerce(value, safety_types[key[7:]], f"--{key.replace('_', '-')}")
            origin[f"safety.{key[7:]}"] = "flag"
        elif key in top_types and key != "safety":
            top[key] = _coerce(value, top_types[key], f"--{key.replace('_', '-')}")
            origin[key] = "flag"

    settings = Settings(**top, safety=SafetySettings(**safety))
    validate_settings(settings)
    return settings


def check_run_limits(*, max_steps: int, max_seconds: float, history_images: int, point_from: str,
                     thinking_budget: int | None = None, answer_tokens: int | None = None) -> None:
    """The limits of one run, checked the same way whether they come from settings or a hand-built
    visagent.loop.agent.AgentConfig (None token counts: not set). Raises ConfigError naming the value."""
    if max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    if max_seconds <= 0:
        raise ConfigError(f"max_seconds must be positive, got {max_seconds}")
    if history_images < 1:
        raise ConfigError(f"history_images must be at least 1, got {history_images}")
    for name, value in (("thinking_budget", thinking_budget), ("answer_tokens", answer_tokens)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1 token, got {value}")
    if point_from not in POINT_SOURCES:
        raise ConfigError(f"point_from must be one of {', '.join(POINT_SOURCES)}, got {point_from!r}")


def validate_settings(s: Settings) -> None:
    """Check resolved settings (load_settings does; so does visagent.loop.runs.open_run for settings a front end
    changed, e.g. the dashboard's form). Raises ConfigError naming the bad value."""
    if s.executor not in EXECUTOR_KINDS:
        raise ConfigError(f"executor must be {', '.join(EXECUTOR_KINDS[:-1])} or {EXECUTOR_KINDS[-1]}, "
                          f"got {s.executor!r}")
    check_run_limits(max_steps=s.max_steps, max_seconds=s.max_seconds, history_images=s.history_images,
                     point_from=s.point_from, thinking_budget=s.thinking_budget, answer_tokens=s.answer_tokens)
    if s.provider not in PROVIDER_CHOICES:
        raise ConfigError(f"provider must be one of {', '.join(PROVIDER_CHOICES)}, got {s.provider!r}")
    if s.temperature is not None and s.temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0: greedy), got {s.temperature}")
    if s.top_p is not None and not 0 < s.top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {s.top_p}")
    if s.top_k is not None and s.top_k < 0:
        raise ConfigError(f"top_k must be >= 0 (0: off), got {s.top_k}")
    if s.min_p is not None and not 0 <= s.min_p <= 1:
        raise ConfigError(f"min_p must be in [0, 1], got {s.min_p}")
    if s.presence_penalty is not None and not -2 <= s.presence_penalty <= 2:
        raise ConfigError(f"presence_penalty must be in [-2, 2], got {s.presence_penalty}")
    if s.repetition_penalty is not None and s.repetition_penalty <= 0:
        raise ConfigError(f"repetition_penalty must be > 0 (1: off), got {s.repetition_penalty}")
    for name in ("session_max_sessions", "session_max_mb", "session_max_snapshots"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(s, name)}")
    if s.prefill_chunk < 0:
        raise ConfigError(f"prefill_chunk must be a token count (0: one forward), got {s.prefill_chunk}")
    if s.port is not None and not 0 <= s.port <= 65535:
        raise ConfigError(f"port must be within 0..65535, got {s.port}")
    if s.ray is not None and not RAY_ADDRESS.fullmatch(s.ray):
        raise ConfigError(f"ray must be auto, local, ray://HOST:PORT or HOST:PORT, got {s.ray!r}")
    if s.ray_traces not in RAY_TRACE_MODES:
        raise ConfigError(f"ray_traces must be ship or shared, got {s.ray_traces!r}")
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")
