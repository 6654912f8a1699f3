"""The image library: reading, listing and deleting recorded images."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from imgsvc import records, storage
from imgsvc.errors import BadRequest, NotFound
from imgsvc.limits import MAX_LOOKUP_IDS
from imgsvc.observability import logger
from imgsvc.schemas import IMAGE_ID_PATTERN, JsonBody, Sha256

# The contract's pattern, matched whole: `re.match` with `$` would also accept a trailing "\n".
IMAGE_ID_RE = re.compile(IMAGE_ID_PATTERN)
# One DELETE /images?confirm=true call deletes at most this many, to finish inside the
# function's timeout; the answer says whether more remain.
DELETE_ALL_BATCH = 200


def parse_image_id(value: str) -> str:
    """Image ids are sha256 hex digests; anything else is malformed (400, not 404)."""
    if not IMAGE_ID_RE.fullmatch(value or ""):
        raise BadRequest(
            f"malformed image id {value[:80]!r}: an image id is 64 lowercase hex characters"
        )
    return value


def linked(image: dict[str, Any]) -> dict[str, Any]:
    """An image as the API shows it: the record plus its thumbnail link (signed locally, so a
    page of 100 images needs no request per image)."""
    return {**image, "thumbnail_url": storage.thumbnail_url(image["image_id"])}


def get(image_id: str) -> dict[str, Any]:
    return linked(records.get_image(parse_image_id(image_id)))


def list_page(limit: int, cursor: str | None) -> dict[str, Any]:
    images, next_cursor = records.list_images(limit, cursor)
    return {"images": [linked(i) for i in images], "count": len(images), "next_cursor": next_cursor}


def link_upload_state(state: dict[str, Any]) -> dict[str, Any]:
    """An upload's state with the thumbnail link of each file that became an image."""
    files = {
        name: {**f, "thumbnail_url": storage.thumbnail_url(f["image_id"])}
        if f["status"] == "done" and f.get("image_id")
        else f
        for name, f in state["files"].items()
    }
    return {**state, "files": files}


def content_url(image_id: str) -> str:
    image = records.get_image(parse_image_id(image_id))
    return storage.download_url(image["image_id"], image["format"], image.get("name"))


def thumbnail_url(image_id: str) -> str:
    """The thumbnail's link, for an image that exists (404 otherwise)."""
    image = records.get_image(parse_image_id(image_id))
    return storage.thumbnail_url(image["image_id"])


def _delete_objects(image_id: str) -> None:
    storage.delete_object(storage.image_key(image_id))
    storage.delete_renditions(image_id)


def delete(image_id: str) -> dict[str, Any]:
    image_id = parse_image_id(image_id)
    records.delete_image(image_id, lambda: _delete_objects(image_id))
    return {"status": "deleted", "image_id": image_id}


def delete_all(*, confirmed: bool) -> dict[str, Any]:
    if not confirmed:
        raise BadRequest("deleting every image needs ?confirm=true")
    images, more = records.list_images(DELETE_ALL_BATCH, None)
    deleted = 0
    for image in images:
        try:
            delete(image["image_id"])
            deleted += 1
        except Exception:  # one failure must not hide how many were deleted
            logger.exception("delete failed", extra={"image_id": image["image_id"]})
    return {"status": "deleted", "deleted": deleted, "more": more is not None}


class LookupRequest(JsonBody):
    """POST /images/lookup: which of these sha256 digests the library holds."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"sha256": ["0" * 64]}]})
    sha256: Annotated[list[Sha256], Field(min_length=1, max_length=MAX_LOOKUP_IDS)]


def lookup(request: LookupRequest) -> dict[str, Any]:
    """Split the ids into those that exist and those that do not, in one BatchGetItem call."""
    wanted = list(dict.fromkeys(request.sha256))  # repeated ids: BatchGetItem refuses them
    found = records.get_images(wanted)
    return {
        "found": [i for i in wanted if i in found],
        "missing": [i for i in wanted if i not in found],
    }


def stored_bytes(image: dict[str, Any]) -> bytes:
    """The original bytes of a recorded image (404 if storage lost them)."""
    data = storage.read_image(image["image_id"])
    if data is None:
        raise NotFound(f"the content of image {image['image_id']} is missing from storage")
    return data
