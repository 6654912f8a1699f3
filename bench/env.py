"""The process environment and moto's in-process AWS: nothing here can reach real AWS."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
PHOTOS = ROOT / "tests" / "data" / "photos"
CORE_LAYER = ROOT / "layers" / "core" / "python"
TABLE = "imgsvc-bench"
BUCKET = "imgsvc-bench"
REGION = "us-east-1"

# Service settings and Powertools options the bench runs with (also given to the import-time
# subprocesses). Powertools reads its variables when a handler module is imported.
SERVICE_ENV = {
    "TABLE_NAME": TABLE,
    "BUCKET_NAME": BUCKET,
    "ALLOW_PRIVATE_URLS": "true",  # the photo server listens on 127.0.0.1
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "imgsvc-bench",
    "POWERTOOLS_SERVICE_NAME": "imgsvc",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

# Dummy credentials, a fixed region, and no shared config: even a stray call outside moto
# could not authenticate against a real account.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def configure_environment() -> None:
    """Set the bench's environment; call before any boto3 client is created."""
    for name in list(os.environ):
        # AWS_ENDPOINT_URL(_<SERVICE>) would send boto3 elsewhere; a profile or session
        # token would select other credentials.
        if name.startswith("AWS_ENDPOINT_URL") or name in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
        ):
            del os.environ[name]
    os.environ.update(AWS_ENV)
    os.environ.update(SERVICE_ENV)


@contextmanager
def moto_stack() -> Iterator[None]:
    """moto's in-process AWS with template.yaml's table and bucket (as tests/conftest.py)."""
    import boto3
    from moto import mock_aws

    from imgsvc import aws
    from local_stack.resources import create_from_template

    aws.reset()  # clients created under another mock would not see this one's state
    try:
        with mock_aws():
            create_from_template(
                TEMPLATE,
                dynamodb=boto3.client("dynamodb"),
                s3=boto3.client("s3"),
                table_name=TABLE,
                bucket_name=BUCKET,
                region=REGION,
            )
            yield
    finally:
        aws.reset()


@dataclass
class Requests:
    """API calls by operation, and the items their responses carried."""

    ops: Counter[str] = field(default_factory=Counter)
    items: int = 0

    @property
    def total(self) -> int:
        return sum(self.ops.values())


@contextmanager
def count_requests(client: Any, service: str) -> Iterator[Requests]:
    """Count the client's API calls (botocore's before-call.<service>.* event) and the items
    in their responses (after-call: Item, Items, Responses of BatchGetItem)."""
    counts = Requests()

    def _before(event_name: str, **_: Any) -> None:
        counts.ops[event_name.rsplit(".", 1)[-1]] += 1

    def _after(parsed: dict[str, Any], **_: Any) -> None:
        counts.items += len(parsed.get("Items") or []) + int("Item" in parsed)
        counts.items += sum(len(v) for v in (parsed.get("Responses") or {}).values())

    handlers = ((f"before-call.{service}.*", _before), (f"after-call.{service}.*", _after))
    for event, handler in handlers:
        client.meta.events.register(event, handler)
    try:
        yield counts
    finally:
        for event, handler in handlers:
            client.meta.events.unregister(event, handler)


class Stopwatch:
    """Wall seconds during which at least one wrapped call was running: nested calls (e.g.
    transact_write_items calling put_item) and concurrent ones (the threads /stats reads
    with) are counted once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._active = 0
        self._since = 0.0
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if not self._active:
                    self._since = time.perf_counter()
                self._active += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._active -= 1
                    if not self._active:
                        self.seconds += time.perf_counter() - self._since

        return wrapper

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


@contextmanager
def moto_dynamodb_time() -> Iterator[Stopwatch]:
    """Time spent inside moto's DynamoDB emulation (parsing the request, its backend, building
    the response): the emulator's cost, which real DynamoDB would replace with its own.

    moto answers a Query by sorting every item of the table (``Table.all_items``), so its
    Query costs grow with the table where DynamoDB's grow with the partition read.
    """
    from moto.dynamodb.responses import DynamoHandler

    watch = Stopwatch()
    # Every request goes through BaseResponse._dispatch; patched on DynamoHandler only.
    with mock.patch.object(DynamoHandler, "_dispatch", watch.wrap(DynamoHandler._dispatch)):
        yield watch
