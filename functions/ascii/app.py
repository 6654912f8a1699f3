"""GET /images/{image_id}/ascii: the image as text art, cached in the warm container."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from imgsvc import operations
from imgsvc.cache import LRUCache
from imgsvc.http import api_handler, create_app, query_int

app = create_app()
# Module level on purpose: lives as long as the warm container. 8 MiB of art at most.
CACHE: LRUCache[str] = LRUCache(max_entries=256, max_bytes=8 * 1024 * 1024, ttl_seconds=3600)


@app.get("/images/<image_id>/ascii")
def ascii_art(image_id: str) -> Response:
    width = query_int(app, "width", 100, 10, 400)
    art, hit = operations.ascii_text(image_id, width, CACHE)
    return Response(
        status_code=200,
        content_type=f"{content_types.TEXT_PLAIN}; charset=utf-8",
        body=art + "\n",
        headers={"X-Cache": "hit" if hit else "miss"},
    )


lambda_handler = api_handler(app)
