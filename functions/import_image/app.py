"""POST /images: a direct multipart upload (up to 4 MiB) or an import from a URL (JSON)."""

from __future__ import annotations

from imgsvc import imports
from imgsvc.http import api_handler, create_app, json_body, json_response, parse_model, raw_body

app = create_app()


@app.post("/images")
def create_image():
    content_type = app.current_event.headers.get("content-type") or ""
    if content_type.split(";")[0].strip().lower() == "application/json":
        image, duplicate = imports.import_url(parse_model(json_body(app), imports.ImportRequest))
    else:
        image, duplicate = imports.import_multipart(raw_body(app), content_type)
    return json_response(200 if duplicate else 201, image)


lambda_handler = api_handler(app)
