"""Crop a stored image into a new one (in the coordinates a viewer shows)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from imgsvc import formats, records
from imgsvc.catalog import parse_image_id, stored_bytes
from imgsvc.config import get_settings
from imgsvc.ingest import ingest_bytes, replay, request_key
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
        stored_bytes(source),
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
