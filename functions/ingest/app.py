"""S3 ObjectCreated under the uploads prefix: extract metadata and record the image."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event

from imgsvc.ingest import ingest_upload_object
from imgsvc.observability import logger, tracer
from imgsvc.storage import decode_event_key


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The bucket's s3:TestEvent (sent when notifications are configured) has no Records.
    records = S3Event(event).records if event.get("Records") else []
    results = [
        ingest_upload_object(decode_event_key(r.s3.get_object.key), r.s3.get_object.size)
        for r in records
    ]
    logger.info("ingest finished", extra={"results": results})
    return {"results": results}
