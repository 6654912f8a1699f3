"""GET / (the web app) and GET /static/{version}/{name} (its files): no API key needed."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from imgsvc import storage, webapp
from imgsvc.http import api_handler, create_app, responses

app = create_app()
ASSETS = webapp.Assets(FilePath(__file__).parent / "static")
_csp: str | None = None


def _headers() -> dict[str, str]:
    global _csp
    if _csp is None:  # the bucket's endpoint is known only where the environment is set
        _csp = webapp.content_security_policy(storage.endpoint_origins())
    return webapp.page_headers(_csp)


@app.get(
    "/",
    summary="The web app",
    description="The service's own web app: upload, gallery, image pages, analyze and stats. "
    "Needs no API key (the page asks for it). Under a stage without the trailing slash, "
    "redirects (301) to the slash so the page's relative URLs resolve.",
    responses=responses({200: ("The page.", "text/html"), 301: ("Add the trailing slash.", None)}),
    tags=["service"],
    security=[],
)
def index():  # an HTML page: no body model
    target = webapp.stage_redirect(app.current_event.request_context.path)
    if target:
        return Response(status_code=301, headers={"Location": target}, body="")
    headers = {**_headers(), "Cache-Control": webapp.NO_CACHE}
    return Response(200, "text/html; charset=utf-8", ASSETS.index(), headers)


@app.get(
    "/static/<version>/<name>",
    summary="A file of the web app",
    description="Scripts, styles and icons of the web app. Cached for a year under the current "
    "version (the files' hash); other versions are served uncached.",
    responses=responses({200: ("The file.", "application/octet-stream")}, {404: "No such file."}),
    tags=["service"],
    security=[],
)
def static(
    version: Annotated[
        str, Path(pattern=r"^[0-9a-f]{1,64}$", description="The files' version (a hash).")
    ],
    name: Annotated[
        str, Path(pattern=r"^[a-z0-9_-]{1,64}\.(js|css|svg)$", description="A file name.")
    ],
):  # a static file: no body model
    asset, cache = ASSETS.get(version, name)
    headers = {**_headers(), "Cache-Control": cache}
    return Response(200, asset.content_type, asset.body, headers)


lambda_handler = api_handler(app)
