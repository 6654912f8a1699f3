"""GET /images/{image_id}/ascii: the image as text art, cached in the warm container."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from imgsvc import ascii_art as ascii_views
from imgsvc.cache import LRUCache
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import ImageId

app = create_app()
# Module level on purpose: lives as long as the warm container. 8 MiB of art at most.
CACHE: LRUCache[str] = LRUCache(max_entries=256, max_bytes=8 * 1024 * 1024, ttl_seconds=3600)


@app.get(
    "/images/<image_id>/ascii",
    summary="The image as ASCII art",
    description="Plain text, `width` characters a line, aspect corrected for character cells, "
    "EXIF orientation applied, transparency as white. `X-Cache` says hit or miss.",
    responses=responses(
        {200: ("The art.", "text/plain")}, {404: "No image has this id.", 422: None}
    ),
    tags=["operations"],
)
def ascii_art(
    image_id: ImageId,
    width: Annotated[int, Query(ge=10, le=400, description="Characters per line.")] = 100,
):  # plain text: no body model
    art, hit = ascii_views.ascii_text(image_id, width, CACHE)
    return Response(
        status_code=200,
        content_type=f"{content_types.TEXT_PLAIN}; charset=utf-8",
        body=art + "\n",
        headers={"X-Cache": "hit" if hit else "miss"},
    )


lambda_handler = api_handler(app)
