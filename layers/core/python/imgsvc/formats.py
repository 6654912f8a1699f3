"""The image formats the service accepts: one table, everything else derived from it.

Pillow's format name, the content type a client declares and the service serves, and the file
extensions (the first is the one a download gets). No Pillow here: functions without the
imaging layer import this (uploads, status). Never SVG: it is script, not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # Pillow's format name, as image metadata reports it
    content_type: str
    extensions: tuple[str, ...]  # lower case, with the dot; the first is canonical


FORMATS = (
    Format("JPEG", "image/jpeg", (".jpg", ".jpeg")),
    Format("PNG", "image/png", (".png",)),
    Format("GIF", "image/gif", (".gif",)),
    Format("WEBP", "image/webp", (".webp",)),
    Format("TIFF", "image/tiff", (".tif", ".tiff")),
    Format("BMP", "image/bmp", (".bmp",)),
)
NAMES = tuple(f.name for f in FORMATS)  # also the order Pillow tries them in
CONTENT_TYPES = {f.content_type: f.name for f in FORMATS}  # content type -> format
CONTENT_TYPE_OF = {f.name: f.content_type for f in FORMATS}  # format -> content type
EXTENSIONS = {ext: f.content_type for f in FORMATS for ext in f.extensions}
DOWNLOAD_EXTENSION = {f.name: f.extensions[0].lstrip(".") for f in FORMATS}
