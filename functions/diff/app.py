"""GET /images/{image_id}/diff/{other_id}: perceptual-hash distance of two stored images."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import Diff, ImageId
from imgsvc.similar import DEFAULT_THRESHOLD, diff

app = create_app()


@app.get(
    "/images/<image_id>/diff/<other_id>",
    summary="Compare two images by perceptual hash",
    description="The Hamming distance (0-64) of the two images' stored phashes, and whether it "
    "is within `threshold`. Nothing is downloaded.",
    responses=responses({200: ("The distance.", Diff)}, {404: "Either image does not exist."}),
    tags=["operations"],
)
def diff_images(
    image_id: ImageId,
    other_id: ImageId,
    threshold: Annotated[
        int, Query(ge=0, le=64, description="The largest distance still called similar.")
    ] = DEFAULT_THRESHOLD,
) -> Diff:
    return diff(image_id, other_id, threshold)


lambda_handler = api_handler(app)
