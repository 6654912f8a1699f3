"""GET /images/{image_id}/rendition: a redirect to a stored rendition, rendered on first use."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from imgsvc import renditions
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import ImageId

app = create_app()
LADDER_TEXT = ", ".join(str(w) for w in renditions.LADDER)


@app.get(
    "/images/<image_id>/rendition",
    summary="The picture at a width and in a format browsers show",
    description="Redirects (302) to a stored rendition of the picture as displayed (EXIF "
    "orientation applied, first frame of an animation, no EXIF). `width` is rounded up to "
    f"one of {LADDER_TEXT} and never exceeds the picture's displayed width. The first "
    "request renders it (a few seconds at most); later ones only sign a link. Needs no API "
    "key, so an <img> can use it.",
    responses=responses(
        {302: ("Follow the Location header to the rendition.", None)},
        {404: "No image has this id.", 422: None},
    ),
    tags=["library"],
    security=[],
)
def get_rendition(
    image_id: ImageId,
    width: Annotated[
        int,
        Query(ge=1, le=renditions.MAX_WIDTH, description="Wanted width in pixels (rounded up)."),
    ],
    format: Annotated[
        Literal["webp", "jpeg", "png", "avif"], Query(description="The image format.")
    ] = "webp",
):  # a redirect: no body model
    url = renditions.rendition_url(image_id, width, format)
    return Response(status_code=302, headers={"Location": url}, body="")


lambda_handler = api_handler(app)
