"""Operations on stored images that need their pixels: crop and ASCII art."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from imgsvc import formats, records, storage
from imgsvc.cache import LRUCache
from imgsvc.config import get_settings
from imgsvc.errors import NotFound
from imgsvc.ingest import ingest_bytes, replay, request_key
from imgsvc.library import parse_image_id
from imgsvc.schemas import JsonBody, JsonInt

Pixel = JsonInt


class CropRequest(JsonBody):
    """A box in pixels of the image as displayed (after EXIF orientation)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"left": 40, "top": 30, "right": 340, "bottom": 260}]},
    )
    left: Pixel
    top: Pixel
    right: Pixel
    bottom: Pixel


def _content(image: dict[str, Any]) -> bytes:
    data = storage.read_image(image["image_id"])
    if data is None:
        raise NotFound(f"the content of image {image['image_id']} is missing from storage")
    return data


def crop(
    image_id: str, box: CropRequest, idempotency_key: str | None = None, scope: str = ""
) -> tuple[dict[str, Any], bool]:
    """Crop a stored image into a new image that records ``derived_from``: same format,
    except HEIF, which becomes JPEG (its record's ``format`` says so).

    With ``idempotency_key``, a retry answers what the first attempt recorded.
    """
    from imgsvc.imaging import crop_image

    image_id = parse_image_id(image_id)
    key = request_key(idempotency_key, scope, image_id, box.model_dump_json())
    done = replay(key)
    if done is not None:
        return done
    source = records.get_image(image_id)
    cropped, fmt = crop_image(
        _content(source),
        (box.left, box.top, box.right, box.bottom),
        max_pixels=get_settings().max_pixels,
    )
    ext = formats.DOWNLOAD_EXTENSION[fmt]  # HEIF crops come back as JPEG
    base = source["name"] or source["image_id"][:12]
    return ingest_bytes(
        cropped,
        filename=f"crop-{source['image_id'][:12]}.{ext}",
        name=f"{base} (crop {box.left},{box.top},{box.right},{box.bottom})"[:200],
        desc=source.get("desc"),
        derived_from=source["image_id"],
        key=key,
    )


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
        _content(image), max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes
    )
    art = ascii_art(decoded, width)
    cache.put(key, art, len(art))
    return art, False
