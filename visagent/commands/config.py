"""`visagent config`: show the effective settings as TOML (a valid visagent.toml), each value with its source."""

from __future__ import annotations

import json
from typing import Any

from visagent.core.settings import find_config_file, load_settings


def register(sub) -> None:
    p = sub.add_parser("config", help="show the effective settings (flags > VISAGENT_* > visagent.toml > defaults)",
                       description="Print the effective settings as TOML that visagent.toml accepts, each value "
                       "followed by where it came from: default, file, env (VISAGENT_*) or flag. Unset values and "
                       "the API key are printed as comments.")
    p.add_argument("--model", help="model spec to resolve (for checking precedence)")
    p.add_argument("--executor", help="executor to resolve")
    p.add_argument("--max-steps", type=int, help="max steps to resolve")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.set_defaults(handler=run)


def run(args) -> int:
    data = args.settings.describe()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    sources: dict[str, str] = {}
    load_settings(vars(args), sources=sources)  # the same resolution as args.settings, recording each source
    path = find_config_file()
    print(f"# config file: {path if path else 'none (visagent.toml in . or ~/.config/visagent/)'}")
    print("# each value's source follows it: default, file, env (VISAGENT_*) or flag")
    tables = {key: value for key, value in data.items() if isinstance(value, dict)}
    for key, value in data.items():
        if key not in tables:
            print(toml_line(key, value, _source(sources, key, key)))
    for table, values in tables.items():
        print(f"\n[{table}]")
        for key, value in values.items():
            print(toml_line(key, value, _source(sources, f"{table}.{key}", f"{table}_{key}")))
    return 0


def _source(sources: dict[str, str], key: str, env_name: str) -> str:
    kind = sources.get(key, "default")
    if kind == "env":
        return f"env (VISAGENT_{env_name.upper()} or OPENAI_API_KEY)" if key == "api_key" else \
            f"env (VISAGENT_{env_name.upper()})"
    if kind == "flag":
        return f"flag (--{env_name.replace('_', '-')})"
    return kind


def toml_line(key: str, value: Any, source: str) -> str:
    """`key = value  # source` in TOML; a value TOML cannot hold (unset) or must not show (the key) as a comment."""
    if value is None:
        return f"# {key} = (not set)  # {source}"
    if key == "api_key":
        return f"# {key} = (set, not shown)  # {source}"
    return f"{key} = {toml_value(value)}  # {source}"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    # a JSON string is a TOML basic string, except that TOML forbids a raw DEL
    return json.dumps(str(value)).replace("\x7f", "\\u007f")
