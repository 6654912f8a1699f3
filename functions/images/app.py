"""The image library: list, get, fetch content, delete one or all."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from imgsvc import catalog
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import Deleted, DeletedAll, Image, ImageId, ImagePage, Lookup

app = create_app()
NOT_FOUND = {404: "No image has this id."}


@app.get(
    "/images",
    summary="List the library, newest first",
    description="One page of images, newest first. Pass `next_cursor` back as `cursor` for the "
    "next page; it is null on the last page.",
    responses=responses({200: ("A page of images.", ImagePage)}),
    tags=["library"],
)
def list_images(
    limit: Annotated[int, Query(ge=1, le=100, description="Images per page.")] = 20,
    cursor: Annotated[
        str, Query(max_length=2048, description="The `next_cursor` of the previous page.")
    ] = "",
) -> ImagePage:
    return catalog.list_page(limit, cursor or None)


@app.get(
    "/images/<image_id>",
    summary="One image's metadata",
    description="Format, size, mode, EXIF camera, hashes, and the name and description given "
    "at upload.",
    responses=responses({200: ("The image.", Image)}, NOT_FOUND),
    tags=["library"],
)
def get_image(image_id: ImageId) -> Image:
    return catalog.get(image_id)


@app.get(
    "/images/<image_id>/content",
    summary="Download the image",
    description="Redirects (302) to a short-lived S3 link to the original bytes. Needs no API "
    "key, so an <img> or a browser download can use it.",
    responses=responses({302: ("Follow the Location header to the bytes.", None)}, NOT_FOUND),
    tags=["library"],
    security=[],
)
def get_content(image_id: ImageId):  # a redirect: no body model
    return Response(status_code=302, headers={"Location": catalog.content_url(image_id)}, body="")


@app.get(
    "/images/<image_id>/thumbnail",
    summary="The image's thumbnail",
    description="Redirects (302) to the thumbnail: a WebP of the picture as displayed, at most "
    "320 px on its long side (the `thumbnail_url` of the image). Needs no API key.",
    responses=responses({302: ("Follow the Location header to the thumbnail.", None)}, NOT_FOUND),
    tags=["library"],
    security=[],
)
def get_thumbnail(image_id: ImageId):  # a redirect: no body model
    return Response(status_code=302, headers={"Location": catalog.thumbnail_url(image_id)}, body="")


@app.delete(
    "/images/<image_id>",
    summary="Delete an image",
    description="Removes the image's bytes, its thumbnail and renditions, its record, and its "
    "share of the format and camera counts. The uploads-per-day history stays.",
    responses=responses(
        {200: ("The image was deleted.", Deleted)},
        {
            **NOT_FOUND,
            409: "The image is being deleted by another request: retry in a moment.",
            503: "Storage was busy or did not answer: retry; a retry finishes a delete that "
            "was cut short.",
        },
    ),
    tags=["library"],
)
def delete_image(image_id: ImageId) -> Deleted:
    return catalog.delete(image_id)


@app.delete(
    "/images",
    summary="Delete every image (in batches)",
    description="Needs `confirm=true`. Deletes up to 200 images a call; repeat while the answer "
    'says `"more": true`.',
    responses=responses({200: ("A batch was deleted.", DeletedAll)}),
    tags=["library"],
)
def delete_all(
    confirm: Annotated[
        Literal["true"], Query(description="Must be `true`: deleting everything is deliberate.")
    ],
) -> DeletedAll:
    return catalog.delete_all(confirmed=confirm == "true")


@app.post(
    "/images/lookup",
    summary="Which of these images the library holds",
    description="Send up to 500 sha256 digests (64 lowercase hex); the answer splits them into "
    "`found` and `missing`, in the order sent. One call instead of one GET per file: the CLI "
    "uses it to skip files already uploaded.",
    responses=responses({200: ("Found and missing ids.", Lookup)}),
    tags=["library"],
)
def lookup_images(request: Annotated[catalog.LookupRequest, Body()]) -> Lookup:
    return catalog.lookup(request)


lambda_handler = api_handler(app)
