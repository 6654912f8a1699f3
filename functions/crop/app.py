"""POST /images/{image_id}/crop: a new image cut from a stored one."""

from __future__ import annotations

from imgsvc import operations
from imgsvc.http import api_handler, create_app, json_body, json_response, parse_model

app = create_app()


@app.post("/images/<image_id>/crop")
def crop(image_id: str):
    box = parse_model(json_body(app), operations.CropRequest)
    image, duplicate = operations.crop(image_id, box)
    return json_response(200 if duplicate else 201, image)


lambda_handler = api_handler(app)
