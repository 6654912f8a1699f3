"""Fixtures shared by unit and handler tests: moto-backed AWS built from template.yaml."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pi_heif
import pytest

from tests.support.photo_server import PhotoServer

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "photos"
EVENTS = ROOT / "events"

# Set before any handler module is imported: Powertools reads these at import time.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "imgsvc-test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "imgsvc")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# Tests open HEIF photos with Image.open as the service does (imgsvc.imaging registers the
# same plugin on first use, whichever test runs first).
pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


class TickingClock:
    """records.now_utc for in-process tests: noon UTC of today, one millisecond later on each
    call. Order is kept (each record is newer than the last) and no UTC midnight can fall
    inside a test, whenever the suite runs."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> TickingClock:
    from imgsvc import records

    ticking = TickingClock()
    monkeypatch.setattr(records, "now_utc", ticking)
    return ticking


@pytest.fixture(scope="session")
def manifest() -> dict[str, dict[str, Any]]:
    return {e["file"]: e for e in json.loads((PHOTOS / "manifest.json").read_text())}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """moto's in-process AWS with the table and bucket of template.yaml."""
    from moto import mock_aws

    from imgsvc import aws as aws_clients
    from local_stack.resources import create_from_template

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "imgsvc-test",
        "BUCKET_NAME": "imgsvc-test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "ALLOW_PRIVATE_URLS"):
        monkeypatch.delenv(name, raising=False)
    aws_clients.reset()
    with mock_aws():
        import boto3

        create_from_template(
            ROOT / "template.yaml",
            dynamodb=boto3.client("dynamodb"),
            s3=boto3.client("s3"),
            table_name="imgsvc-test",
            bucket_name="imgsvc-test",
        )
        yield SimpleNamespace(
            s3=boto3.client("s3"),
            table=boto3.resource("dynamodb").Table("imgsvc-test"),
            bucket="imgsvc-test",
        )
    aws_clients.reset()


@pytest.fixture(scope="session")
def photo_server() -> Iterator[PhotoServer]:
    """tests/data/photos/ and generated files over HTTP on 127.0.0.1, counting bytes sent."""
    server = PhotoServer()
    server.start()
    yield server
    server.stop()


def load_handler(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (every handler is app.py)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{name}_{uuid.uuid4().hex}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    base: str = "api_request.json",
) -> dict[str, Any]:
    """A REST API proxy event from events/api_request.json with this method, path and body."""
    event = load_event(base)
    event["httpMethod"] = method
    event["path"] = path
    event["resource"] = path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/prod{path}"
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    merged = {**event["headers"], **(headers or {})}
    event["headers"] = merged
    event["multiValueHeaders"] = {k: [v] for k, v in merged.items()}
    if body is None:
        event["body"] = None
    elif isinstance(body, bytes):
        import base64

        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def call(handler: ModuleType, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """Invoke a handler; returns (status, parsed JSON body or raw text, headers)."""
    response = handler.lambda_handler(event, LambdaContext())
    body = response.get("body") or ""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body
    return response["statusCode"], parsed, response_headers(response)


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """Headers of a proxy response; REST API responses may use multiValueHeaders."""
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return headers
