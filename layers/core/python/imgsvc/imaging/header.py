"""Header probing: format, size and mode from the start of a stream, decoding nothing.

Analyze by URL must not download a 20 MB photo to report its size, so ``probe`` pulls
chunks only until the header parses, with a cost linear in the bytes read.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, JpegImagePlugin

from imgsvc import formats, isobmff
from imgsvc.errors import InvalidImage

ALLOWED_FORMATS = frozenset(formats.NAMES)
# Image.open wants a list or tuple, not a set; the order is irrelevant (the signatures differ).
_OPEN_ORDER = formats.NAMES
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_FORMATS))

# Pillow's JPEG opener returns an MpoImageFile for multi-picture JPEGs (some phones and 3D
# cameras write them). They are JPEG files whose first picture is what every viewer shows.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# CPU the header probe may spend parsing (its cost is linear in the bytes read; this bounds
# what a huge capped prefix could still cost).
PROBE_CPU_SECONDS = 2.0


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: enough for "analyze by URL"."""

    format: str
    width: int
    height: int
    mode: str
    # Only where the header says: an APNG's acTL chunk counts its frames, a WebP's VP8X
    # header flags an animation without counting; GIF and AVIF say nothing up front.
    animated: bool | None = field(default=None, compare=False)
    frames: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "size": f"{self.width}x{self.height}",
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "animated": self.animated,
            "frames": self.frames,
        }


class _PrefixReader(io.BytesIO):
    """The bytes received so far, noting whether a parser tried to read past their end.

    A plugin that parsed a header from a prefix without a short read saw everything it
    needed; one that hit the end may have failed, or worse succeeded with a guess (a BMP
    whose palette is cut off comes out "P" instead of "L").
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.short = False
        self.wanted = 0  # bytes the parser wanted to have; 0: unknown (it read "everything")

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        chunk = super().read(size)
        if size is None or size < 0:
            self.short = True
            self.wanted = 0
        elif len(chunk) < size:
            self.short = True
            self.wanted = max(self.wanted, start + size)
        return chunk


def ensure_plugins() -> None:
    if any(fmt not in Image.OPEN for fmt in _OPEN_ORDER):
        Image.init()  # WEBP, TIFF and AVIF are not among Pillow's pre-initialised plugins
        # HEIF: libheif with only the LGPL libde265 decoder (pi-heif), loaded on first use.
        # Thumbnails and depth maps inside the file are not ours to decode.
        import pi_heif

        pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _accepts(accept: Any, prefix: bytes) -> bool:
    # accept() may return a str: "this is the format, but its support is not installed".
    if accept is None:
        return True
    try:
        result = accept(prefix)
    except Exception:  # a signature check that trips over short input is a "no"
        return False
    return bool(result) and not isinstance(result, str)


def _webp_info(data: bytes) -> ImageInfo | None:
    """Size and mode from a WebP's first chunk header.

    Pillow's WebP opener reads the whole file into libwebp; the first 30 bytes say it all.
    The mode follows Pillow: RGBA when libwebp reports alpha, else RGB.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: canvas size and an alpha flag
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        alpha = bool(data[20] & 0x10)
    elif chunk == b"VP8L":  # lossless: 14-bit sizes and an alpha-is-used bit
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        alpha = bool((bits >> 28) & 1)
    elif chunk == b"VP8 ":  # lossy, no alpha
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        alpha = False
    else:
        return None
    if width <= 0 or height <= 0:
        return None
    animated = bool(data[20] & 0x02) if chunk == b"VP8X" else False
    return ImageInfo("WEBP", width, height, "RGBA" if alpha else "RGB", animated)


def _unsupported_message(data: bytes) -> str:
    """Name the format when we can, so the user knows what to convert."""
    prefix = data[:16]
    ensure_plugins()
    for fmt in Image.ID:
        if fmt in ALLOWED_FORMATS:
            continue
        _factory, accept = Image.OPEN[fmt]
        # Plugins without a signature check would claim anything; a str means "it is this
        # format but Pillow's support is not installed", still a name worth giving.
        if accept is None:
            continue
        try:
            claimed = bool(accept(prefix))
        except Exception:
            claimed = False
        if claimed:
            return f"unsupported format {fmt}: allowed formats are {_ALLOWED_TEXT}"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return f"unsupported format SVG: allowed formats are {_ALLOWED_TEXT}"
    if head.startswith(b"<"):
        return f"the file is HTML or XML text, not an image: allowed formats are {_ALLOWED_TEXT}"
    return f"the file is not an image in a supported format: allowed formats are {_ALLOWED_TEXT}"


def _identify(data: bytes, *, complete: bool) -> ImageInfo | int:
    """Parse the header of ``data`` with the allowed plugins only, decoding no pixels.

    Returns the ImageInfo, or (``complete`` False) the length worth trying again at.
    Raises InvalidImage when no allowed format fits. Pillow's bomb check is not run here:
    nothing is allocated or decoded, and the caller wants to know the size of a bomb.
    """
    if len(data) < 16 and not complete:
        return 16  # the signature checks look at the first 16 bytes
    ensure_plugins()
    prefix = data[:16]
    need = 0
    claimed = False
    truncated = False
    for fmt in _OPEN_ORDER:
        factory, accept = Image.OPEN[fmt]
        if not _accepts(accept, prefix):
            continue
        claimed = True
        if fmt == "JPEG":
            # The registered factory goes on to look for MPO pictures further in the file;
            # the first picture's header, all a viewer shows, is enough.
            factory = JpegImagePlugin.JpegImageFile
        if fmt == "WEBP" and (info := _webp_info(data)) is not None:
            return info
        if fmt in ("HEIF", "AVIF"):
            # The decoders want the whole file; the meta box at its start says enough.
            try:
                width, height, mode = isobmff.decoded_size_and_mode(isobmff.parse(data))
                return ImageInfo(fmt, width, height, mode)
            except isobmff.NeedMore:
                if not complete:
                    need = max(need, 2 * len(data))
                    continue
            except isobmff.Malformed:
                pass  # unusual layouts (meta after the pixels): let the decoder judge
        reader = _PrefixReader(data)
        try:
            with warnings.catch_warnings():
                # Header oddities (corrupt EXIF) are not our verdict; decoding decides later.
                warnings.simplefilter("ignore")
                image = factory(reader, "")
        except Image.DecompressionBombError as exc:  # WebP checks during its open
            raise InvalidImage(f"the image has too many pixels: {exc}") from exc
        except Exception:  # plugins raise many types on short or broken input
            if reader.short and not complete:
                need = max(need, reader.wanted or 2 * len(data), len(data) + 1)
            truncated = truncated or reader.short
            continue
        if reader.short and not complete:
            # Parsed from a partial header: the values may be guesses, wait for more.
            need = max(need, reader.wanted or 2 * len(data), len(data) + 1)
            continue
        fmt_name = _FORMAT_ALIASES.get(image.format or fmt, image.format or fmt)
        width, height = image.size
        if fmt_name == "PNG":
            frames = int(getattr(image, "n_frames", 1))  # from acTL, read before IDAT
            return ImageInfo(fmt_name, width, height, image.mode, frames > 1, frames)
        return ImageInfo(fmt_name, width, height, image.mode)
    if need:
        return need
    if truncated:
        raise InvalidImage(
            f"the file ends inside the image header after {len(data):,} bytes: it is "
            "truncated, send the complete file"
        )
    if claimed:
        raise InvalidImage("the image header is corrupt: the file is damaged, send a valid image")
    raise InvalidImage(_unsupported_message(data))


# Real JPEGs have a few dozen segments before the frame header; Pillow parses each in Python,
# so a file of millions of tiny segments would cost far more than its size suggests.
MAX_JPEG_SEGMENTS = 256
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class _JpegScan:
    """Walks a JPEG's segment chain as bytes arrive (each byte looked at once), so the header
    parser runs once the frame header (SOF) is there, not on every chunk before it."""

    def __init__(self) -> None:
        self.pos = 2
        self.segments = 0
        self.done = False

    def ready(self, buf: bytearray) -> bool:
        """True when parsing is worth trying (not a JPEG, or its SOF has arrived)."""
        if self.done or buf[:2] != b"\xff\xd8":
            return True
        while self.pos + 4 <= len(buf):
            if buf[self.pos] != 0xFF:
                self.done = True  # not a marker: let the parser judge the damage
                return True
            marker = buf[self.pos + 1]
            if marker == 0xFF:  # fill byte
                self.pos += 1
                continue
            if marker in _JPEG_SOF or marker in (0xD9, 0xDA):  # frame, end, or scan
                self.done = True
                return True
            self.segments += 1
            if self.segments > MAX_JPEG_SEGMENTS:
                raise InvalidImage(
                    f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments before its frame "
                    "header: not an image a camera or editor writes"
                )
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
                self.pos += 2
                continue
            self.pos += 2 + int.from_bytes(buf[self.pos + 2 : self.pos + 4], "big")
        return False


def probe(chunks: Iterable[bytes]) -> tuple[ImageInfo, int]:
    """Format, size and mode of the image whose bytes ``chunks`` yields, and bytes consumed.

    Stops pulling chunks as soon as the header is parsed (usually within the first few KB:
    for a JPEG, everything before the pixel data). No pixels are decoded or allocated, so a
    decompression bomb is reported with its size; ``inspect_image`` is what rejects it.
    The caller caps the stream and closes its source. Raises InvalidImage when the stream
    ends before the header is complete, or it is not an image in an allowed format.
    """
    buf = bytearray()
    need = 16
    cpu = 0.0
    jpeg = _JpegScan()
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        if len(buf) < need or not jpeg.ready(buf):
            continue
        started = time.process_time()
        result = _identify(bytes(buf), complete=False)
        cpu += time.process_time() - started
        if isinstance(result, ImageInfo):
            return result, len(buf)
        if cpu > PROBE_CPU_SECONDS:
            raise InvalidImage(
                f"the image header is still incomplete after {len(buf):,} bytes and "
                f"{PROBE_CPU_SECONDS:g} s of parsing: the file's structure is too costly"
            )
        # Each attempt re-parses the prefix from its start, so attempts are spaced
        # geometrically (at least twice the bytes of the last one): the total parsing work
        # stays within a few times one parse of the final prefix, whatever the structure.
        need = max(result, 2 * len(buf))
    if not buf:
        raise InvalidImage("the file is empty: send an image file")
    # The stream ended: what we have is the whole file (or all the caller allows).
    result = _identify(bytes(buf), complete=True)
    assert isinstance(result, ImageInfo)  # complete=True returns info or raises
    return result, len(buf)
