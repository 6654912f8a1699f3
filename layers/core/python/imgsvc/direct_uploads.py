"""Images handed to the API directly: a small multipart upload, or an import from a URL."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import ConfigDict, Field

from imgsvc import names
from imgsvc.config import get_settings
from imgsvc.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from imgsvc.ingest import ingest_bytes, replay, request_key
from imgsvc.limits import DIRECT_UPLOAD_MAX_BYTES
from imgsvc.schemas import ONE_URL, UrlBody, absent_by_default

# Room for the multipart boundaries, part headers and the name/desc fields.
_MULTIPART_OVERHEAD = 64 * 1024
NAME_MAX = 200
DESC_MAX = 2000

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Desc = Annotated[str, Field(max_length=DESC_MAX)]


class ImportRequest(UrlBody):
    """Import an image from a URL (the JSON form of POST /images)."""

    model_config = ConfigDict(
        json_schema_extra={
            **ONE_URL,
            "examples": [{"url": "https://example.com/cat.jpg", "name": "cat", "desc": "a cat"}],
        },
    )
    name: Name = absent_by_default(description="A name for the image (default: the file name).")
    desc: Desc = absent_by_default(description="A description.")


def _too_large(size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"direct uploads are limited to {DIRECT_UPLOAD_MAX_BYTES} bytes (got {size}): "
        "use POST /uploads for a presigned S3 upload of up to "
        f"{get_settings().max_upload_bytes} bytes"
    )


def _text_field(fields: dict[str, Any], name: str) -> str | None:
    """A form field as text; empty means absent (HTML forms send empty fields)."""
    if name not in fields:
        return None
    try:
        value = fields[name].raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"form field {name!r} is not valid UTF-8 text") from err
    return value or None


def import_multipart(
    body: bytes, content_type: str, idempotency_key: str | None = None, scope: str = ""
) -> tuple[dict[str, Any], bool]:
    """Ingest the ``image`` part of a multipart/form-data body (with optional name, desc).

    ``idempotency_key`` (scoped by ``scope``: the route and the client) makes a retry answer
    what the first attempt recorded; the request is its parts, not its boundary.
    """
    # `multipart` is the maintained parser behind Bottle; it enforces part and size limits.
    from multipart import MultipartError, MultipartParser, parse_options_header

    if len(body) > DIRECT_UPLOAD_MAX_BYTES + _MULTIPART_OVERHEAD:
        raise _too_large(len(body))
    mime, options = parse_options_header(content_type or "")
    if mime != "multipart/form-data" or not options.get("boundary"):
        raise UnsupportedMediaType(
            'send multipart/form-data with an `image` file part, or JSON {"url": ...}'
        )
    fields: dict[str, Any] = {}
    try:
        parser = MultipartParser(
            io.BytesIO(body),
            options["boundary"],
            content_length=len(body),
            part_limit=8,
            partsize_limit=DIRECT_UPLOAD_MAX_BYTES + 1,
            memory_limit=DIRECT_UPLOAD_MAX_BYTES + _MULTIPART_OVERHEAD,
            spool_limit=DIRECT_UPLOAD_MAX_BYTES + _MULTIPART_OVERHEAD,
        )
        for part in parser:
            if part.name in fields:
                raise BadRequest(f"form field {part.name!r} appears more than once")
            fields[part.name] = part
    except MultipartError as err:
        raise BadRequest(f"malformed multipart body: {err}") from err
    image = fields.get("image")
    if image is None or not image.filename:
        raise BadRequest("the form needs an `image` file part")
    data = image.raw
    if len(data) > DIRECT_UPLOAD_MAX_BYTES:
        raise _too_large(len(data))
    name = _text_field(fields, "name")
    desc = _text_field(fields, "desc")
    if name is not None and len(name) > NAME_MAX:
        raise BadRequest(f"name must be at most {NAME_MAX} characters")
    if desc is not None and len(desc) > DESC_MAX:
        raise BadRequest(f"desc must be at most {DESC_MAX} characters")
    try:
        filename = names.client_filename(image.filename)
    except ValueError as err:
        raise BadRequest(f"the image part's filename {err}") from err
    asked = [hashlib.sha256(data).hexdigest(), filename, name, desc]
    key = request_key(idempotency_key, scope, json.dumps(asked))
    done = replay(key)
    if done is not None:
        return done
    return ingest_bytes(data, filename=filename, name=name or filename, desc=desc, key=key)


def import_url(
    request: ImportRequest, idempotency_key: str | None = None, scope: str = ""
) -> tuple[dict[str, Any], bool]:
    """Fetch an image with the safe fetcher (upload size limit) and ingest it.

    With ``idempotency_key``, a retry answers what the first attempt recorded without
    fetching again (the remote file may have changed meanwhile).
    """
    from imgsvc.fetch import fetch_bytes

    asked = [request.target, request.name, request.desc]
    key = request_key(idempotency_key, scope, json.dumps(asked))
    done = replay(key)
    if done is not None:
        return done
    fetched = fetch_bytes(request.target, max_bytes=get_settings().max_upload_bytes)
    # The name comes from the final URL: a redirect often leads to the real file name.
    filename = names.derived_filename(unquote(urlsplit(fetched.url).path), "import")
    return ingest_bytes(
        fetched.data,
        filename=filename,
        name=request.name or filename[:NAME_MAX],
        desc=request.desc,
        source_url=request.target,
        key=key,
    )
