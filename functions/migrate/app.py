"""MigrationQueue messages: run a registered migration on a batch of image ids each.

Partial batch responses (ReportBatchItemFailures): only the messages whose ids failed come
back after the visibility timeout; after maxReceiveCount receives they go to the DLQ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from imgsvc.migrations import process_message
from imgsvc.observability import logger, tracer

# A batch whose every message failed is reported item by item too, not raised.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> dict[str, int]:
    return process_message(
        json.loads(record.body), receive_count=int(record.attributes.approximate_receive_count)
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
