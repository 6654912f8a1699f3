"""All Pillow work of the service: pure functions on bytes and images, no AWS.

- ``header.probe``: format, size and mode from the header of a stream, reading as little as
  possible (analyze by URL must not download a 20 MB photo to report its size).
- ``metadata.inspect_image``: validate (bytes limit, format allowlist, pixel limit, decodes
  cleanly) and describe an upload: hashes, camera EXIF, orientation, date taken, frames, pHash.
- ``decode``: the validated decode, and the EXIF orientation helpers the others share.
- ``crop.crop_image``: crop in the coordinates a viewer shows (after EXIF orientation).
- ``ascii.ascii_art``: the image as text.

The names below are the package's interface; patch a function in the module that uses it.
"""

from __future__ import annotations

from imgsvc.imaging.ascii import (
    ASCII_MAX_ROWS,
    ASCII_MAX_WIDTH,
    ASCII_MIN_WIDTH,
    ASCII_RAMP,
    ASCII_VERSION,
    ascii_art,
)
from imgsvc.imaging.crop import crop_image
from imgsvc.imaging.decode import decode_image
from imgsvc.imaging.header import (
    ALLOWED_FORMATS,
    MAX_JPEG_SEGMENTS,
    PROBE_CPU_SECONDS,
    ImageInfo,
    ensure_plugins,
    probe,
)
from imgsvc.imaging.metadata import MAX_FRAME_PIXELS_FACTOR, ImageMetadata, inspect_image

__all__ = [
    "ALLOWED_FORMATS",
    "ASCII_MAX_ROWS",
    "ASCII_MAX_WIDTH",
    "ASCII_MIN_WIDTH",
    "ASCII_RAMP",
    "ASCII_VERSION",
    "MAX_FRAME_PIXELS_FACTOR",
    "MAX_JPEG_SEGMENTS",
    "PROBE_CPU_SECONDS",
    "ImageInfo",
    "ImageMetadata",
    "ascii_art",
    "crop_image",
    "decode_image",
    "ensure_plugins",
    "inspect_image",
    "probe",
]
