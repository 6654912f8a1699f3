"""GET /status (liveness and version), GET /openapi.json and GET /docs: no API key needed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types

from imgsvc import __version__, limits
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import Status

app = create_app()
# The whole API's document, merged from every function's resolver by scripts/openapi.py.
OPENAPI_PATH = Path(__file__).parent / "openapi.json"
# The docs are large (Swagger UI is about 1.5 MB) and change only with a deployment.
DOCS_CACHE = "public, max-age=3600"


@cache
def _openapi() -> str:
    return OPENAPI_PATH.read_text()


@cache
def _docs_page() -> str:
    # Powertools ships Swagger UI's assets; inlining them (and the document) means the page
    # needs no CDN and no relative URL, so it works at /docs and /docs/ under any stage.
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    return generate_swagger_html(
        _openapi().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        None,
        None,
        False,
    )


@app.get(
    "/status",
    summary="Service liveness and version",
    description="Answers when the API and its functions are up, with the limits a client "
    "should check before sending (upload size, accepted types, files per request and session, "
    "ids per lookup). Needs no API key.",
    responses=responses({200: ("The service is up.", Status)}),
    tags=["service"],
    security=[],
)
def status() -> Status:
    return {"status": "ok", "version": __version__, "limits": limits.published()}


@app.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    description="The OpenAPI 3.1 document of every route. Needs no API key.",
    responses=responses({200: ("The document.", content_types.APPLICATION_JSON)}),
    tags=["service"],
    security=[],
)
def openapi():  # a raw JSON document: no body model
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=_openapi(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@app.get(
    "/docs",
    summary="Interactive API documentation (Swagger UI)",
    description="Swagger UI for this API, with no external assets. Also served at /docs/.",
    responses=responses({200: ("The page.", "text/html")}),
    tags=["service"],
    security=[],
)
def docs():  # a raw HTML response: no body model
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=_docs_page(),
        headers={"Cache-Control": DOCS_CACHE},
    )


lambda_handler = api_handler(app)
