"""Upload sessions: presigned S3 POSTs for many files, and the state of each file."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from imgsvc import formats, names, records, storage
from imgsvc.config import get_settings
from imgsvc.errors import Conflict, PayloadTooLarge
from imgsvc.limits import MAX_FILES_PER_REQUEST, max_files_per_session
from imgsvc.schemas import FileName, JsonBody, JsonInt

DEFAULT_EXPIRY = 300
MAX_EXPIRY = 3600


class FileSpec(JsonBody):
    filename: FileName
    # Matched exactly (the schema lists them): the presigned policy pins this very string.
    # Missing, empty or generic (what browsers send for .heic): the extension decides.
    content_type: Annotated[
        str,
        Field(
            json_schema_extra={
                "enum": sorted(formats.CONTENT_TYPES) + sorted(formats.GENERIC_CONTENT_TYPES)
            },
            description="The file's image type; empty or application/octet-stream to go by "
            "the file name's extension.",
        ),
    ] = ""
    size: Annotated[JsonInt, Field(ge=1)] | None = None

    @field_validator("filename")
    @classmethod
    def _safe_filename(cls, value: str) -> str:
        problem = names.filename_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("content_type")
    @classmethod
    def _image_type(cls, value: str) -> str:
        if value not in formats.CONTENT_TYPES and value not in formats.GENERIC_CONTENT_TYPES:
            allowed = ", ".join(sorted(formats.CONTENT_TYPES))
            raise ValueError(
                f"{value!r} is not accepted: use one of {allowed}, or leave it empty to go "
                "by the file's extension"
            )
        return value

    @model_validator(mode="after")
    def _resolve_type(self) -> FileSpec:
        self.content_type = formats.content_type_for(self.filename, self.content_type)
        return self


FileList = Annotated[list[FileSpec], Field(max_length=MAX_FILES_PER_REQUEST)]


EXAMPLE_FILES = [{"filename": "cat.jpg", "content_type": "image/jpeg", "size": 35180}]


class CreateUploadRequest(JsonBody):
    """A new upload session: how long its links live, and the files to presign now."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"expiry": 300, "files": EXAMPLE_FILES}]}
    )
    expiry: Annotated[JsonInt, Field(ge=1, le=MAX_EXPIRY)] = DEFAULT_EXPIRY
    files: FileList = []


class AddFilesRequest(JsonBody):
    """More files for a live session."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"files": EXAMPLE_FILES}]})
    files: Annotated[list[FileSpec], Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)]


def _check_files(files: list[FileSpec]) -> list[dict[str, Any]]:
    given = [f.filename for f in files]
    repeated = sorted({n for n in given if given.count(n) > 1})
    if repeated:
        raise Conflict(f"each filename may appear once per session: repeated {repeated}")
    limit = get_settings().max_upload_bytes
    for f in files:
        if f.size is not None and f.size > limit:
            raise PayloadTooLarge(
                f"{f.filename} is {f.size} bytes, over the upload limit of {limit} bytes"
            )
    return [f.model_dump() for f in files]


def _presign(upload_id: str, files: list[dict[str, Any]], expiry: int) -> list[dict[str, Any]]:
    out = []
    for f in files:
        post = storage.presigned_upload(
            storage.upload_key(upload_id, f["filename"]), f["content_type"], expiry
        )
        out.append({"filename": f["filename"], "url": post["url"], "fields": post["fields"]})
    return out


def create_upload(request: CreateUploadRequest) -> dict[str, Any]:
    files = _check_files(request.files)
    most = max_files_per_session()
    if len(files) > most:  # only when the setting is below the per-request limit
        raise Conflict(f"an upload session holds {most} files at most: {len(files)} given")
    upload_id = str(uuid.uuid4())
    expires_at = records.now_utc() + timedelta(seconds=request.expiry)
    records.create_session(upload_id, expires_at, files)
    return {
        "upload_id": upload_id,
        "expires_at": records.iso(expires_at),
        "files": _presign(upload_id, files, request.expiry),
    }


def add_files(upload_id: str, request: AddFilesRequest) -> dict[str, Any]:
    files = _check_files(request.files)
    session = records.add_files(upload_id, files)
    remaining = int(session["expires_epoch"]) - int(records.now_utc().timestamp())
    return {
        "upload_id": upload_id,
        "expires_at": session["expires_at"],
        "files": _presign(upload_id, files, max(1, remaining)),
    }


# S3 refuses a presigned POST after its expiry, and events arrive within seconds: a file still
# pending this long after the session expired will never arrive.
ARRIVAL_GRACE_SECONDS = 300


def upload_status(upload_id: str) -> dict[str, Any]:
    session, files = records.get_session(upload_id)
    overdue = records.now_utc().timestamp() > int(session["expires_epoch"]) + ARRIVAL_GRACE_SECONDS
    states = {}
    for f in files:
        state = records.file_state(f)
        if overdue and state["status"] == "pending":
            state["status"] = "rejected"
            state["error"] = (
                f"the file was not uploaded before the session expired at "
                f"{session['expires_at']}: start a new upload"
            )
        states[f["filename"]] = state
    return {"upload_id": upload_id, "expires_at": session["expires_at"], "files": states}
