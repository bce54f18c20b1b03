"""`visagent ground IMAGE "INSTRUCTION"`: one screenshot, one instruction → the point the model names.

Prints the point in the model's space and in image pixels, the parsed action, latency and the raw output
(or one JSON object with --json); --out writes the image with the point marked. Exit status 0 when the
output held a point, 1 when it did not (wrong format; the raw output says what came back), 2 for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from visagent.core.errors import ConfigError

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def register(sub) -> None:
    from visagent.grounding.predict import PROMPT_STYLES

    p = sub.add_parser("ground", help="ask a model where an instruction points on one screenshot")
    p.add_argument("image", metavar="IMAGE", help="screenshot file (PNG, JPEG, ...)")
    p.add_argument("instruction", metavar="INSTRUCTION", help='what to find, e.g. "the Save button"')
    p.add_argument("--model", help="model spec: tiny, a checkpoint directory or an http(s)://host/v1 URL")
    p.add_argument("--out", metavar="PNG", help="write the screenshot with the predicted point marked")
    p.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object")
    p.add_argument("--platform", choices=("desktop", "phone"), default="desktop",
                   help="computer_use (desktop) or mobile_use (phone) tool in the prompt (default desktop)")
    p.add_argument("--prompt-style", choices=PROMPT_STYLES, default="auto",
                   help="prompt per model family (auto: from the model's coordinate space)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation limit (default 128)")
    add_point_from_arg(p)
    p.set_defaults(handler=run)


def add_point_from_arg(p) -> None:
    """--point-from (the `point_from` setting; visagent/loop/pointing.py), shared by ground, ground-eval, run, eval."""
    from visagent.loop.pointing import POINT_SOURCES

    p.add_argument("--point-from", choices=POINT_SOURCES, default=None,
                   help="where a click's point comes from: the model's pointing head (a checkpoint trained with "
                        "--pointer-weight carries one) or the coordinate it writes; auto (default): the head when "
                        "the checkpoint has one")


def open_image(path: str, flag: str = "IMAGE") -> Image.Image:
    """The image at `path` as RGB. Raises ConfigError (missing, not an image)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{flag} {path}: no such file")
    try:
        with Image.open(file) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"{flag} {path}: not a readable image ({exc})") from None


def generation_config(max_new_tokens: int):
    """Greedy decoding with this token limit. Raises ConfigError when it is below 1."""
    from engine.api import GenerationConfig

    if max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {max_new_tokens} must be at least 1")
    return GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)


def load_model(settings):
    from visagent.loop.engines import open_engine

    return open_engine(settings)


def run(args) -> int:
    from visagent.grounding import annotate, ground

    if not args.instruction.strip():
        raise ConfigError('INSTRUCTION is empty; say which element to find, e.g. "the Save button"')
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise ConfigError(f"--out {args.out}: use an image file name ending in .png or .jpg")
    config = generation_config(args.max_new_tokens)
    image = open_image(args.image)
    engine = load_model(args.settings)
    try:
        result = ground(engine, image, args.instruction, platform=args.platform, config=config,
                        prompt_style=args.prompt_style, point_from=args.settings.point_from)
    finally:
        engine.close()
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            annotate(image, result).save(out)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
    if args.as_json:
        data = result.to_dict()
        data["model"] = args.settings.model
        data["annotated"] = None if out is None else str(out)
        print(json.dumps(data))
    else:
        pm = result.point_model
        where = "0..1000 grid" if result.space == "norm1000" else \
            f"pixels of the {result.model_size[0]}x{result.model_size[1]} resized image"
        print(f"model: {args.settings.model} (prompt {result.prompt_style}; answers on the {where})")
        if result.point is None or pm is None:
            print(f"no point: {result.error}")
        else:
            print(f"point (model {result.space}): [{pm[0]:g}, {pm[1]:g}]")
            print(f"point (image px of {result.image_size[0]}x{result.image_size[1]}): "
                  f"[{result.point[0]:.1f}, {result.point[1]:.1f}]")
            print(f"action: {result.action.summary() if result.action else ''}")
            if result.point_source == "head" and result.written is not None:
                print(f"point from the model's pointing head (score {result.pointer['score']:.3f}); the written "
                      f"point was [{result.written[0]:.1f}, {result.written[1]:.1f}] (image px)")
        print(f"latency: {result.latency_s:.3f} s")
        print("raw output:")
        print(result.raw)
        if out is not None:
            print(f"annotated: {out}")
    return 0 if result.point is not None else 1
