"""Fault injection at the botocore level, on the clients ``imgsvc.aws`` hands out.

A plan says which operation fails, how, how many times and from which attempt on. Faults are
answered from a ``before-send`` handler, the last step before the HTTP request, so botocore's
own retry logic (the service's clients use botocore's defaults: the legacy mode, 10 attempts
for DynamoDB, 5 for S3, on throttling, 5xx and socket errors) runs exactly as in production.

moto's in-process mock is itself a ``before-send`` handler, and botocore calls every handler of
the event (it takes the first answer), so a fault answered next to moto would still let moto
execute the request. The plan therefore takes moto's handler off the client and calls it
itself when no fault applies.

Kinds:
- ``throttle``: DynamoDB 400 ProvisionedThroughputExceededException (botocore retries it);
- ``conflict``: DynamoDB 400 TransactionCanceledException, one item TransactionConflict
  (botocore does not retry it; ``records._transact`` does);
- ``server_error``: S3 500 InternalError (botocore retries it);
- ``lost_response``: the request runs, then its answer is lost (ReadTimeoutError in the HTTP
  layer): botocore sends it again, as it does for a real read timeout;
- ``commit_timeout``: an ``after-call`` handler raises ReadTimeoutError after the call
  succeeded (the write happened, the caller saw a timeout; botocore does not retry there).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

# botocore's legacy retry mode (botocore/data/_retry.json): attempts per call, first included.
DYNAMODB_ATTEMPTS = 10
S3_ATTEMPTS = 5

_KINDS = frozenset({"throttle", "conflict", "server_error", "lost_response", "commit_timeout"})


class _Raw(io.BytesIO):
    """The raw body botocore reads a response from (``stream`` like urllib3's)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(64 * 1024):
            yield chunk


@dataclass
class Fault:
    operation: str  # botocore's operation name: TransactWriteItems, CopyObject, ...
    kind: str
    times: int = 1  # how many matching attempts (calls, for commit_timeout) fail
    skip: int = 0  # let this many matching attempts through first
    seen: int = 0
    injected: int = 0

    def due(self) -> bool:
        self.seen += 1
        if self.skip < self.seen <= self.skip + self.times:
            self.injected += 1
            return True
        return False


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    enabled: bool = True
    attempts: Counter[str] = field(default_factory=Counter)  # HTTP attempts per operation
    _installed: list[tuple[Any, Any]] = field(default_factory=list)

    def add(self, operation: str, kind: str, *, times: int = 1, skip: int = 0) -> Fault:
        if kind not in _KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(operation, kind, times, skip)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()
        self.attempts.clear()

    # ------------------------------------------------------------------ wiring
    def install(self, client: Any) -> None:
        from moto.core.models import botocore_stubber

        events = client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._before_send, unique_id="imgsvc-faults-send")
        events.register("after-call", self._after_call, unique_id="imgsvc-faults-after")
        self._installed.append((client, botocore_stubber))

    def uninstall(self) -> None:
        for client, stubber in self._installed:
            events = client.meta.events
            events.unregister("before-send", unique_id="imgsvc-faults-send")
            events.unregister("after-call", unique_id="imgsvc-faults-after")
            events.register("before-send", stubber)
        self._installed.clear()

    def _due(self, operation: str, kinds: frozenset[str]) -> Fault | None:
        if not self.enabled:
            return None
        for fault in self.faults:
            if fault.operation == operation and fault.kind in kinds and fault.due():
                return fault
        return None

    def _before_send(self, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        from moto.core.models import botocore_stubber

        operation = event_name.rsplit(".", 1)[-1]
        self.attempts[operation] += 1
        fault = self._due(operation, _KINDS - {"commit_timeout"})
        if fault is None:
            return botocore_stubber(event_name, request, **kwargs)
        if fault.kind == "lost_response":
            botocore_stubber(event_name, request, **kwargs)  # it ran; the answer never came
            raise ReadTimeoutError(endpoint_url=request.url)
        return _response(fault.kind, request)

    def _after_call(self, event_name: str, **_: Any) -> None:
        if self._due(event_name.rsplit(".", 1)[-1], frozenset({"commit_timeout"})):
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


def _response(kind: str, request: Any) -> AWSResponse:
    if kind == "server_error":
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message>"
            b"<RequestId>FAULT</RequestId></Error>"
        )
        headers = {"Content-Type": "application/xml", "x-amz-request-id": "FAULT"}
        return AWSResponse(request.url, 500, headers, _Raw(body))
    prefix = "com.amazonaws.dynamodb.v20120810#"
    if kind == "throttle":
        doc: dict[str, Any] = {
            "__type": f"{prefix}ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was "
            "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        }
    else:  # conflict: the first item conflicts with another transaction
        count = len(json.loads(request.body or b"{}").get("TransactItems", [])) or 1
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}]
        reasons += [{"Code": "None"}] * (count - 1)
        doc = {
            "__type": f"{prefix}TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific "
            f"reasons [{', '.join(r['Code'] for r in reasons)}]",
            "CancellationReasons": reasons,
        }
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "FAULT"}
    return AWSResponse(request.url, 400, headers, _Raw(json.dumps(doc).encode()))
