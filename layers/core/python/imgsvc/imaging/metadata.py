"""What the service records about an image: hashes, camera EXIF, orientation, frames."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from PIL import Image

from imgsvc.errors import InvalidImage
from imgsvc.imaging.decode import SWAPS_AXES, decode_image, format_of, orientation_of, read_exif

_TAG_MAKE = 271
_TAG_MODEL = 272
_TAG_ORIENTATION = 274
_TAG_DATETIME_ORIGINAL = 36867
_TAG_PIXEL_X = 40962  # Exif IFD PixelXDimension: must follow the crop
_TAG_PIXEL_Y = 40963
# Formats whose files may hold an animation (AVIF: image sequences). Everything the service
# computes (hashes, crop, ASCII, renditions) uses the first frame, the one a still viewer shows.
_ANIMATABLE = frozenset({"GIF", "WEBP", "PNG", "AVIF"})
# Frames times pixels an animation may hold: what a browser must decode to play it.
MAX_FRAME_PIXELS_FACTOR = 10  # times the still-image pixel limit
MAX_TEXT_CHARS = 64  # make/model: end up in DynamoDB keys and stats, so keep them short


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


def _frame_count(image: Image.Image, max_frame_pixels: int) -> int:
    """Frames of an animation (1 for a still image), refused over ``max_frame_pixels``.

    PNG (acTL), WebP and AVIF state the count in their headers; for GIF Pillow walks the
    frame headers without decoding them, work bounded by the file size cap.
    """
    if format_of(image) not in _ANIMATABLE or not getattr(image, "is_animated", False):
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
    exif, sub = read_exif(image)

    def tag(number: int) -> Any:
        # Make/Model belong in IFD0; some writers put them in the Exif IFD instead.
        if exif is not None and number in exif:
            return exif[number]
        return sub.get(number)

    make = _clean_text(tag(_TAG_MAKE))
    model = _clean_text(tag(_TAG_MODEL))
    camera = f"{make} - {model}" if make and model else (make or model)
    orientation = orientation_of(exif)
    taken_at = _exif_datetime(sub.get(_TAG_DATETIME_ORIGINAL, tag(_TAG_DATETIME_ORIGINAL)))
    width, height = image.size
    display = (height, width) if orientation in SWAPS_AXES else (width, height)

    frames = _frame_count(image, max_pixels * MAX_FRAME_PIXELS_FACTOR)

    from imgsvc.phash import display_phash_hex  # numpy-heavy; only the imaging layer has it

    metadata = ImageMetadata(
        format=format_of(image),
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
