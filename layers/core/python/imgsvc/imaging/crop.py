"""Crop in the coordinates a viewer shows (after EXIF orientation), in the source's format."""

from __future__ import annotations

import io
import warnings
from typing import Any

from PIL import ExifTags, Image, ImageOps

from imgsvc import formats
from imgsvc.errors import BadRequest, InvalidImage
from imgsvc.imaging.decode import (
    _TAG_ORIENTATION,
    TRANSPOSE,
    _decode,
    format_of,
    orientation_of,
    read_exif,
)

_TAG_PIXEL_X = 40962  # Exif IFD PixelXDimension: must follow the crop
_TAG_PIXEL_Y = 40963
# Descriptive TIFF tags carried over to a cropped TIFF (the structural ones are rewritten).
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_TIFF_COMPRESSIONS = frozenset(
    {"raw", "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate"}
)


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
    exif, _ = read_exif(source)
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
        src_exif, _ = read_exif(source)
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
    fmt = format_of(image)
    upright = ImageOps.exif_transpose(image)
    width, height = upright.size
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise BadRequest(
            f"box must satisfy 0 <= left < right <= {width} and 0 <= top < bottom <= {height} "
            f"(the image as displayed is {width}x{height}), got {tuple(box)}",
            details={"width": width, "height": height},
        )
    orientation = orientation_of(read_exif(image)[0])
    if (left, top, right, bottom) == (0, 0, width, height) and orientation not in TRANSPOSE:
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
