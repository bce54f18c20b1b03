"""PNG encoding of screenshots, done once per image and shared by everyone who needs it.

A screenshot is encoded for the trace (`step_NNN.png`) and, on the remote path, as a base64 data URL in every
request that still carries it (up to `history_images` consecutive requests). `keep_encoding(image)` is the
caller's promise that `image` will not be modified any more: its PNG bytes and data URL are then computed at
most once (by whichever thread asks first; another asking meanwhile waits for that result) and reused for as
long as the image lives. Images never registered are encoded afresh on each call, as before, so a caller that
draws on an image between requests still sends its current pixels.

The cache holds no image alive: an entry goes when its image is garbage-collected, so memory follows the
images the caller keeps (the prompt's screenshot window), not the run's length.
"""

from __future__ import annotations

import base64
import io
import threading
import weakref
from collections.abc import Callable

from PIL import Image

#: Modes sent as they are; any other is converted to RGB first (the wire's lossless PNG of the pixels).
PNG_MODES = ("RGB", "RGBA", "L")
DATA_URL_PREFIX = "data:image/png;base64,"


class _Entry:
    __slots__ = ("ref", "lock", "png", "url", "derived")

    def __init__(self, ref: weakref.ref) -> None:
        self.ref = ref
        self.lock = threading.Lock()
        self.png: bytes | None = None
        self.url: str | None = None
        self.derived: dict[object, Image.Image] = {}


_entries: dict[int, _Entry] = {}
_registry_lock = threading.Lock()


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of `image` (converted to RGB unless its mode is in PNG_MODES), compress level 1 (~5x faster
    than the default for screenshots, files slightly larger). Lossless: a decoder sees exactly these pixels."""
    if image.mode not in PNG_MODES:
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def keep_encoding(image: Image.Image) -> Image.Image:
    """Register `image` as final: its PNG and data URL are encoded once and shared (see the module docstring).
    Returns `image`. Registering an image twice is harmless."""
    key = id(image)
    with _registry_lock:
        entry = _entries.get(key)
        if entry is not None and entry.ref() is image:
            return image

        def gone(_ref: weakref.ref, key: int = key) -> None:
            # Runs when the image is freed; only its own entry is removed (the id may be reused later).
            current = _entries.get(key)
            if current is not None and current.ref is _ref:
                _entries.pop(key, None)

        _entries[key] = _Entry(weakref.ref(image, gone))
    return image


def _entry(image: Image.Image) -> _Entry | None:
    entry = _entries.get(id(image))
    return entry if entry is not None and entry.ref() is image else None


def png_bytes(image: Image.Image) -> bytes:
    """The PNG of `image` (encode_png), computed once when the image was registered with keep_encoding."""
    entry = _entry(image)
    if entry is None:
        return encode_png(image)
    with entry.lock:
        if entry.png is None:
            entry.png = encode_png(image)
        return entry.png


def data_url(image: Image.Image) -> str:
    """`data:image/png;base64,...` of png_bytes(image), computed once for a registered image."""
    entry = _entry(image)
    if entry is None:
        return DATA_URL_PREFIX + base64.b64encode(encode_png(image)).decode("ascii")
    png = png_bytes(image)
    with entry.lock:
        if entry.url is None:
            entry.url = DATA_URL_PREFIX + base64.b64encode(png).decode("ascii")
        return entry.url


def derived(image: Image.Image, key: object, make: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """`make(image)` (e.g. a resized copy), made once per `key` for a registered image and itself registered,
    so its encoding is shared too; for an unregistered image, made afresh each call."""
    entry = _entry(image)
    if entry is None:
        return make(image)
    with entry.lock:
        made = entry.derived.get(key)
        if made is None:
            made = entry.derived[key] = keep_encoding(make(image))
        return made


def cached_images() -> int:
    """How many registered images are alive (their encodings are kept): for tests and memory checks."""
    return sum(1 for e in list(_entries.values()) if e.ref() is not None)
