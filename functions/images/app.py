"""The image library: list, get, fetch content, delete one or all."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from imgsvc import library
from imgsvc.http import api_handler, create_app, json_body, parse_model, query_int

app = create_app()


@app.get("/images")
def list_images() -> dict:
    limit = query_int(app, "limit", 20, 1, 100)
    cursor = app.current_event.get_query_string_value(name="cursor", default_value=None)
    return library.list_page(limit, cursor or None)


@app.get("/images/<image_id>")
def get_image(image_id: str) -> dict:
    return library.get(image_id)


@app.get("/images/<image_id>/content")
def get_content(image_id: str) -> Response:
    return Response(status_code=302, headers={"Location": library.content_url(image_id)}, body="")


@app.delete("/images/<image_id>")
def delete_image(image_id: str) -> dict:
    return library.delete(image_id)


@app.delete("/images")
def delete_all() -> dict:
    confirm = app.current_event.get_query_string_value(name="confirm", default_value="")
    return library.delete_all(confirmed=confirm == "true")


@app.post("/images/lookup")
def lookup_images() -> dict:
    return library.lookup(parse_model(json_body(app), library.LookupRequest))


lambda_handler = api_handler(app)
