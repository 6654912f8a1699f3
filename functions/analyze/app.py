"""POST /analyze: format, size and mode of an image by URL, cached across warm invocations."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from imgsvc.analyze import AnalyzeRequest, analyze_url
from imgsvc.cache import AnalysisCache
from imgsvc.http import api_handler, create_app, parse_body
from imgsvc.observability import metrics, tracer

app = create_app()
# Module level on purpose: the warm container's LRU tier lives as long as the container.
CACHE = AnalysisCache()


@app.post("/analyze")
@tracer.capture_method
def analyze() -> dict:
    request = parse_body(app, AnalyzeRequest)
    result, tier, bytes_read = analyze_url(request.image_url, CACHE)
    hit = tier != "miss"
    metrics.add_metric(name="CacheHit" if hit else "CacheMiss", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=bytes_read)
    return {"status": "success", "result": result, "cache": "hit" if hit else "miss"}


lambda_handler = api_handler(app)
