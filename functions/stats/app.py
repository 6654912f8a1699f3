"""GET /stats: uploads per day (30 days), formats, top camera models, from counters."""

from __future__ import annotations

from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import Stats
from imgsvc.stats import get_stats

app = create_app()


@app.get(
    "/stats",
    summary="Library statistics",
    description="Uploads per UTC day over the last 30 days (duplicates included), images per "
    "format, the 10 most common camera models, and the total. Costs the same at any size.",
    responses=responses({200: ("The statistics.", Stats)}),
    tags=["library"],
)
def stats() -> Stats:
    return get_stats()


lambda_handler = api_handler(app)
