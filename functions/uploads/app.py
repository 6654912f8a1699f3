"""Upload sessions: presigned S3 POSTs (POST /uploads, POST /uploads/{id}/files) and their state."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from imgsvc import catalog, uploads
from imgsvc.http import api_handler, create_app, responses
from imgsvc.schemas import UploadId, UploadSession, UploadState

app = create_app()


@app.post(
    "/uploads",
    summary="Start an upload session",
    description="One presigned S3 POST per file (up to 50 a request): POST each file straight "
    "to its `url` with every one of its `fields`, the file last. Then follow "
    "GET /uploads/{upload_id}.",
    status_code=201,
    responses=responses(
        {201: ("The session and its presigned POSTs.", UploadSession)},
        {
            409: "A file name appears twice in the request, or more files than a session holds.",
            413: "A declared size is over the upload limit (a deployment setting).",
        },
    ),
    tags=["uploads"],
)
def create_upload(request: Annotated[uploads.CreateUploadRequest, Body()]) -> UploadSession:
    return uploads.create_upload(request)


@app.post(
    "/uploads/<upload_id>/files",
    summary="Add files to an upload session",
    description="More presigned POSTs for a live session (a session holds at most 1,000 files).",
    status_code=201,
    responses=responses(
        {201: ("The new presigned POSTs.", UploadSession)},
        {
            404: "No session has this id.",
            409: "A file name is already in the session, or the session is full.",
            410: "The session has expired: start a new one.",
            413: "A declared size is over the upload limit.",
        },
    ),
    tags=["uploads"],
)
def add_files(
    upload_id: UploadId, request: Annotated[uploads.AddFilesRequest, Body()]
) -> UploadSession:
    return uploads.add_files(upload_id, request)


@app.get(
    "/uploads/<upload_id>",
    summary="The state of each file of a session",
    description="`pending` until the file arrives and is processed, then `done` (with its image "
    "id, and `duplicate` when the content was already known) or `rejected` (with the reason).",
    responses=responses({200: ("Each file's state.", UploadState)}, {404: "No such session."}),
    tags=["uploads"],
)
def upload_status(upload_id: UploadId) -> UploadState:
    return catalog.link_upload_state(uploads.upload_status(upload_id))


lambda_handler = api_handler(app)
