"""S3: presigned uploads, the content-addressed image store, and short-lived download links."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from botocore.exceptions import ClientError

from imgsvc import aws, formats
from imgsvc.config import get_settings


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
