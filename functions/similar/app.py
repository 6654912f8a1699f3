"""GET /images/{image_id}/similar: images within a phash distance, nearest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from imgsvc import catalog
from imgsvc.http import api_handler, create_app, responses
from imgsvc.phash_index import MAX_DISTANCE
from imgsvc.schemas import ImageId, Similar
from imgsvc.similar import find_similar

app = create_app()


@app.get(
    "/images/<image_id>/similar",
    summary="Find similar images",
    description="Images whose phash is within `max_distance` of this one's, nearest first "
    "(a multi-index lookup, not a scan).",
    responses=responses({200: ("The matches.", Similar)}, {404: "No image has this id."}),
    tags=["operations"],
)
def similar(
    image_id: ImageId,
    max_distance: Annotated[
        int, Query(ge=0, le=MAX_DISTANCE, description="The largest phash distance to include.")
    ] = MAX_DISTANCE,
    limit: Annotated[int, Query(ge=1, le=100, description="Most matches returned.")] = 20,
) -> Similar:
    result = find_similar(image_id, max_distance, limit)
    return {
        "image_id": result.image_id,
        "phash": result.phash,
        "max_distance": max_distance,
        "results": [
            {"distance": m["distance"], **catalog.linked(m["image"])} for m in result.matches
        ],
        "count": len(result.matches),
    }


lambda_handler = api_handler(app)
