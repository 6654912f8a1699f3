"""The local stack over real HTTP: API Gateway's checks, clean shutdown, and S3 uploads
(presigned POSTs to moto's server) reaching the ingest function."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackProcess

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_status_needs_no_key(stack: LocalStackProcess) -> None:
    response = requests.get(stack.url("/status"), timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-amzn-RequestId"]


def test_keyed_route_without_key_is_403(stack: LocalStackProcess) -> None:
    for headers in ({}, {"x-api-key": "not-the-key"}):
        response = requests.get(stack.url("/stats"), headers=headers, timeout=10)
        assert response.status_code == 403
        body = response.json()
        assert (body["status"], body["code"]) == ("error", "forbidden")
        assert body["message"]


def test_unknown_route_is_404(stack: LocalStackProcess) -> None:
    response = stack.session.get(stack.url("/no/such/route"), timeout=10)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_template_resources_exist_in_moto(stack: LocalStackProcess) -> None:
    table = stack.dynamodb.describe_table(TableName=stack.table_name)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    stack.s3.head_bucket(Bucket=stack.bucket_name)
    assert stack.info["allow_private_urls"] is True


def test_sigint_stops_the_stack(stack_factory: Callable[..., LocalStackProcess]) -> None:
    other = stack_factory()
    assert other.stop(signal.SIGINT, timeout=5) == 0  # stop() fails the test if it hangs
    assert not other.ready_file.exists()
    assert "stopped" in other.log()


# ---------------------------------------------------------------- S3 uploads -> ingest
INGEST_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Failures:
    Type: AWS::SQS::Queue
  Ingest:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: ingest/
      Handler: app.lambda_handler
      Environment:
        Variables:
          RECORD_DIR: %(record_dir)s
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: uploads/}]}}
"""

FAKE_INGEST = """\
import json
import os
import pathlib
from urllib.parse import unquote_plus


def lambda_handler(event, context):
    record = event["Records"][0]
    key = unquote_plus(record["s3"]["object"]["key"])
    out = pathlib.Path(os.environ["RECORD_DIR"]) / f"{context.aws_request_id}.json"
    out.write_text(json.dumps(event))
    if "fail" in key:
        raise RuntimeError(f"cannot ingest {key}")
"""


@pytest.fixture(scope="module")
def ingest_stack(
    tmp_path_factory: pytest.TempPathFactory, stack_factory: Callable[..., LocalStackProcess]
) -> tuple[LocalStackProcess, Path]:
    """A stack of a small template: a bucket whose uploads/ go to a fake ingest function
    that records each event it gets (and fails for keys containing "fail")."""
    tmp_path = tmp_path_factory.mktemp("ingest")
    records = tmp_path / "records"
    records.mkdir()
    project = tmp_path / "project"
    (project / "ingest").mkdir(parents=True)
    (project / "ingest" / "app.py").write_text(FAKE_INGEST)
    template = project / "template.yaml"
    template.write_text(INGEST_TEMPLATE % {"record_dir": json.dumps(str(records))})
    return stack_factory(template=template), records


def _wait_for(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _events(records: Path, prefix: str) -> list[dict[str, Any]]:
    """The S3 records the fake ingest function received, for keys under prefix."""
    found = [json.loads(p.read_text())["Records"][0] for p in records.glob("*.json")]
    return [r for r in found if r["s3"]["object"]["key"].startswith(prefix)]


def test_presigned_post_invokes_the_ingest_function(
    ingest_stack: tuple[LocalStackProcess, Path],
) -> None:
    stack, records = ingest_stack
    post = stack.s3.generate_presigned_post(
        stack.bucket_name, "uploads/u1/${filename}", ExpiresIn=300
    )
    response = requests.post(
        post["url"],
        data=post["fields"],
        files={"file": ("my photo.jpg", b"\xff\xd8 not really a jpeg", "image/jpeg")},
        timeout=10,
    )
    assert response.status_code == 204
    (event,) = _wait_for(lambda: _events(records, "uploads/u1/"))
    assert event["eventName"] == "ObjectCreated:Post"
    assert event["s3"]["bucket"]["name"] == stack.bucket_name
    assert event["s3"]["object"]["key"] == "uploads/u1/my+photo.jpg"  # encoded as S3 does
    assert event["s3"]["object"]["size"] == len(b"\xff\xd8 not really a jpeg")
    # Outside the notification's prefix filter: no invocation. A marker put after it, inside
    # the filter, is the barrier: once its event arrived, an event for the first would have too.
    stack.s3.put_object(Bucket=stack.bucket_name, Key="elsewhere/x.jpg", Body=b"x")
    stack.s3.put_object(Bucket=stack.bucket_name, Key="uploads/u1/marker.jpg", Body=b"x")
    _wait_for(lambda: _events(records, "uploads/u1/marker.jpg"))
    assert len(_events(records, "")) == len(_events(records, "uploads/"))


def test_failed_ingest_is_retried_then_sent_to_the_failure_queue(
    ingest_stack: tuple[LocalStackProcess, Path],
) -> None:
    stack, records = ingest_stack
    stack.s3.put_object(Bucket=stack.bucket_name, Key="uploads/u2/fail.jpg", Body=b"x")
    queue_url = stack.info["failure_queues"]["Ingest"]
    assert queue_url == stack.info["queues"]["Failures"]  # the template's destination

    def failure() -> list[dict[str, Any]]:
        return stack.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])

    (message,) = _wait_for(failure)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorMessage"] == "cannot ingest uploads/u2/fail.jpg"
    assert len(_events(records, "uploads/u2/")) == 2  # MaximumRetryAttempts: 1: 2 attempts
    _wait_for(lambda: "moved to the failure queue" in stack.log())  # logged after the send


def test_presigned_post_policies_are_enforced_as_s3_does(
    ingest_stack: tuple[LocalStackProcess, Path],
) -> None:
    """The moto endpoint refuses a POST that breaks its policy with S3's status and error, and
    stores nothing; a POST within it is stored (local_stack/s3_post_policy.py)."""
    stack, _ = ingest_stack
    key = "uploads/u3/big.jpg"
    post = stack.s3.generate_presigned_post(
        stack.bucket_name,
        key,
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[["content-length-range", 1, 10], {"Content-Type": "image/jpeg"}],
        ExpiresIn=300,
    )
    refused = [
        ({**post["fields"], "Content-Type": "text/html"}, b"x", 403, "AccessDenied"),
        (post["fields"], b"x" * 1000, 400, "EntityTooLarge"),
        ({**post["fields"], "key": "uploads/u3/other.jpg"}, b"x", 403, "AccessDenied"),
        ({**post["fields"], "signature": "AAAA"}, b"x", 403, "SignatureDoesNotMatch"),
    ]
    for fields, data, status, code in refused:
        response = requests.post(post["url"], data=fields, files={"file": data}, timeout=10)
        assert response.status_code == status, response.text
        assert f"<Code>{code}</Code>" in response.text
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix="uploads/u3/")
    assert listed.get("KeyCount") == 0
    response = requests.post(
        post["url"], data=post["fields"], files={"file": b"x" * 10}, timeout=10
    )
    assert response.status_code == 204
    head = stack.s3.head_object(Bucket=stack.bucket_name, Key=key)
    assert (head["ContentLength"], head["ContentType"]) == (10, "image/jpeg")


def test_photo_server_counts_bytes(photo_server: Any) -> None:
    url = photo_server.add("generated.bin", b"\0" * 300_000)
    with requests.get(url, stream=True, timeout=10) as response:
        response.raw.read(1000)
    photo_server.wait_idle()
    partial = photo_server.bytes_sent("generated.bin")
    assert partial < 300_000
    assert requests.get(photo_server.url("chelsea_canon.jpg"), timeout=10).status_code == 200
    photo_server.wait_idle()
    size = (ROOT / "tests/data/photos/chelsea_canon.jpg").stat().st_size
    assert photo_server.bytes_sent("chelsea_canon.jpg") == size
    assert requests.get(photo_server.url("../conftest.py"), timeout=10).status_code == 404
    redirect = photo_server.redirect("moved", photo_server.url("chelsea_canon.jpg"))
    assert requests.get(redirect, allow_redirects=False, timeout=10).status_code == 302
