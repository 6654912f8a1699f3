"""GET /stats: uploads per day (30 days), formats, top camera models, from counters."""

from __future__ import annotations

from imgsvc.http import api_handler, create_app
from imgsvc.stats import get_stats

app = create_app()


@app.get("/stats")
def stats() -> dict:
    return get_stats()


lambda_handler = api_handler(app)
