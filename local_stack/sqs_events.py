"""SQS event sources: functions with ``Events: Type: SQS`` get batches from their queue.

As Lambda's event source mapping: pollers receive up to ``BatchSize`` messages, invoke the
function synchronously with the SQS event, and delete what succeeded. A failed invocation
leaves the whole batch; with ``ReportBatchItemFailures`` the function's
``batchItemFailures`` leave only those messages (an identifier that names no message of the
batch fails the whole batch, as in Lambda). Left messages come back when their visibility
timeout ends; the queue's RedrivePolicy then moves them to its dead-letter queue after
``maxReceiveCount`` receives (moto's SQS does that itself, on receive).

Not as in AWS: a failed message comes back after ``retry_delay`` seconds, not the queue's
visibility timeout (minutes for a function with a long Timeout), and the pollers are at most
``concurrency`` (Lambda scales to ``ScalingConfig.MaximumConcurrency``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from typing import Any

from local_stack.cfn import ACCOUNT_ID
from local_stack.runtime import InvocationError, Invoker
from local_stack.spec import SqsSubscription, StackSpec

log = logging.getLogger("local_stack")


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda sends for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def failed_ids(payload: Any, message_ids: set[str]) -> set[str] | None:
    """The messages a partial batch response leaves on the queue; None: the whole batch
    failed (a malformed response, or an identifier not in the batch)."""
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    out = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in message_ids:
            return None
        out.add(item)
    return out


class SqsPoller:
    """``concurrency`` threads for one SQS event source: receive, invoke, delete or leave."""

    def __init__(
        self,
        subscription: SqsSubscription,
        spec: StackSpec,
        runtime: Invoker,
        sqs: Any,
        *,
        retry_delay: int,
        concurrency: int = 1,
    ) -> None:
        self.subscription = subscription
        self.function = spec.functions[subscription.function]
        self.queue_url = spec.queue_url(subscription.queue)
        self.queue_arn = (
            f"arn:aws:sqs:{spec.region}:{ACCOUNT_ID}:{spec.queues[subscription.queue].name}"
        )
        self.region = spec.region
        self.runtime = runtime
        self.sqs = sqs
        self.retry_delay = retry_delay
        if subscription.max_concurrency:
            concurrency = min(concurrency, subscription.max_concurrency)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{subscription.function}-{i}", daemon=True)
            for i in range(max(1, concurrency))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Stop after the current receive (at most 1 s of long polling) or invocation."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, self.subscription.batch_size),
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as err:
                if self._stop.is_set():
                    return
                log.warning("%s: cannot receive from SQS: %s", self.function.logical_id, err)
                self._stop.wait(1)
                continue
            if self._stop.is_set():
                return  # not deleted: they come back after their visibility timeout
            if messages:
                self.deliver(messages)

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        """Invoke the function with one batch; delete the messages that succeeded."""
        name = self.function.logical_id
        ids = {m["MessageId"] for m in messages}
        try:
            invocation = self.runtime.invoke(
                name, sqs_event(messages, self.queue_arn, self.region), request_id=str(uuid.uuid4())
            )
        except InvocationError as err:
            log.warning("%s failed on %d messages (%s): they come back", name, len(ids), err)
            failed: set[str] | None = ids
        else:
            failed = (
                failed_ids(invocation.payload, ids) if self.subscription.report_failures else set()
            )
            if failed is None:
                log.warning("%s: malformed batchItemFailures: the whole batch fails", name)
                failed = ids
        for m in messages:
            if m["MessageId"] in failed:
                # Back on the queue after retry_delay (the queue's visibility timeout in AWS).
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=self.retry_delay,
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        log.info("%s: %d of %d messages done", name, len(ids) - len(failed), len(ids))
