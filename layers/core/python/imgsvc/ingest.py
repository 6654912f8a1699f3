"""The one ingest path: validate and inspect the bytes, store them content-addressed, record.

Presigned uploads arrive through the S3 trigger (``ingest_upload_object``); direct uploads,
URL imports and crops hand over bytes (``ingest_bytes``). Both end in
``records.commit_ingest``, whose store step puts the image and its thumbnail, so a committed
image always has both.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from imgsvc import catalog, formats, migrations, records, storage
from imgsvc.config import get_settings
from imgsvc.errors import InvalidImage, PayloadTooLarge
from imgsvc.observability import logger
from imgsvc.records import IngestSource

# Upload ids of requests with an Idempotency-Key are uuid5s of the key in this namespace.
_KEY_NAMESPACE = uuid.UUID("6f1c2a0e-3b7d-5e6a-9c41-2d8f0b7a5e13")


@dataclass(frozen=True)
class RequestKey:
    """An API write request's Idempotency-Key, as the ingest records it.

    The upload id of the request's upload file record is derived from the key (and its
    scope: the route and the client), so a retry commits to the same record: the commit finds
    it and answers what the first attempt recorded, once, in the ingest's own transaction.
    ``fingerprint`` digests what the request asked for, so the key reused for another
    request is refused.
    """

    upload_id: str
    fingerprint: str


def request_key(key: str | None, scope: str, *request: str) -> RequestKey | None:
    """The RequestKey of ``key`` (None without one) for a request described by ``request``."""
    if key is None:
        return None
    digest = hashlib.sha256("\0".join((scope, *request)).encode("utf-8", "surrogatepass"))
    return RequestKey(str(uuid.uuid5(_KEY_NAMESPACE, f"{scope}\0{key}")), digest.hexdigest())


def replay(key: RequestKey | None) -> tuple[dict[str, Any], bool] | None:
    """What an earlier attempt of this keyed request recorded, before any work is redone."""
    if key is None:
        return None
    done = records.recorded_request(key.upload_id, key.fingerprint)
    return (catalog.linked(done[0]), done[1]) if done else None


def _inspect(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The metadata and the thumbnail, both from the one decode of the bytes."""
    # Pillow: only functions with the imaging layer
    from imgsvc.imaging import inspect_image
    from imgsvc.renditions import thumbnail

    settings = get_settings()
    meta, image = inspect_image(
        data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes
    )
    return meta.to_dict(), thumbnail(image)


def _with_thumbnail(
    image_id: str, thumb: bytes, put_image: Callable[[], None]
) -> Callable[[], None]:
    """The store step of the commit: the image, then its thumbnail (again on each retry, as
    a delete running meanwhile removes both)."""

    def store() -> None:
        put_image()
        storage.store_rendition(
            storage.thumbnail_key(image_id), thumb, storage.THUMBNAIL_CONTENT_TYPE
        )

    return store


def _type_note(declared: str | None, detected: str) -> str | None:
    """Browsers guess types from file names: the bytes decide, and the file state says so."""
    if declared not in formats.CONTENT_TYPES or formats.CONTENT_TYPES[declared] == detected:
        return None  # nothing declared (the bytes decided) or what it is
    served = formats.CONTENT_TYPE_OF[detected]
    return f"declared as {declared} but the file is {detected}: stored and served as {served}"


def ingest_bytes(
    data: bytes,
    *,
    filename: str,
    name: str | None = None,
    desc: str | None = None,
    source_url: str | None = None,
    derived_from: str | None = None,
    key: RequestKey | None = None,
) -> tuple[dict[str, Any], bool]:
    """Ingest bytes handed over by the API. Bad images raise (4xx) before anything is written.

    Returns (image, duplicate). With ``key`` (call ``replay`` first), a retry of the request
    answers what the first attempt recorded and counts nothing twice.
    """
    meta, thumb = _inspect(data)
    image_id = meta["sha256"]
    source = IngestSource(
        upload_id=key.upload_id if key else str(uuid.uuid4()),
        fingerprint=key.fingerprint if key else None,
        filename=filename,
        name=name,
        desc=desc,
        source_url=source_url,
        derived_from=derived_from,
        presigned=False,
    )
    store = _with_thumbnail(
        image_id, thumb, lambda: storage.store_image(image_id, data, meta["format"])
    )
    image, duplicate = records.commit_ingest(meta, source, store, migrations.ingest_marks())
    return catalog.linked(image), duplicate


def ingest_upload_object(key: str, size: int | None) -> dict[str, Any]:
    """Ingest one object created under the uploads prefix (key already URL-decoded).

    Bad objects are rejected (recorded, deleted) without raising: failing would only make
    Lambda retry. Unexpected errors raise, so Lambda retries and finally dead-letters.
    """
    parsed = storage.parse_upload_key(key)
    if parsed is None:
        if key.startswith(get_settings().upload_prefix):
            # Under the uploads prefix but no <upload_id>/<filename>: no session can own it.
            logger.warning("deleting a stray object under the uploads prefix", extra={"key": key})
            storage.delete_object(key)
            return {"key": key, "outcome": "deleted_stray"}
        logger.warning("ignoring an object outside the upload key layout", extra={"key": key})
        return {"key": key, "outcome": "ignored"}
    upload_id, filename = parsed
    state = records.get_upload_file(upload_id, filename)
    if state is None:
        # Not issued by POST /uploads: nobody will ever read it, so it does not stay.
        logger.warning("deleting an upload with no upload record", extra={"key": key})
        storage.delete_object(key)
        return {"key": key, "outcome": "ignored"}
    if state["status"] != "pending":
        storage.delete_object(key)  # a redelivery after the first run removed it, or a crash
        return {"key": key, "outcome": "already_processed", "status": state["status"]}

    # The file's name names the image (the gallery shows it; downloads are saved under it).
    source = IngestSource(upload_id=upload_id, filename=filename, name=filename)
    limit = get_settings().max_upload_bytes
    try:
        if size is not None and size > limit:
            raise PayloadTooLarge(
                f"the file is {size} bytes, over the upload limit of {limit} bytes"
            )
        data = storage.read_object(key)
        if data is None:
            return {"key": key, "outcome": "already_processed"}
        meta, thumb = _inspect(data)
    except (InvalidImage, PayloadTooLarge) as err:
        records.reject_upload_file(source, err.message)
        storage.delete_object(key)
        logger.info("upload rejected", extra={"key": key, "reason": err.message})
        return {"key": key, "outcome": "rejected", "error": err.message}

    source = replace(source, note=_type_note(state.get("content_type"), meta["format"]))
    image_id = meta["sha256"]
    store = _with_thumbnail(
        image_id, thumb, lambda: storage.copy_to_image(key, image_id, meta["format"])
    )
    image, duplicate = records.commit_ingest(meta, source, store, migrations.ingest_marks())
    storage.delete_object(key)
    return {
        "key": key,
        "outcome": "duplicate" if duplicate else "created",
        "image_id": image["image_id"],
    }
