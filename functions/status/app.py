"""GET /status: liveness and version, no API key needed."""

from __future__ import annotations

from imgsvc import __version__
from imgsvc.http import api_handler, create_app

app = create_app()


@app.get("/status")
def status() -> dict:
    return {"status": "ok", "version": __version__}


lambda_handler = api_handler(app)
