"""The API's response bodies and shared parameter types, as pydantic models.

Handlers annotate their return types with these, so Powertools validates every response and
the generated OpenAPI document (scripts/openapi.py) describes exactly what is sent. Request
bodies live beside the code that uses them (uploads, analyze, imports, operations).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imgsvc import names

IMAGE_ID_PATTERN = r"^[0-9a-f]{64}$"
UPLOAD_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

ImageId = Annotated[
    str,
    Path(
        pattern=IMAGE_ID_PATTERN,
        description="An image id: the sha256 of the image's bytes, 64 lowercase hex characters.",
        examples=["2f08b61765992a4ca30a53f9f4bcc35abd424b1461d72b4dc4aec6fd3132310b"],
    ),
]
UploadId = Annotated[
    str,
    Path(
        pattern=UPLOAD_ID_PATTERN,
        description="An upload session id, as POST /uploads returned it (a lowercase UUID).",
        examples=["3b241101-e2bb-4255-8caf-4136c566a962"],
    ),
]
Sha256 = Annotated[str, Field(pattern=IMAGE_ID_PATTERN)]
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9+/=._:-]{16,128}$"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# `str` with a None default (not `str | None`): the contract says a string, and absence is
# the default, never a value a client sends.
IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="A unique value per request (a UUID), sent again unchanged with every retry "
        "of it: a retry then answers what the first attempt did, and adds and counts nothing "
        "twice. 16 to 128 characters of letters, digits and `+/=._:-`; remembered 35 days. The "
        "same key with another request is refused (422 `idempotency_key_reused`).",
        examples=["5f0c7a52-8a0e-4c57-a4f3-5d6c1e2b9a70"],
    ),
]


JsonInt = Annotated[int, Field(strict=True)]


def absent_by_default(**kwargs: Any) -> Any:
    """A field that may be left out but, when sent, has its type (null is not accepted)."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(None, json_schema_extra=drop_default, **kwargs)


def _is_int(annotation: Any) -> bool:
    """int, Annotated[int, ...], or a union with one of those (e.g. `int | None`)."""
    if annotation is int:
        return True
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return args[0] is int
    return any(_is_int(a) for a in args)


class JsonBody(BaseModel):
    """A request body: unknown keys refused, integers strict (true and "300" are not integers)
    except that 300.0 is one, as JSON Schema counts it."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ints = {name for name, field in cls.model_fields.items() if _is_int(field.annotation)}
        return {
            k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v
            for k, v in data.items()
        }


FileName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=names.FILENAME_MAX_CHARS,
        json_schema_extra={"pattern": names.FILENAME_PATTERN},
        description="A plain file name (no slashes, control or bidi characters, not . or ..).",
    ),
]

MAX_URL_LENGTH = 2048
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
# `url` is the name POST /analyze and POST /images share; `image_url` is the original analyze
# API's name, still accepted by both: a body sends exactly one of the two.
ONE_URL = {"oneOf": [{"required": ["url"]}, {"required": ["image_url"]}]}


class UrlBody(JsonBody):
    """A body that names an image by URL: `url`, or its alias `image_url`, exactly once."""

    url: Url = absent_by_default(description="The image's http(s) URL.")
    image_url: Url = absent_by_default(
        description="The same as `url` (the original analyze API's name): send one of the two."
    )

    @model_validator(mode="after")
    def _one_url(self) -> UrlBody:
        if (self.url is None) == (self.image_url is None):
            raise ValueError('send the image\'s address as "url" (or "image_url"), once')
        return self

    @property
    def target(self) -> str:
        return self.url or self.image_url or ""


class Schema(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(Schema):
    """Every error the API returns."""

    status: Literal["error"]
    code: str = Field(description="A stable machine-readable code, e.g. not_found.")
    message: str = Field(description="What was wrong and what to do, in words.")
    details: dict[str, int | str] | None = None


class Limits(Schema):
    max_upload_bytes: int = Field(description="Largest presigned upload or URL import.")
    max_direct_upload_bytes: int = Field(description="Largest multipart POST /images.")
    content_types: list[str] = Field(description="Content types an upload may declare.")
    extensions: dict[str, str] = Field(description="File extension -> its content type.")
    max_files_per_request: int
    max_files_per_session: int
    max_lookup_ids: int


class Status(Schema):
    status: Literal["ok"]
    version: str
    limits: Limits


class AnalysisResult(Schema):
    format: str
    size: str = Field(description="WIDTHxHEIGHT as stored (before EXIF orientation).")
    width: int
    height: int
    mode: str
    animated: bool | None = Field(
        None, description="Whether the header says it is an animation (PNG, WebP); else null."
    )
    frames: int | None = Field(
        None, ge=1, description="Frames, where the header counts them (PNG); else null."
    )


class Analysis(Schema):
    status: Literal["success"]
    result: AnalysisResult
    cache: Literal["hit", "miss"]


class History(Schema):
    cached_items: list[str] = Field(description="URLs the analysis cache holds, newest first.")
    count: int


class Image(Schema):
    """One image's metadata (the record DynamoDB holds)."""

    image_id: Sha256
    format: str
    width: int
    height: int
    mode: str
    bytes: int
    sha256: Sha256
    sha1: str
    make: str | None
    model: str | None
    camera: str | None = Field(description='"Make - Model" from EXIF, or null.')
    orientation: int | None = Field(
        description="The EXIF orientation (1-8) still to apply to width x height, or null. "
        "HEIF: libheif applies the container's rotation while decoding, so width x height are "
        "as displayed and this is 1 or null; AVIF reports its container rotation here."
    )
    taken_at: str | None = Field(description="EXIF DateTimeOriginal as ISO 8601, or null.")
    display_width: int = Field(description="Width as displayed (EXIF orientation applied).")
    display_height: int
    phash: str = Field(
        description="imagehash.phash of the picture as displayed (EXIF orientation applied; "
        "the first frame of an animation), 16 hex characters."
    )
    animated: bool | None = Field(
        None, description="Whether the file is an animation (null: recorded before this was)."
    )
    frames: int | None = Field(
        None, ge=1, description="Frames in the file, 1 for a still image (null: not recorded)."
    )
    name: str | None
    desc: str | None
    source_url: str | None
    derived_from: Sha256 | None = Field(description="The image this one was cropped from.")
    created_at: str
    thumbnail_url: str = Field(
        description="A signed S3 link to a WebP of the picture as displayed, at most 320 px on "
        "its long side. The same link comes back for an hour (browsers cache it); it works for "
        "at least CONTENT_URL_TTL_SECONDS after it was handed out."
    )


class ImagePage(Schema):
    images: list[Image]
    count: int
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


class Deleted(Schema):
    status: Literal["deleted"]
    image_id: Sha256


class DeletedAll(Schema):
    status: Literal["deleted"]
    deleted: int
    more: bool = Field(description="true: more images remain; call again.")


class Lookup(Schema):
    found: list[Sha256] = Field(description="Ids the library holds, in the order sent.")
    missing: list[Sha256]


class PresignedPost(Schema):
    filename: str
    url: str = Field(description="POST the file here as multipart/form-data.")
    fields: dict[str, str] = Field(description="Send every field before the file part.")


class UploadSession(Schema):
    upload_id: str
    expires_at: str
    files: list[PresignedPost]


class FileState(Schema):
    status: Literal["pending", "done", "rejected"]
    image_id: Sha256 | None
    duplicate: bool
    error: str | None
    note: str | None = Field(
        None, description="What the service noticed, e.g. a declared type the file is not."
    )
    thumbnail_url: str | None = Field(
        default=None, description="The image's thumbnail link (as in Image) once done."
    )


class UploadState(Schema):
    upload_id: str
    expires_at: str
    files: dict[str, FileState]


class Diff(Schema):
    algorithm: Literal["phash"]
    distance: int = Field(ge=0, le=64)
    similar: bool
    threshold: int
    hashes: dict[str, str]


class SimilarImage(Image):
    distance: int = Field(ge=0, le=64)


class Similar(Schema):
    image_id: Sha256
    phash: str
    max_distance: int
    results: list[SimilarImage]
    count: int


class Stats(Schema):
    uploads_per_day: dict[str, int] = Field(description="The last 30 UTC days, oldest first.")
    most_popular_format: str | None
    top_camera_models: list[str] = Field(description="At most 10, most images first.")
    formats: dict[str, int]
    total_images: int
