"""`visagent model-info PATH`: a checkpoint's architecture from config.json alone (no weights read)."""

from __future__ import annotations

import json

from visagent.core.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "model-info",
        help="layers, experts, parameters, context and screenshot token cost of a checkpoint (config.json only)",
    )
    p.add_argument("path", help="checkpoint directory (only config.json is needed), or 'tiny'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--check",
        action="store_true",
        help="also check the directory is loadable: weight shards complete, tokenizer and chat template present",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine import tiny_checkpoint_path
    from engine import inspect_checkpoint
    from engine import format_model_info, read_model_info

    if args.path.startswith(("http://", "https://")):
        raise ConfigError(f"model-info reads a local checkpoint's config.json; {args.path!r} is a server URL "
                          "(ask the server itself, e.g. GET /v1/models)")
    path = tiny_checkpoint_path() if args.path == "tiny" else args.path
    checked = inspect_checkpoint(path) if args.check else None
    info = read_model_info(path)
    if args.json:
        data = info.as_dict()
        if checked is not None:
            data["weight_bytes"] = checked.weight_bytes
        print(json.dumps(data, indent=2))
        return 0
    print(format_model_info(info))
    if checked is not None:
        print(f"check:           ok, {len(checked.weight_files)} weight file(s), {checked.weight_bytes / 1e9:.3f} GB, "
              f"chat template {checked.chat_template.name}")
    return 0
