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
import struct
import threading
import weakref
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

try:  # ISA-L's deflate: ~10x faster than zlib's level 1 at the same size for screenshots; zlib when absent
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a declared dependency; the encoder still works without it
    _deflate = zlib  # type: ignore[assignment]

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
    """PNG bytes of `image` (converted to RGB unless its mode is in PNG_MODES). Lossless: a decoder sees exactly
    these pixels (8-bit gray, RGB or RGBA, non-interlaced). Every row uses PNG's "Up" filter (its difference
    from the row above, computed with numpy: screenshots are mostly flat, so most bytes become 0) and the
    stream is deflated at level 1 by ISA-L (stdlib zlib when `isal` is not installed): ~10x faster than
    Pillow's level 1 with its per-row filter search, files about the same size."""
    if image.mode not in PNG_MODES:
        image = image.convert("RGB")
    width, height = image.size
    if width == 0 or height == 0:  # PNG has no empty images; let Pillow refuse it as before
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, -1)
    rows = np.empty((height, pixels.shape[1] + 1), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up; the first row's "above" is zeros, so it is the row itself
    rows[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])  # modulo 256, as the filter is defined
    color = {"L": 0, "RGB": 2, "RGBA": 6}[image.mode]
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), _chunk(b"IDAT", _deflate.compress(rows, 1)),
                     _chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


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
