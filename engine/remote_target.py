"""Where a RemoteEngine points: the server's base URL in one canonical form, and what the served model's name
implies about its coordinate space and vision patching. Kept apart from the HTTP client (engine.remote);
both names stay importable from engine.remote.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from engine.api import CoordSpaceName, VisionSpec
from engine.errors import EngineError


def normalize_base_url(url: str) -> str:
    """`http://h:8000` → `http://h:8000/v1`; trailing slashes and a `/chat/completions` suffix are dropped."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"{url!r} is not an http(s):// server URL; use e.g. http://127.0.0.1:8000/v1")
    try:
        httpx.URL(url.strip())  # what the client will parse later: a bad port or host must fail here, in one line
        parts.port  # noqa: B018 - raises ValueError for a port outside 0..65535, which httpx lets through
    except (httpx.InvalidURL, ValueError) as exc:
        raise EngineError(f"{url!r} is not a valid server URL ({exc}); use e.g. http://127.0.0.1:8000/v1") from None
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return f"{parts.scheme}://{parts.netloc}{path or '/v1'}"


_PIXEL_COORD_FAMILIES = ("qwen2.5-vl", "qwen2-vl", "ui-tars", "uitars", "gui-owl")


def infer_model_family(model_name: str) -> tuple[CoordSpaceName, VisionSpec]:
    """Coordinate space and vision spec a served model name implies.

    Qwen2-VL / Qwen2.5-VL and models built on them (UI-TARS, GUI-Owl) answer in pixels of the resized image
    and cut 28x28-pixel tokens; everything else (Qwen3-VL, Qwen3.5) is assumed to answer on the 0..1000 grid
    with 32x32-pixel tokens. Pass `coord_space` / `vision` to RemoteEngine when a name misleads.
    """
    name = model_name.lower().replace("_", "-")
    if any(family in name for family in _PIXEL_COORD_FAMILIES):
        from engine.preprocess import QWEN25_VL_VISION  # deferred: it pulls in torch

        return "resized", QWEN25_VL_VISION
    return "norm1000", VisionSpec()
