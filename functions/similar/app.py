"""GET /images/{image_id}/similar: images within a phash distance, nearest first."""

from __future__ import annotations

from imgsvc.http import api_handler, create_app, query_int
from imgsvc.library import parse_image_id
from imgsvc.similar import MAX_DISTANCE, find_similar

app = create_app()


@app.get("/images/<image_id>/similar")
def similar(image_id: str) -> dict:
    max_distance = query_int(app, "max_distance", MAX_DISTANCE, 0, MAX_DISTANCE)
    limit = query_int(app, "limit", 20, 1, 100)
    result = find_similar(parse_image_id(image_id), max_distance, limit)
    return {
        "image_id": result.image_id,
        "phash": result.phash,
        "max_distance": max_distance,
        "results": [{"distance": m["distance"], **m["image"]} for m in result.matches],
        "count": len(result.matches),
    }


lambda_handler = api_handler(app)
