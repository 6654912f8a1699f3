"""POST /analyze: format, size and mode of an image by URL, cached across warm invocations."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from imgsvc.analyze import AnalyzeRequest, analyze_url
from imgsvc.cache import AnalysisCache
from imgsvc.http import api_handler, create_app, responses
from imgsvc.observability import metrics
from imgsvc.schemas import Analysis

app = create_app()
# Module level on purpose: the warm container's LRU tier lives as long as the container.
CACHE = AnalysisCache()


@app.post(
    "/analyze",
    summary="Analyze an image by URL",
    description="Format, size and mode of the image at `url`, reading only its header. Repeated "
    'URLs are answered from the cache (`"cache": "hit"`). Only public http(s) addresses can be '
    "fetched.",
    responses=responses(
        {200: ("The analysis.", Analysis)},
        {
            400: "Malformed body, or a URL that is not http(s) or not public (`blocked_url`).",
            413: "The image is over the upload size limit.",
            422: "The URL does not lead to an image the service reads.",
            502: None,
            504: None,
        },
    ),
    tags=["analyze"],
)
def analyze(request: Annotated[AnalyzeRequest, Body()]) -> Analysis:
    result, tier, bytes_read = analyze_url(request.target, CACHE)
    hit = tier != "miss"
    metrics.add_metric(name="CacheHit" if hit else "CacheMiss", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=bytes_read)
    return {"status": "success", "result": result, "cache": "hit" if hit else "miss"}


lambda_handler = api_handler(app)
