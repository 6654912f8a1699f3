"""S3 event notifications -> the subscribed function, with Lambda's async retries.

In AWS, S3 invokes the function asynchronously; Lambda retries a failed event
(EventInvokeConfig.MaximumRetryAttempts, default 2) and then sends it to the on-failure
destination. Here moto's S3 sends the notification to a local SQS queue (moto delivers
bucket notifications to SQS itself, for PUT, presigned POST, copy and multipart uploads);
a poller thread receives each message and invokes the handler. A failed message is left
on the queue and comes back after ``retry_delay`` seconds (its visibility timeout); after
the last attempt it goes to the failure queue: the template's destination queue if it has
one, else a local one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from local_stack.cfn import ACCOUNT_ID
from local_stack.runtime import InvocationError, Invoker
from local_stack.spec import Function, StackSpec
from local_stack.template import kebab

log = logging.getLogger("local_stack")


@dataclass(frozen=True)
class Delivery:
    """Where one function's S3 events wait, and where they go when every attempt failed."""

    function: str
    queue_url: str
    failure_queue_url: str
    failure_queue_name: str


def _arn(region: str, queue_name: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_name}"


def configure(spec: StackSpec, *, s3: Any, sqs: Any, retry_delay: int) -> list[Delivery]:
    """Create the event and failure queues and point each bucket's notifications at them.

    The template's own queues must exist already (resources.create_all).
    """
    deliveries: dict[str, Delivery] = {}
    by_bucket: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for index, subscription in enumerate(spec.subscriptions):
        function = spec.functions[subscription.function]
        if function.logical_id not in deliveries:
            deliveries[function.logical_id] = _queues(spec, function, sqs, retry_delay)
        queue_name = deliveries[function.logical_id].queue_url.rsplit("/", 1)[1]
        config: dict[str, Any] = {
            "Id": f"{function.logical_id}-{index}",
            "QueueArn": _arn(spec.region, queue_name),
            "Events": list(subscription.events),
        }
        if subscription.filter_rules:
            rules = [{"Name": name, "Value": value} for name, value in subscription.filter_rules]
            config["Filter"] = {"Key": {"FilterRules": rules}}
        by_bucket[subscription.bucket].append(config)
    for bucket_id, configs in by_bucket.items():
        s3.put_bucket_notification_configuration(
            Bucket=spec.buckets[bucket_id].name,
            NotificationConfiguration={"QueueConfigurations": configs},
        )
    return list(deliveries.values())


def _queues(spec: StackSpec, function: Function, sqs: Any, retry_delay: int) -> Delivery:
    prefix = f"{spec.stack_name}-{kebab(function.logical_id)}"
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-s3-events",
        Attributes={"VisibilityTimeout": str(retry_delay)},
    )["QueueUrl"]
    failure_id = function.async_config.failure_queue
    if failure_id:
        failure_name = spec.queues[failure_id].name
        failure_url = spec.queue_url(failure_id)
    else:
        failure_name = f"{prefix}-failures"
        failure_url = sqs.create_queue(QueueName=failure_name)["QueueUrl"]
    return Delivery(function.logical_id, queue_url, failure_url, failure_name)


class Poller:
    """One thread per subscribed function: receive, invoke, delete or retry or give up."""

    def __init__(
        self,
        delivery: Delivery,
        spec: StackSpec,
        runtime: Invoker,
        sqs: Any,
        *,
        retry_delay: int,
        concurrency: int = 1,
    ) -> None:
        self.delivery = delivery
        # Lambda invokes a function for several S3 events at once.
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="s3-event")
        self.function = spec.functions[delivery.function]
        self.region = spec.region
        self.runtime = runtime
        self.sqs = sqs
        self.retry_delay = retry_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"s3-events-{delivery.function}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the current receive (at most 1 s of long polling) or invocation."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.sqs.receive_message(
                    QueueUrl=self.delivery.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=self.retry_delay,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except Exception as err:
                if self._stop.is_set():
                    return
                log.warning("%s: cannot receive S3 events: %s", self.delivery.function, err)
                self._stop.wait(1)
                continue
            messages = response.get("Messages", [])
            if self._stop.is_set():
                return  # not deleted: they stay on the queue
            list(self._pool.map(self.deliver, messages))

    def deliver(self, message: dict[str, Any]) -> None:
        """Invoke the function with one message's S3 event, as Lambda's async invoke would."""
        event = json.loads(message["Body"])
        if event.get("Event") == "s3:TestEvent":  # sent when notifications are configured
            self._delete(message)
            return
        _complete_records(event)
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        attempts = self.function.async_config.max_retry_attempts + 1
        request_id = str(uuid.uuid4())
        keys = ", ".join(
            unquote_plus(r.get("s3", {}).get("object", {}).get("key", "?"))
            for r in event.get("Records", [])
        )
        try:
            invocation = self.runtime.invoke(self.function.logical_id, event, request_id=request_id)
        except InvocationError as err:
            if attempt < attempts:
                log.warning(
                    "%s failed on %s (attempt %d of %d): retrying in %d s",
                    self.function.logical_id,
                    keys,
                    attempt,
                    attempts,
                    self.retry_delay,
                )
                return  # the message becomes visible again after its visibility timeout
            self._give_up(message, event, err, request_id, attempt)
            return
        log.info("%s handled %s (%.0f ms)", self.function.logical_id, keys, invocation.duration_ms)
        self._delete(message)

    def _give_up(
        self,
        message: dict[str, Any],
        event: dict[str, Any],
        err: InvocationError,
        request_id: str,
        attempt: int,
    ) -> None:
        if self.function.async_config.failure_format == "event":  # a DeadLetterQueue
            body: dict[str, Any] = event
        else:  # an on-failure destination gets Lambda's invocation record
            body = {
                "version": "1.0",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "requestContext": {
                    "requestId": request_id,
                    "functionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:"
                    f"{self.function.logical_id}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": attempt,
                },
                "requestPayload": event,
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "responsePayload": err.payload(request_id),
            }
        self.sqs.send_message(
            QueueUrl=self.delivery.failure_queue_url, MessageBody=json.dumps(body)
        )
        self._delete(message)
        log.error(
            "%s failed %d times: event moved to the failure queue %s (%s)",
            self.function.logical_id,
            attempt,
            self.delivery.failure_queue_name,
            err,
        )

    def _delete(self, message: dict[str, Any]) -> None:
        self.sqs.delete_message(
            QueueUrl=self.delivery.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )


def _complete_records(event: dict[str, Any]) -> None:
    """Make moto's event look like S3's: the fields moto leaves out, S3's key encoding."""
    for record in event.get("Records", []):
        record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault(
            "responseElements",
            {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "local"},
        )
        s3 = record.setdefault("s3", {})
        s3.setdefault("bucket", {}).setdefault("ownerIdentity", {"principalId": "LOCAL"})
        obj = s3.setdefault("object", {})
        obj.setdefault("sequencer", f"{time.time_ns():X}")
        # S3 form-encodes the key but keeps its slashes (uploads/a+b.jpg); moto encodes them.
        if "key" in obj:
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
