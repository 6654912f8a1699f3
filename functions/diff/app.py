"""GET /images/{image_id}/diff/{other_id}: perceptual-hash distance of two stored images."""

from __future__ import annotations

from imgsvc.http import api_handler, create_app, query_int
from imgsvc.library import parse_image_id
from imgsvc.similar import DEFAULT_THRESHOLD, diff

app = create_app()


@app.get("/images/<image_id>/diff/<other_id>")
def diff_images(image_id: str, other_id: str) -> dict:
    threshold = query_int(app, "threshold", DEFAULT_THRESHOLD, 0, 64)
    return diff(parse_image_id(image_id), parse_image_id(other_id), threshold)


lambda_handler = api_handler(app)
