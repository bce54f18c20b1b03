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
    Pillow's level 1 with its per-row filter search, files about the same size. The pixels and the filtered
    rows go through two per-thread buffers reused from call to call (`_scratch`)."""
    if image.mode not in PNG_MODES:
        image = image.convert("RGB")
    width, height = image.size
    if width == 0 or height == 0:  # PNG has no empty images; let Pillow refuse it as before
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    stride = width * len(image.mode)
    pixels = _read_pixels(image, _scratch("pixels", (height, stride)))
    rows = _scratch("rows", (height, stride + 1))
    rows[:, 0] = 2  # filter type Up; the first row's "above" is zeros, so it is the row itself
    rows[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])  # modulo 256, as the filter is defined
    color = {"L": 0, "RGB": 2, "RGBA": 6}[image.mode]
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), _chunk(b"IDAT", _deflate.compress(rows, 1)),
                     _chunk(b"IEND", b"")))


_scratch_buffers = threading.local()


def _scratch(name: str, shape: tuple[int, int]) -> np.ndarray:
    """This thread's uint8 buffer `name` of `shape`, reused by the next call of the same size. A fresh buffer of
    several MB per screenshot costs more in page faults than the work done in it (2-4 ms at 1280x800). Holds
    at most two buffers per encoding thread (the trace writer's, a request's), about 2x the screenshot."""
    buf = getattr(_scratch_buffers, name, None)
    if buf is None or buf.shape != shape:
        buf = np.empty(shape, dtype=np.uint8)
        setattr(_scratch_buffers, name, buf)
    return buf


def _read_pixels(image: Image.Image, out: np.ndarray) -> np.ndarray:
    """`image`'s pixels (L, RGB or RGBA) copied into `out` (height, width * channels): Pillow's raw packer, a
    block at a time, written into `out`, as `tobytes` does but without joining the blocks into a new bytes
    object. Any surprise from that (private) interface of Pillow falls back to `tobytes`."""
    flat = memoryview(out.reshape(-1))
    try:
        encoder = _raw_encoder(image.mode, "raw", (image.mode,))
        encoder.setimage(image.im, (0, 0) + image.size)
        at = 0
        while True:
            _, status, block = encoder.encode(1 << 18)
            flat[at:at + len(block)] = block
            at += len(block)
            if status:
                break
        if status >= 0 and at == out.size:
            return out
    except (AttributeError, TypeError, ValueError, OSError):
        pass
    out.reshape(-1)[:] = np.frombuffer(image.tobytes(), dtype=np.uint8)
    return out


_raw_encoder = getattr(Image, "_getencoder", None)  # what Image.tobytes packs pixels with (Pillow's own helper)


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
