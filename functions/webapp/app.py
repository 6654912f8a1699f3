"""GET / (the web app) and GET /static/{version}/{name} (its files): no API key needed."""

from __future__ import annotations

from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from imgsvc import storage, webapp
from imgsvc.http import api_handler, create_app

app = create_app()
ASSETS = webapp.Assets(Path(__file__).parent / "static")
_csp: str | None = None


def _headers() -> dict[str, str]:
    global _csp
    if _csp is None:  # the bucket's endpoint is known only where the environment is set
        _csp = webapp.content_security_policy(storage.endpoint_origins())
    return webapp.page_headers(_csp)


@app.get("/")
def index() -> Response:
    target = webapp.stage_redirect(app.current_event.request_context.path)
    if target:
        return Response(status_code=301, headers={"Location": target}, body="")
    headers = {**_headers(), "Cache-Control": webapp.NO_CACHE}
    return Response(200, "text/html; charset=utf-8", ASSETS.index(), headers)


@app.get("/static/<version>/<name>")
def static(version: str, name: str) -> Response:
    asset, cache = ASSETS.get(version, name)
    headers = {**_headers(), "Cache-Control": cache}
    return Response(200, asset.content_type, asset.body, headers)


lambda_handler = api_handler(app)
