"""The image formats the service accepts: one table, everything else derived from it.

Pillow's format name, the content types a client may declare (the first is the one the service
serves), and the file extensions (the first is the one a download gets). No Pillow here:
functions without the imaging layer import this (uploads, status). Never SVG: it is script,
not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # Pillow's format name, as image metadata reports it
    content_types: tuple[str, ...]  # the first is canonical
    extensions: tuple[str, ...]  # lower case, with the dot; the first is canonical
    writable: bool = True  # crop can write it back (no HEIF encoder is shipped)

    @property
    def content_type(self) -> str:
        return self.content_types[0]


FORMATS = (
    Format("JPEG", ("image/jpeg",), (".jpg", ".jpeg")),
    Format("PNG", ("image/png",), (".png",)),
    Format("GIF", ("image/gif",), (".gif",)),
    Format("WEBP", ("image/webp",), (".webp",)),
    Format("TIFF", ("image/tiff",), (".tif", ".tiff")),
    Format("BMP", ("image/bmp",), (".bmp",)),
    # HEIC is HEIF with HEVC pictures; libheif (pi-heif) reports both as HEIF.
    Format("HEIF", ("image/heic", "image/heif"), (".heic", ".heif"), writable=False),
    Format("AVIF", ("image/avif",), (".avif",)),
)
NAMES = tuple(f.name for f in FORMATS)  # also the order Pillow tries them in
BY_NAME = {f.name: f for f in FORMATS}
CONTENT_TYPES = {t: f.name for f in FORMATS for t in f.content_types}  # type -> format
CONTENT_TYPE_OF = {f.name: f.content_type for f in FORMATS}  # format -> served content type
# .heif declares image/heif, .heic image/heic: the type named like the extension, if any.
EXTENSIONS = {
    ext: next((t for t in f.content_types if t == f"image/{ext[1:]}"), f.content_type)
    for f in FORMATS
    for ext in f.extensions
}
DOWNLOAD_EXTENSION = {f.name: f.extensions[0].lstrip(".") for f in FORMATS}
# What browsers and HTTP libraries declare when they do not know a file's type: the file's
# extension decides instead (Chrome sends "" for .heic, some clients octet-stream).
OCTET_STREAM = "application/octet-stream"
GENERIC_CONTENT_TYPES = frozenset({"", OCTET_STREAM, "binary/octet-stream"})


def content_type_for(filename: str, declared: str | None) -> str:
    """The content type to sign for a file: the declared image type; for a missing or generic
    one, the type its extension names, else ``application/octet-stream`` (the bytes decide at
    ingest, which rejects what is not an image, with the reason)."""
    declared = (declared or "").strip().lower()
    if declared in CONTENT_TYPES:
        return declared
    dot = filename.rfind(".")
    by_name = EXTENSIONS.get(filename[dot:].lower()) if dot > 0 else None
    return by_name or OCTET_STREAM
