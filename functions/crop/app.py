"""POST /images/{image_id}/crop: a new image cut from a stored one."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body

from imgsvc import crops
from imgsvc.http import api_handler, client_scope, create_app, responses
from imgsvc.schemas import IdempotencyKey, Image, ImageId

app = create_app()


@app.post(
    "/images/<image_id>/crop",
    summary="Crop an image into a new one",
    description="The box is in pixels of the image as displayed (EXIF orientation applied). The "
    "result is a new image with `derived_from`, in the source's format, except HEIF/HEIC "
    "(no encoder is shipped), which is cropped to JPEG: the new image's `format` says which. "
    "The same crop again returns it with 200. Send an `Idempotency-Key` to retry safely.",
    responses=responses(
        {201: ("The new image.", Image), 200: ("This crop already existed.", Image)},
        {
            400: "The box is malformed or outside the image (the message gives its size).",
            404: "No image has this id.",
            410: "The image this Idempotency-Key's request added has been deleted since.",
            422: "Not an image the service accepts, or the Idempotency-Key was used for "
            "another request.",
            503: None,
        },
    ),
    tags=["operations"],
)
def crop(
    image_id: ImageId,
    box: Annotated[crops.CropRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[Image]:
    scope = client_scope(app, "POST /images/{image_id}/crop")
    image, duplicate = crops.crop(image_id, box, idempotency_key, scope)
    return Response(
        status_code=200 if duplicate else 201,
        content_type=content_types.APPLICATION_JSON,
        body=image,
    )


lambda_handler = api_handler(app)
