"""GET /history: the URLs the analysis cache holds, newest first."""

from __future__ import annotations

from imgsvc.cache import cached_urls
from imgsvc.http import api_handler, create_app, query_int

app = create_app()


@app.get("/history")
def history() -> dict:
    urls = cached_urls(limit=query_int(app, "limit", 100, 1, 1000))
    return {"cached_items": urls, "count": len(urls)}


lambda_handler = api_handler(app)
