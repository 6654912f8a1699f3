"""GET /status (liveness and version), GET /openapi.json and GET /docs: no API key needed."""

from __future__ import annotations

from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types

from imgsvc import __version__, limits
from imgsvc.http import api_handler, create_app

app = create_app()
# Generated from template.yaml and the request models by scripts/openapi.py.
OPENAPI = (Path(__file__).parent / "openapi.json").read_text()
# Swagger UI from a CDN, reading the document next to this page (works under any stage).
DOCS = """<!doctype html>
<html><head><meta charset="utf-8"><title>imgsvc API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
</body></html>
"""


@app.get("/status")
def status() -> dict:
    return {"status": "ok", "version": __version__, "limits": limits.published()}


@app.get("/openapi.json")
def openapi() -> Response:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=OPENAPI)


@app.get("/docs")
def docs() -> Response:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=DOCS)


lambda_handler = api_handler(app)
