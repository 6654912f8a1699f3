"""Decoding: the one validated decode of an upload, and the EXIF orientation helpers.

Decompression bombs: the pixel limit is checked from the header before anything is decoded,
and Pillow's DecompressionBombWarning is an error inside this module only. The process-wide
``Image.MAX_IMAGE_PIXELS`` is never changed.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from imgsvc.errors import InvalidImage, PayloadTooLarge
from imgsvc.imaging.header import (
    _FORMAT_ALIASES,
    _OPEN_ORDER,
    ImageInfo,
    _identify,
    _unsupported_message,
)

_TAG_ORIENTATION = 274

TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_AXES = frozenset({5, 6, 7, 8})

# Errors Pillow raises on bad input while parsing or decoding (UnidentifiedImageError and
# DecompressionBombError are handled before these).
# RuntimeError: libavif's and libheif's bindings raise it for pictures that fail to decode.
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
    RuntimeError,
)  # fmt: skip


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


def format_of(image: Image.Image) -> str:
    fmt = image.format or ""
    return _FORMAT_ALIASES.get(fmt, fmt)


def orientation_of(exif: Any) -> int | None:
    value = exif.get(_TAG_ORIENTATION) if exif is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def read_exif(image: Image.Image) -> tuple[Image.Exif | None, dict[int, Any]]:
    """IFD0 and the Exif sub-IFD; corrupt EXIF is treated as none (the pixels are fine)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = image.getexif()
            sub = dict(exif.get_ifd(ExifTags.IFD.Exif))
    except Exception:  # Pillow raises assorted errors on malformed EXIF
        return None, {}
    return exif, sub


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """The validated, decoded image (as stored), with the same checks as ``inspect_image``."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the file is {len(data):,} bytes, more than the limit of {max_bytes:,} bytes: "
            "upload a smaller file",
            details={"bytes": len(data), "max_bytes": max_bytes},
        )
    return _decode(data, max_pixels=max_pixels)


def wide_to_gray(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """16-bit and float images: Pillow's convert("L") clips them, so scale with numpy."""
    import numpy as np  # only this path needs it

    small = image.convert("F").resize(size, Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
        values = values / 257.0  # 16-bit samples
    elif image.mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0  # floats in 0..1
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
