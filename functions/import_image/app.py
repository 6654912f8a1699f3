"""POST /images: a direct multipart upload (up to 4 MiB) or an import from a URL (JSON)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from imgsvc import direct_uploads
from imgsvc.http import api_handler, client_scope, create_app, parse_json_body, raw_body, responses
from imgsvc.schemas import IdempotencyKey, Image

app = create_app()


@app.post(
    "/images",
    summary="Add an image: direct upload or import from a URL",
    description="multipart/form-data with an `image` file part (up to 4 MiB; optional `name` "
    "and `desc`), or JSON with the image's `url`. Known content returns the existing image "
    "with 200 (its name and description kept). Send an `Idempotency-Key` to retry safely.",
    responses=responses(
        {201: ("The new image.", Image), 200: ("The content already existed.", Image)},
        {
            400: "Malformed body, or a URL that is not allowed (`blocked_url`).",
            413: "Over 4 MiB (use POST /uploads), or over the upload limit.",
            415: "Neither multipart/form-data nor application/json.",
            410: "The image this Idempotency-Key's request added has been deleted since.",
            422: "Not an image the service accepts, or the Idempotency-Key was used for "
            "another request.",
            502: None,
            503: None,
            504: None,
        },
    ),
    tags=["library"],
)
def create_image(idempotency_key: IdempotencyKey = None) -> Response[Image]:
    content_type = app.current_event.headers.get("content-type") or ""
    scope = client_scope(app, "POST /images")
    if content_type.split(";")[0].strip().lower() == content_types.APPLICATION_JSON:
        request = parse_json_body(app, direct_uploads.ImportRequest)
        image, duplicate = direct_uploads.import_url(request, idempotency_key, scope)
    else:
        image, duplicate = direct_uploads.import_multipart(
            raw_body(app), content_type, idempotency_key, scope
        )
    return Response(
        status_code=200 if duplicate else 201,
        content_type=content_types.APPLICATION_JSON,
        body=image,
    )


lambda_handler = api_handler(app)
