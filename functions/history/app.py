"""GET /history: the URLs the analysis cache holds, newest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from imgsvc.cache import cached_urls
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import History

app = create_app()


@app.get(
    "/history",
    summary="Analyzed URLs the cache holds",
    description="URLs whose analysis is cached (any container's), newest first.",
    responses=responses({200: ("The URLs.", History)}),
    tags=["analyze"],
)
def history(
    limit: Annotated[int, Query(ge=1, le=1000, description="Most URLs returned.")] = 100,
) -> History:
    urls = cached_urls(limit=limit)
    return {"cached_items": urls, "count": len(urls)}


lambda_handler = api_handler(app)
