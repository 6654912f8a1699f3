"""ASCII art of a stored image, cached in the warm container."""

from __future__ import annotations

from imgsvc import records
from imgsvc.cache import LRUCache
from imgsvc.catalog import parse_image_id, stored_bytes
from imgsvc.config import get_settings


def ascii_text(image_id: str, width: int, cache: LRUCache[str]) -> tuple[str, bool]:
    """ASCII art of a stored image and whether the warm-container cache answered.

    The cache key carries the algorithm version, so a new algorithm never serves old art.
    """
    from imgsvc.imaging import ASCII_VERSION, ascii_art, decode_image

    # The record first (one read): a deleted image's art must not outlive it in the cache.
    image = records.get_image(parse_image_id(image_id))
    key = f"{image['image_id']}:{width}:{ASCII_VERSION}"
    art = cache.get(key)
    if art is not None:
        return art, True
    settings = get_settings()
    decoded = decode_image(
        stored_bytes(image), max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes
    )
    art = ascii_art(decoded, width)
    cache.put(key, art, len(art))
    return art, False
