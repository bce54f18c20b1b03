"""`visagent config`: show the effective settings and where the config file is."""

from __future__ import annotations

import json

from visagent.settings import find_config_file


def register(sub) -> None:
    p = sub.add_parser("config", help="show the effective settings (flags > VISAGENT_* > visagent.toml > defaults)")
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
    path = find_config_file()
    print(f"# config file: {path if path else 'none (visagent.toml in . or ~/.config/visagent/)'}")
    for key, value in data.items():
        if isinstance(value, dict):
            for skey, svalue in value.items():
                print(f"{key}.{skey} = {svalue!r}")
        else:
            print(f"{key} = {value!r}")
    return 0
