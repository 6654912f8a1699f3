"""All Pillow work of the service: pure functions on bytes and images, no AWS.

- ``probe``: format, size and mode from the header of a stream, reading as little as possible
  (analyze by URL must not download a 20 MB photo to report its size).
- ``inspect_image``: validate (bytes limit, format allowlist, pixel limit, decodes cleanly)
  and describe an upload: hashes, camera EXIF, orientation, date taken, pHash.
- ``crop_image``: crop in the coordinates a viewer shows (after EXIF orientation), keeping
  the source format.
- ``ascii_art``: the image as text.

Decompression bombs: the pixel limit is checked from the header before anything is decoded,
and Pillow's DecompressionBombWarning is an error inside this module only. The process-wide
``Image.MAX_IMAGE_PIXELS`` is never changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from imgsvc import formats, isobmff
from imgsvc.errors import BadRequest, InvalidImage, PayloadTooLarge

ALLOWED_FORMATS = frozenset(formats.NAMES)
# Image.open wants a list or tuple, not a set; the order is irrelevant (the signatures differ).
_OPEN_ORDER = formats.NAMES
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_FORMATS))

# Pillow's JPEG opener returns an MpoImageFile for multi-picture JPEGs (some phones and 3D
# cameras write them). They are JPEG files whose first picture is what every viewer shows.
_FORMAT_ALIASES = {"MPO": "JPEG"}

_TAG_MAKE = 271
_TAG_MODEL = 272
_TAG_ORIENTATION = 274
_TAG_DATETIME_ORIGINAL = 36867
_TAG_PIXEL_X = 40962  # Exif IFD PixelXDimension: must follow the crop
_TAG_PIXEL_Y = 40963
# Descriptive TIFF tags carried over to a cropped TIFF (the structural ones are rewritten).
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_TIFF_COMPRESSIONS = frozenset(
    {"raw", "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate"}
)

# Formats whose files may hold an animation (AVIF: image sequences). Everything the service
# computes (hashes, crop, ASCII, renditions) uses the first frame, the one a still viewer shows.
_ANIMATABLE = frozenset({"GIF", "WEBP", "PNG", "AVIF"})
# Frames times pixels an animation may hold: what a browser must decode to play it.
MAX_FRAME_PIXELS_FACTOR = 10  # times the still-image pixel limit

# CPU the header probe may spend parsing (its cost is linear in the bytes read; this bounds
# what a huge capped prefix could still cost).
PROBE_CPU_SECONDS = 2.0
MAX_TEXT_CHARS = 64  # make/model: end up in DynamoDB keys and stats, so keep them short

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})

# Errors Pillow raises on bad input while parsing or decoding (UnidentifiedImageError and
# DecompressionBombError are handled before these).
# RuntimeError: libavif's and libheif's bindings raise it for pictures that fail to decode.
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
    RuntimeError,
)  # fmt: skip


# --------------------------------------------------------------------------- header probing


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


def _ensure_plugins() -> None:
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
    _ensure_plugins()
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
    _ensure_plugins()
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


# --------------------------------------------------------------------------- decoding


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pixels > max_pixels:
        limit = max_pixels
    elif pillow_limit is not None and pixels > pillow_limit:
        # Above Pillow's bomb warning (treated as an error) although under our own setting.
        limit = int(pillow_limit)
    else:
        return
    raise InvalidImage(
        f"the image is {width}x{height} ({pixels:,} pixels), more than the limit of "
        f"{limit:,} pixels: resize it and upload it again",
        details={"width": width, "height": height, "pixels": pixels, "max_pixels": limit},
    )


def _decode(data: bytes, *, max_pixels: int) -> Image.Image:
    """Validate and decode ``data`` once. Every client-caused failure is an InvalidImage."""
    if not data:
        raise InvalidImage("the file is empty: upload an image file")
    header = _identify(data, complete=True)
    assert isinstance(header, ImageInfo)
    _check_pixels(header.width, header.height, max_pixels)  # before any pixel is decoded
    with warnings.catch_warnings():
        # Local only: the warning means "this many pixels may be a bomb"; we refuse.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_OPEN_ORDER)
            _check_pixels(*image.size, max_pixels)  # the size decoding will really use
            image.load()
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise InvalidImage(
                f"the image is {header.width}x{header.height}, too many pixels to decode "
                "safely: resize it and upload it again",
                details={"reason": str(exc)},
            ) from exc
        except UnidentifiedImageError as exc:
            raise InvalidImage(_unsupported_message(data)) from exc
        except _DECODE_ERRORS as exc:
            raise InvalidImage(
                "the file is truncated or corrupt: upload the complete file",
                details={"reason": str(exc)},
            ) from exc
    return image


def _format_of(image: Image.Image) -> str:
    fmt = image.format or ""
    return _FORMAT_ALIASES.get(fmt, fmt)


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class ImageMetadata:
    """What the service records about an image. Width/height/mode are as stored; the
    display size is after EXIF orientation (what a viewer shows)."""

    format: str
    width: int
    height: int
    mode: str
    bytes: int
    sha256: str
    sha1: str
    make: str | None
    model: str | None
    camera: str | None
    orientation: int | None
    taken_at: str | None
    display_width: int
    display_height: int
    phash: str
    animated: bool = False
    frames: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean_text(value: Any) -> str | None:
    """An EXIF ASCII value as tidy, valid UTF-8: no NULs, controls or padding, capped."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    elif isinstance(value, str):
        text = value
        # Pillow decodes EXIF ASCII as Latin-1; cameras that write UTF-8 get it back here.
        with contextlib.suppress(UnicodeError):  # not UTF-8 after all: keep Latin-1
            text = text.encode("latin-1").decode("utf-8")
    else:
        return None  # numbers or tuples where text belongs: not a usable name
    text = text.strip("\x00 \t\r\n").split("\x00", 1)[0]  # C string: ends at the first NUL
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())[:MAX_TEXT_CHARS].rstrip()
    return text or None


def _exif_datetime(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.strip("\x00 ")[:19]
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    return None  # absent, blank ("    :  :     ") or impossible ("0000:00:00 00:00:00")


def _orientation_of(exif: Any) -> int | None:
    value = exif.get(_TAG_ORIENTATION) if exif is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def _read_exif(image: Image.Image) -> tuple[Image.Exif | None, dict[int, Any]]:
    """IFD0 and the Exif sub-IFD; corrupt EXIF is treated as none (the pixels are fine)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = image.getexif()
            sub = dict(exif.get_ifd(ExifTags.IFD.Exif))
    except Exception:  # Pillow raises assorted errors on malformed EXIF
        return None, {}
    return exif, sub


def _frame_count(image: Image.Image, max_frame_pixels: int) -> int:
    """Frames of an animation (1 for a still image), refused over ``max_frame_pixels``.

    PNG (acTL), WebP and AVIF state the count in their headers; for GIF Pillow walks the
    frame headers without decoding them, work bounded by the file size cap.
    """
    if _format_of(image) not in _ANIMATABLE or not getattr(image, "is_animated", False):
        return 1
    frames = int(image.n_frames)
    image.seek(0)
    width, height = image.size
    if frames * width * height > max_frame_pixels:
        raise InvalidImage(
            f"the animation has {frames:,} frames of {width}x{height} "
            f"({frames * width * height:,} pixels in all), more than the limit of "
            f"{max_frame_pixels:,}: shorten it or make it smaller",
            details={"frames": frames, "width": width, "height": height},
        )
    return frames


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """The validated, decoded image (as stored), with the same checks as ``inspect_image``."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the file is {len(data):,} bytes, more than the limit of {max_bytes:,} bytes: "
            "upload a smaller file",
            details={"bytes": len(data), "max_bytes": max_bytes},
        )
    return _decode(data, max_pixels=max_pixels)


def inspect_image(
    data: bytes, *, max_pixels: int, max_bytes: int
) -> tuple[ImageMetadata, Image.Image]:
    """Validate an upload and describe it.

    Returns the metadata and the decoded image (loaded, as stored: no EXIF rotation applied,
    its EXIF kept) so callers that go on to crop or draw do not decode twice.
    Raises PayloadTooLarge over ``max_bytes``; InvalidImage when empty, not an image, not an
    allowed format, over ``max_pixels`` (checked from the header, before decoding), or
    truncated/corrupt.
    """
    image = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    exif, sub = _read_exif(image)

    def tag(number: int) -> Any:
        # Make/Model belong in IFD0; some writers put them in the Exif IFD instead.
        if exif is not None and number in exif:
            return exif[number]
        return sub.get(number)

    make = _clean_text(tag(_TAG_MAKE))
    model = _clean_text(tag(_TAG_MODEL))
    camera = f"{make} - {model}" if make and model else (make or model)
    orientation = _orientation_of(exif)
    taken_at = _exif_datetime(sub.get(_TAG_DATETIME_ORIGINAL, tag(_TAG_DATETIME_ORIGINAL)))
    width, height = image.size
    display = (height, width) if orientation in _SWAPS_AXES else (width, height)

    frames = _frame_count(image, max_pixels * MAX_FRAME_PIXELS_FACTOR)

    from imgsvc.phash import display_phash_hex  # numpy-heavy; only the imaging layer has it

    metadata = ImageMetadata(
        format=_format_of(image),
        width=width,
        height=height,
        mode=image.mode,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        make=make,
        model=model,
        camera=camera,
        orientation=orientation,
        taken_at=taken_at,
        display_width=display[0],
        display_height=display[1],
        # Of the picture as displayed (EXIF orientation applied): a sideways copy with the
        # matching Orientation tag is the same picture, distance 0.
        phash=display_phash_hex(image, orientation),
        animated=frames > 1,
        frames=frames,
    )
    return metadata, image


# --------------------------------------------------------------------------- crop


def _parse_box(box: Any) -> tuple[int, int, int, int]:
    if (
        not isinstance(box, (tuple, list))
        or len(box) != 4
        or any(not isinstance(v, int) or isinstance(v, bool) for v in box)
    ):
        raise BadRequest(
            "box must be four integers [left, top, right, bottom] in pixels of the image as "
            f"displayed, got {box!r}"
        )
    left, top, right, bottom = box
    return left, top, right, bottom


def _webp_is_lossless(data: bytes) -> bool:
    """Whether the (first frame's) bitstream is VP8L, walking the RIFF chunks."""
    pos, end = 12, len(data)
    while pos + 8 <= end:
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        if fourcc == b"ANMF":  # an animation frame: 16 bytes of frame header, then chunks
            pos += 8 + 16
            continue
        pos += 8 + size + (size & 1)
    return False


def _crop_exif(source: Image.Image, size: tuple[int, int]) -> Image.Exif | None:
    """The source's EXIF for the crop: no Orientation (pixels are upright now), sizes fixed."""
    exif, _ = _read_exif(source)
    if exif is None or not len(exif):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.pop(_TAG_ORIENTATION, None)
            sub = exif.get_ifd(ExifTags.IFD.Exif)  # the live dict: written by tobytes()
            if _TAG_PIXEL_X in sub:
                sub[_TAG_PIXEL_X] = size[0]
            if _TAG_PIXEL_Y in sub:
                sub[_TAG_PIXEL_Y] = size[1]
            exif.tobytes()  # fail here, not inside the encoder
    except Exception:  # EXIF Pillow cannot re-serialise: drop it rather than the crop
        return None
    return exif


def _encode(image: Image.Image, fmt: str, *, source: Image.Image, data: bytes) -> bytes:
    info = source.info
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "AVIF") and info.get("icc_profile"):
        params["icc_profile"] = info["icc_profile"]
    if fmt in ("JPEG", "PNG", "TIFF", "BMP") and info.get("dpi"):
        params["dpi"] = info["dpi"]
    exif = _crop_exif(source, image.size) if fmt in ("JPEG", "PNG", "WEBP", "AVIF") else None
    if exif is not None:
        params["exif"] = exif
    if fmt == "JPEG":
        # 4:4:4 at 95: a crop of a crop does not visibly lose colour or detail.
        params.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        if _webp_is_lossless(data):
            params.update(lossless=True)
        else:
            params.update(quality=95, alpha_quality=100)
    elif fmt == "AVIF":
        params.update(quality=90, speed=6)  # speed 6: a 12 Mpx crop in a few seconds
    elif fmt == "TIFF":
        compression = info.get("compression", "raw")
        params["compression"] = (
            compression if compression in _TIFF_COMPRESSIONS else "tiff_adobe_deflate"
        )
        src_exif, _ = _read_exif(source)
        text_tags = {
            t: src_exif[t]
            for t in _TIFF_TEXT_TAGS
            if src_exif is not None and isinstance(src_exif.get(t), str)
        }
        if text_tags:
            params["tiffinfo"] = text_tags
    elif fmt == "GIF":
        # Pillow's default palette optimisation renumbers colours, and turns a greyscale GIF
        # (opened as "L") into a "P" one; keep the palette as it is.
        params["optimize"] = False
    # PNG/GIF: mode, palette and "transparency" travel in the image (crop copies info).
    out = io.BytesIO()
    try:
        image.save(out, format=fmt, **params)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidImage(
            f"this {fmt} image (mode {image.mode}) cannot be written back as {fmt}: "
            "crop is not available for it",
            details={"reason": str(exc)},
        ) from exc
    return out.getvalue()


def crop_image(
    data: bytes, box: tuple[int, int, int, int], *, max_pixels: int
) -> tuple[bytes, str]:
    """Crop ``box`` = (left, top, right, bottom), in pixels of the image as displayed.

    Returns the bytes and their format. The result is upright (EXIF orientation applied,
    Orientation tag removed) and in the source's format, except HEIF (no encoder is
    shipped), which becomes JPEG: JPEG at quality 95 4:4:4, PNG/GIF with their mode, palette
    and transparency, AVIF at quality 90, WebP lossless if the source was (else quality 95,
    alpha kept), TIFF and BMP losslessly. Camera EXIF (make, model, date) is kept for JPEG,
    PNG, WebP and AVIF, text tags for TIFF. Animations and multi-page TIFF: the first frame.
    Raises BadRequest naming the valid range for a bad box, InvalidImage for bad data.
    """
    left, top, right, bottom = _parse_box(box)
    image = _decode(data, max_pixels=max_pixels)
    fmt = _format_of(image)
    upright = ImageOps.exif_transpose(image)
    width, height = upright.size
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise BadRequest(
            f"box must satisfy 0 <= left < right <= {width} and 0 <= top < bottom <= {height} "
            f"(the image as displayed is {width}x{height}), got {tuple(box)}",
            details={"width": width, "height": height},
        )
    orientation = _orientation_of(_read_exif(image)[0])
    if (left, top, right, bottom) == (0, 0, width, height) and orientation not in _TRANSPOSE:
        # Re-encoding the whole, already upright image could give back the very same bytes
        # (same content id as the source): that is not a crop.
        raise BadRequest(
            f"the box covers the whole image ({width}x{height}), which is already upright: "
            "choose a smaller box",
            details={"width": width, "height": height},
        )
    cropped = upright.crop((left, top, right, bottom))
    if not formats.BY_NAME[fmt].writable:
        fmt = "JPEG"
        if cropped.mode not in ("RGB", "L"):
            cropped = _flatten(cropped)
    return _encode(cropped, fmt, source=image, data=data), fmt


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no alpha."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


# --------------------------------------------------------------------------- ASCII art

ASCII_VERSION = "1"  # bump when the output for the same image and width changes (caches)
ASCII_RAMP = "@%#*+=-:. "  # dark -> light
ASCII_MIN_WIDTH = 10
ASCII_MAX_WIDTH = 400
# Safety cap: a 1-pixel-wide, 10000-pixel-tall image would otherwise give millions of lines.
ASCII_MAX_ROWS = 1000
CHAR_ASPECT = 0.5  # a character cell is about twice as tall as it is wide

# Luminance 0..255 -> the ASCII code of its ramp character (applied by Image.point).
_RAMP_LUT = [ord(ASCII_RAMP[v * len(ASCII_RAMP) // 256]) for v in range(256)]


def _to_gray(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Downscale first (cheap), then flatten alpha onto white and take the luminance."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _wide_to_gray(image, size)
    if image.has_transparency_data:
        work = image if mode in ("RGBA", "LA") else image.convert("RGBA")
    elif mode in ("L", "RGB"):
        work = image
    else:
        work = image.convert("L")  # P, 1, CMYK, YCbCr, LAB, HSV: resize needs a plain mode
    # BOX averages every source pixel once; Pillow premultiplies alpha when resizing RGBA/LA.
    small = work.resize(size, Image.Resampling.BOX)
    if small.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", small.size, (255, 255, 255, 255))
        small = Image.alpha_composite(white, small.convert("RGBA"))
    return small.convert("L")


def _wide_to_gray(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """16-bit and float images: Pillow's convert("L") clips them, so scale with numpy."""
    import numpy as np  # only this path needs it

    small = image.convert("F").resize(size, Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
        values = values / 257.0  # 16-bit samples
    elif image.mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0  # floats in 0..1
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def ascii_art(image: Image.Image, width: int) -> str:
    """The image as ``width`` characters per line, one line per row, joined by "\\n".

    Respects EXIF orientation, flattens transparency onto white, and corrects for character
    cells being about twice as tall as wide: rows = round(h / w * width * 0.5), at least 1
    (at most ASCII_MAX_ROWS). Dark pixels map to "@", light ones to " ".
    """
    if (
        not isinstance(width, int)
        or isinstance(width, bool)
        or not ASCII_MIN_WIDTH <= width <= ASCII_MAX_WIDTH
    ):
        raise BadRequest(
            f"width must be an integer from {ASCII_MIN_WIDTH} to {ASCII_MAX_WIDTH}, got {width!r}"
        )
    image.load()
    exif, _ = _read_exif(image)
    orientation = _orientation_of(exif) or 1
    stored_w, stored_h = image.size
    swapped = orientation in _SWAPS_AXES
    shown_w, shown_h = (stored_h, stored_w) if swapped else (stored_w, stored_h)
    rows = min(ASCII_MAX_ROWS, max(1, round(shown_h / shown_w * width * CHAR_ASPECT)))
    # Resize in stored orientation and rotate the small result: far cheaper than rotating
    # the full image first, and the same picture.
    gray = _to_gray(image, (rows, width) if swapped else (width, rows))
    if orientation in _TRANSPOSE:
        gray = gray.transpose(_TRANSPOSE[orientation])
    codes = gray.point(_RAMP_LUT).tobytes()
    return "\n".join(codes[i : i + width].decode("ascii") for i in range(0, len(codes), width))
