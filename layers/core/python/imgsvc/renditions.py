"""Thumbnails and renditions: the picture as displayed, resized and re-encoded for browsers.

Pillow work, so only functions with the ImagingLayer use this module (ingest writes the
thumbnail; the RenditionFunction renders the rest). Pillow is imported on first render: a
rendition that exists already is only signed, and that cold start should not pay for Pillow.
Both start from a decoded image: ingest hands over the one ``imaging.inspect_image`` decoded.

Renditions are the first frame, EXIF orientation applied, without EXIF (no GPS position in a
public link), with the source's ICC profile. Widths come from a fixed ladder so the number of
renditions one image can cause stays bounded.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgsvc import records, storage
from imgsvc.catalog import parse_image_id
from imgsvc.config import get_settings
from imgsvc.errors import NotFound
from imgsvc.observability import logger

if TYPE_CHECKING:
    from PIL import Image

THUMBNAIL_SIZE = 320  # the long side, at most
LADDER = (160, 320, 480, 640, 960, 1280, 1920, 2560, 3840)
MAX_WIDTH = LADDER[-1]
# Resize by a whole factor first (Image.reduce, a box average) to at most this many times
# the target, then resample the rest: most of the speed of reduce, the look of the filter.
REDUCING_GAP = 2.0


@dataclass(frozen=True)
class Encoding:
    pillow: str
    content_type: str
    ext: str
    params: dict[str, Any]


# Settings measured on a 12 Mpx photo (bench: "Renditions"): the slowest, a 3840-wide AVIF
# or PNG, must stay far inside API Gateway's 29 s.
ENCODINGS: dict[str, Encoding] = {
    "webp": Encoding("WEBP", "image/webp", "webp", {"quality": 80, "method": 4}),
    "jpeg": Encoding("JPEG", "image/jpeg", "jpg", {"quality": 85, "optimize": True}),
    "png": Encoding("PNG", "image/png", "png", {"compress_level": 3}),
    "avif": Encoding("AVIF", "image/avif", "avif", {"quality": 60, "speed": 8}),
}
FORMATS = tuple(ENCODINGS)
# Thumbnails are made at every ingest (goal: under 15% of it): BICUBIC after the reduce and
# WebP method 2 halve the cost of LANCZOS and method 4 (a 12 Mpx JPEG: ~16 ms instead of
# ~30 ms) for a file ~3% larger.
THUMBNAIL = Encoding("WEBP", "image/webp", "webp", {"quality": 80, "method": 2})
THUMBNAIL_RESAMPLE = "BICUBIC"  # a PIL.Image.Resampling name


def ladder_width(requested: int, display_width: int) -> int:
    """The ladder's first width >= ``requested``, but never wider than the picture."""
    rung = next((w for w in LADDER if w >= requested), MAX_WIDTH)
    return max(1, min(rung, display_width))


def _first_frame(image: Image.Image) -> Image.Image:
    if image.tell() != 0:
        image.seek(0)
    return image


def _displayed(image: Image.Image, size: tuple[int, int], resample: str = "LANCZOS") -> Image.Image:
    """The picture as displayed at ``size`` (width, height after orientation).

    Resized in stored orientation and turned afterwards: the same picture as
    ImageOps.exif_transpose then resize, without transposing the full-size image.
    """
    from PIL import Image

    from imgsvc.imaging.decode import SWAPS_AXES, TRANSPOSE, orientation_of, read_exif, wide_to_gray

    image = _first_frame(image)
    orientation = orientation_of(read_exif(image)[0]) or 1
    stored = (size[1], size[0]) if orientation in SWAPS_AXES else size
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        work = wide_to_gray(image, stored)  # Pillow would clip 16-bit samples to white
    else:
        if mode not in ("RGB", "RGBA", "L", "LA"):
            # P, 1, CMYK, YCbCr, ...: resize needs a plain mode (P would resize NEAREST).
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        work = (
            image
            if image.size == stored
            else image.resize(stored, Image.Resampling[resample], reducing_gap=REDUCING_GAP)
        )
    if orientation in TRANSPOSE:
        work = work.transpose(TRANSPOSE[orientation])
    return work


def _on_white(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: flatten onto white (what a page behind the picture usually is)."""
    from PIL import Image

    if image.mode not in ("RGBA", "LA"):
        return image
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")


def encode(image: Image.Image, encoding: Encoding, icc_profile: bytes | None) -> bytes:
    if encoding.pillow == "JPEG":
        image = _on_white(image)
    params = dict(encoding.params)
    if icc_profile:
        params["icc_profile"] = icc_profile
    out = io.BytesIO()
    image.save(out, format=encoding.pillow, **params)
    return out.getvalue()


def _display_size(image: Image.Image) -> tuple[int, int]:
    from imgsvc.imaging.decode import SWAPS_AXES, orientation_of, read_exif

    orientation = orientation_of(read_exif(image)[0])
    width, height = image.size
    return (height, width) if orientation in SWAPS_AXES else (width, height)


def thumbnail(image: Image.Image) -> bytes:
    """WebP of the displayed picture, at most THUMBNAIL_SIZE on the long side (never larger)."""
    width, height = _display_size(image)
    scale = min(1.0, THUMBNAIL_SIZE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shown = _displayed(image, size, THUMBNAIL_RESAMPLE)
    return encode(shown, THUMBNAIL, image.info.get("icc_profile"))


def render(image: Image.Image, width: int, encoding: Encoding) -> bytes:
    """The displayed picture ``width`` pixels wide (height by its aspect) in ``encoding``."""
    shown_w, shown_h = _display_size(image)
    size = (width, max(1, round(shown_h * width / shown_w)))
    return encode(_displayed(image, size), encoding, image.info.get("icc_profile"))


def rendition_url(image_id: str, width: int, fmt: str) -> str:
    """A link to the stored rendition, rendering and storing it on the first request.

    Later requests cost a record read, a HEAD and a signature: nothing is decoded.
    """
    image = records.get_image(parse_image_id(image_id))
    encoding = ENCODINGS[fmt]
    width = ladder_width(width, image["display_width"])
    key = storage.rendition_key(image["image_id"], width, encoding.ext)
    if not storage.object_exists(key):
        _render_and_store(image["image_id"], width, encoding, key)
    return storage.rendition_url(key)


def _render_and_store(image_id: str, width: int, encoding: Encoding, key: str) -> None:
    _store_rendered(
        image_id, key, lambda image: render(image, width, encoding), encoding.content_type
    )


def ensure_thumbnail(image_id: str) -> bool:
    """Write the thumbnail of a stored image that has none (images ingested before thumbnails
    existed: for the backfill). True when it wrote one; idempotent."""
    image_id = records.get_image(parse_image_id(image_id))["image_id"]
    key = storage.thumbnail_key(image_id)
    if storage.object_exists(key):
        return False
    _store_rendered(image_id, key, thumbnail, THUMBNAIL.content_type)
    return True


def _store_rendered(
    image_id: str, key: str, make: Callable[[Image.Image], bytes], content_type: str
) -> None:
    data = storage.read_image(image_id)
    if data is None:
        raise NotFound(f"the content of image {image_id} is missing from storage")
    from imgsvc.imaging import decode_image

    settings = get_settings()
    decoded = decode_image(
        data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes
    )
    storage.store_rendition(key, make(decoded), content_type)
    # A delete that ran while we rendered listed the renditions before this one existed:
    # look again, and take back what we wrote if the image is gone.
    try:
        records.get_image(image_id)
    except NotFound:
        storage.delete_object(key)
        logger.info("image deleted while rendering", extra={"image_id": image_id, "key": key})
        raise
