"""Upload sessions: presigned S3 POSTs (POST /uploads, POST /uploads/{id}/files) and their state."""

from __future__ import annotations

from imgsvc import uploads
from imgsvc.http import api_handler, create_app, json_body, json_response, parse_model

app = create_app()


@app.post("/uploads")
def create_upload():
    request = parse_model(json_body(app), uploads.CreateUploadRequest)
    return json_response(201, uploads.create_upload(request))


@app.post("/uploads/<upload_id>/files")
def add_files(upload_id: str):
    upload_id = uploads.parse_upload_id(upload_id)
    request = parse_model(json_body(app), uploads.AddFilesRequest)
    return json_response(201, uploads.add_files(upload_id, request))


@app.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> dict:
    return uploads.upload_status(uploads.parse_upload_id(upload_id))


lambda_handler = api_handler(app)
