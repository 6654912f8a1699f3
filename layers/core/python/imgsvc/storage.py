"""S3: presigned uploads, the content-addressed image store, renditions, and signed links."""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import botocore.auth
from botocore.exceptions import ClientError

from imgsvc import aws, formats, records
from imgsvc.config import get_settings

# Renditions are derived from content-addressed bytes: a key's object never changes.
IMMUTABLE = "public, max-age=31536000, immutable"
THUMBNAIL_NAME = "thumb.webp"
THUMBNAIL_CONTENT_TYPE = "image/webp"


def upload_key(upload_id: str, filename: str) -> str:
    return f"{get_settings().upload_prefix}{upload_id}/{filename}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(upload_id, filename) of an already URL-decoded key, or None if not an upload key."""
    prefix = get_settings().upload_prefix
    if not key.startswith(prefix):
        return None
    upload_id, sep, filename = key[len(prefix) :].partition("/")
    if not sep or not upload_id or not filename:
        return None
    return upload_id, filename


def decode_event_key(raw: str) -> str:
    """S3 event keys are URL-encoded with '+' for spaces: 'a+b.jpg' arrives as 'a%2Bb.jpg'."""
    return unquote_plus(raw)


def image_key(image_id: str) -> str:
    return f"{get_settings().image_prefix}{image_id}"


def rendition_prefix(image_id: str) -> str:
    return f"{get_settings().rendition_prefix}{image_id}/"


def thumbnail_key(image_id: str) -> str:
    return f"{rendition_prefix(image_id)}{THUMBNAIL_NAME}"


def rendition_key(image_id: str, width: int, ext: str) -> str:
    return f"{rendition_prefix(image_id)}w{width}.{ext}"


def presigned_upload(key: str, content_type: str, expiry: int) -> dict[str, Any]:
    """A presigned POST pinning the exact key, content type, size range and expiry."""
    settings = get_settings()
    return aws.s3().generate_presigned_post(
        Bucket=settings.bucket_name,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[
            {"Content-Type": content_type},
            ["content-length-range", 1, settings.max_upload_bytes],
        ],
        ExpiresIn=expiry,
    )


def read_object(key: str) -> bytes | None:
    """The object's bytes, or None when it no longer exists (already ingested and removed)."""
    try:
        body = aws.s3().get_object(Bucket=get_settings().bucket_name, Key=key)["Body"]
    except ClientError as err:
        if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    with body:
        return body.read()


def store_image(image_id: str, data: bytes, fmt: str) -> None:
    """Store bytes under their sha256: the same content always lands on the same key."""
    aws.s3().put_object(
        Bucket=get_settings().bucket_name,
        Key=image_key(image_id),
        Body=data,
        ContentType=formats.CONTENT_TYPE_OF.get(fmt, "application/octet-stream"),
    )


def copy_to_image(source_key: str, image_id: str, fmt: str) -> None:
    """Server-side copy of an upload to its content address: no second transfer of the bytes."""
    bucket = get_settings().bucket_name
    aws.s3().copy_object(
        Bucket=bucket,
        Key=image_key(image_id),
        CopySource={"Bucket": bucket, "Key": source_key},
        ContentType=formats.CONTENT_TYPE_OF.get(fmt, "application/octet-stream"),
        MetadataDirective="REPLACE",
    )


def read_image(image_id: str) -> bytes | None:
    return read_object(image_key(image_id))


def delete_object(key: str) -> None:
    aws.s3().delete_object(Bucket=get_settings().bucket_name, Key=key)


def store_rendition(key: str, data: bytes, content_type: str) -> None:
    aws.s3().put_object(
        Bucket=get_settings().bucket_name,
        Key=key,
        Body=data,
        ContentType=content_type,
        CacheControl=IMMUTABLE,
    )


def object_exists(key: str) -> bool:
    try:
        aws.s3().head_object(Bucket=get_settings().bucket_name, Key=key)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    return True


def _rendition_keys(image_id: str) -> Iterator[str]:
    pages = (
        aws.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=get_settings().bucket_name, Prefix=rendition_prefix(image_id))
    )
    for page in pages:
        for obj in page.get("Contents", []):
            yield obj["Key"]


def delete_renditions(image_id: str) -> int:
    """Delete the thumbnail and every rendition of an image; returns how many were deleted.

    The ladder bounds them to a few dozen, so one DeleteObjects call (up to 1,000) suffices
    per listed page.
    """
    bucket = get_settings().bucket_name
    keys = list(_rendition_keys(image_id))
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        answer = aws.s3().delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        if answer.get("Errors"):
            raise RuntimeError(f"could not delete renditions of {image_id}: {answer['Errors']}")
    return len(keys)


def download_filename(name: str | None, image_id: str, fmt: str) -> str:
    """The image's name with the extension of its detected format: 'cat.jpeg' of a PNG is
    'cat.png'; no name gives the id's first 16 characters."""
    ext = formats.DOWNLOAD_EXTENSION.get(fmt, fmt.lower() or "bin")
    stem = (name or "").strip()
    base, dot, old_ext = stem.rpartition(".")
    if dot and base and len(old_ext) <= 5:
        stem = base
    stem = "".join(c for c in stem if c.isprintable() and c not in '/\\"')[:200] or image_id[:16]
    return f"{stem}.{ext}"


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback name plus the UTF-8 one (RFC 5987) when they differ."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    value = f'{kind}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def download_url(image_id: str, fmt: str, name: str | None = None) -> str:
    """A short-lived GET link that downloads as an attachment named after the image."""
    settings = get_settings()
    return aws.s3().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.bucket_name,
            "Key": image_key(image_id),
            "ResponseContentType": formats.CONTENT_TYPE_OF.get(fmt, "application/octet-stream"),
            "ResponseContentDisposition": content_disposition(
                "attachment", download_filename(name, image_id, fmt)
            ),
        },
        ExpiresIn=settings.content_url_ttl_seconds,
    )


def endpoint_origins() -> list[str]:
    """Origins of the presigned upload and download links (signed locally: no request)."""
    settings = get_settings()
    post = aws.s3().generate_presigned_post(Bucket=settings.bucket_name, Key="x", ExpiresIn=60)
    get = aws.s3().generate_presigned_url(
        "get_object", Params={"Bucket": settings.bucket_name, "Key": "x"}, ExpiresIn=60
    )
    out = []
    for url in (post["url"], get):
        parts = urlsplit(url)
        out.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(out))


# --------------------------------------------------------------------------- windowed links
# A presigned link changes with every signing (its X-Amz-Date is the current time), so a
# browser would download the same thumbnail again on every page. boto3 takes no signing
# time: botocore's SigV4Auth.add_auth stamps request.context["timestamp"] with the current
# time and then calls _modify_request_before_signing, before it builds the canonical request.
# This subclass restamps it there with the start of the current window; it is chosen through
# the client's choose-signer event only while _SIGNING_TIME is set, so every other request
# (and download_url) is signed as before.
_SIGNING_TIME: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "imgsvc_signing_time", default=None
)
_WINDOW_SIGNER = "imgsvc-s3v4-window"


class _WindowStartQueryAuth(botocore.auth.S3SigV4QueryAuth):
    def _modify_request_before_signing(self, request: Any) -> None:
        signed_at = _SIGNING_TIME.get()
        if signed_at is not None:
            request.context["timestamp"] = signed_at.strftime(botocore.auth.SIGV4_TIMESTAMP)
        super()._modify_request_before_signing(request)


# botocore appends "-query" to the chosen signer's name for presigned URLs.
botocore.auth.AUTH_TYPE_MAPS.setdefault(f"{_WINDOW_SIGNER}-query", _WindowStartQueryAuth)


def _choose_window_signer(**_: Any) -> str | None:
    return _WINDOW_SIGNER if _SIGNING_TIME.get() is not None else None


def window_start(now: datetime | None = None) -> datetime:
    """The start of the link window ``now`` falls in (UTC, naive like botocore's clock)."""
    window = get_settings().link_window_seconds
    epoch = int((now or records.now_utc()).timestamp())
    return datetime.fromtimestamp(epoch - epoch % window, UTC).replace(tzinfo=None)


# The links of the current window, per client (its credentials sign them): inside a window
# the same inputs give the same link, and botocore's presigning costs milliseconds a link
# (endpoint rules, validation), which a page of 100 thumbnails would pay on every call.
_LINKS: weakref.WeakKeyDictionary[Any, tuple[datetime, dict[tuple[Any, ...], str]]] = (
    weakref.WeakKeyDictionary()
)
_LINKS_MAX = 10_000
_links_lock = threading.Lock()


def rendition_url(key: str) -> str:
    """A GET link to a rendition that stays the same for a whole window.

    Signed at the window's start and valid for the window plus CONTENT_URL_TTL_SECONDS, so a
    link handed out at any moment of the window works for at least that TTL.
    """
    settings = get_settings()
    client = aws.s3()
    signed_at = window_start()
    expires = settings.link_window_seconds + settings.content_url_ttl_seconds
    cache_key = (expires, settings.bucket_name, key)
    with _links_lock:
        window = _LINKS.get(client)
        if window is None or window[0] != signed_at:  # a new window: the old links go
            window = _LINKS[client] = (signed_at, {})
        links = window[1]
        if cache_key in links:
            return links[cache_key]
    client.meta.events.register(
        "choose-signer.s3.GetObject", _choose_window_signer, unique_id=_WINDOW_SIGNER
    )
    token = _SIGNING_TIME.set(signed_at)
    try:
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": settings.bucket_name, "Key": key}, ExpiresIn=expires
        )
    finally:
        _SIGNING_TIME.reset(token)
    with _links_lock:
        if len(links) >= _LINKS_MAX:
            links.clear()
        links[cache_key] = url
    return url


def thumbnail_url(image_id: str) -> str:
    return rendition_url(thumbnail_key(image_id))
