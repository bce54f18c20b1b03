"""Engine messages (engine.api format) checked for an in-process model: images pulled out in prompt order, and
OpenAI-style JSON-string tool-call arguments parsed into the dicts chat templates expect.

Used by engine.local before rendering a prompt; raises EngineError naming the bad message index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engine.api import Message
from engine.errors import EngineError


def collect_images(messages: Sequence[Message]) -> list[Any]:
    """Images in prompt order; raises EngineError for image parts that are not PIL images."""
    from PIL import Image

    images: list[Any] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or not (part.get("type") == "image" or "image" in part or "image_url" in part):
                continue
            image = part.get("image")
            if "image_url" in part and image is None:
                raise EngineError(
                    f"message {i}: image_url parts are for remote servers; pass the screenshot itself as "
                    "{'type': 'image', 'image': PIL.Image} to an in-process model"
                )
            if not isinstance(image, Image.Image):
                raise EngineError(
                    f"message {i} has an image part holding {type(image).__name__}; pass {{'type': 'image', 'image': PIL.Image}}"
                )
            images.append(image)
    return images


def normalise_messages(messages: Sequence[Message]) -> list[Message]:
    """Copies of the messages with OpenAI-style JSON-string tool-call arguments parsed into dicts."""
    out: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise EngineError(f"message {i} must be a dict with 'role' and 'content', got {message!r:.80}")
        calls = message.get("tool_calls")
        if calls:
            fixed = []
            for call in calls:
                fn = dict(call.get("function", call))
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"] or "{}")
                    except json.JSONDecodeError as exc:
                        raise EngineError(f"message {i}: tool call arguments are not JSON ({exc})") from None
                fixed.append({**call, "function": fn} if "function" in call else fn)
            message = {**message, "tool_calls": fixed}
        out.append(message)
    return out
