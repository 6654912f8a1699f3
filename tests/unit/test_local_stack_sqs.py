"""The local stack's SQS event sources (moto in-process): template reading, the event shape,
partial batch responses, retries and the queue's own redrive to its dead-letter queue."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from local_stack import resources
from local_stack.runtime import Runtime
from local_stack.sqs_events import SqsPoller, failed_ids
from local_stack.template import read_stack

ENDPOINT = "https://sqs.us-east-1.amazonaws.com"  # moto's in-process queue URLs use it

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.13, Timeout: 5}
Resources:
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dead.Arn
        maxReceiveCount: 2
  Dead:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 2}
Outputs:
  WorkUrl:
    Value: !Ref Work
  Name:
    Value: !Ref Worker
"""

HANDLER = """\
import json, os

def handler(event, context):
    failures = []
    with open(os.environ["RECORD_FILE"], "a") as f:
        for record in event["Records"]:
            f.write(json.dumps(record) + "\\n")
            if json.loads(record["body"]).get("fail"):
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""


@pytest.fixture
def spec(tmp_path: Path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(textwrap.dedent(HANDLER))
    return read_stack(tmp_path / "template.yaml", aws_endpoint=ENDPOINT, stack_name="unit")


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        yield boto3.client("sqs")


def test_the_event_source_queue_redrive_and_outputs_come_from_the_template(spec) -> None:
    (sub,) = spec.sqs_subscriptions
    assert (sub.function, sub.queue, sub.batch_size, sub.report_failures) == (
        "Worker",
        "Work",
        3,
        True,
    )
    assert sub.max_concurrency == 2
    work = spec.queues["Work"]
    assert (work.dead_letter_queue, work.max_receive_count) == ("Dead", 2)
    assert json.loads(work.attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:unit-dead",
        "maxReceiveCount": 2,
    }
    assert spec.outputs == {"WorkUrl": spec.queue_url("Work"), "Name": "Worker"}


def test_partial_batch_responses() -> None:
    ids = {"a", "b"}
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    assert failed_ids(None, ids) == set()  # no response: all succeeded
    # As Lambda: an identifier that is not in the batch fails the whole batch.
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) is None
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) is None
    assert failed_ids("nope", ids) is None


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def test_failed_messages_come_back_then_go_to_the_dead_letter_queue(
    spec, sqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_file = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RECORD_FILE", str(record_file))
    # The template names Work before its DLQ: created in the order a RedrivePolicy needs.
    resources.create_all(spec, dynamodb=None, s3=None, sqs=sqs)
    url = spec.queue_url("Work")
    for body in ({"n": 1}, {"n": 2, "fail": True}, {"n": 3}):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    poller = SqsPoller(
        spec.sqs_subscriptions[0],
        spec,
        Runtime(spec.functions, region="us-east-1"),
        sqs,
        retry_delay=1,
        concurrency=1,
    )
    poller.start()
    try:
        deadline = time.monotonic() + 15
        dead: list[dict[str, Any]] = []
        while not dead and time.monotonic() < deadline:
            dead = _receive_all(sqs, spec.queue_url("Dead"))
            time.sleep(0.2)
    finally:
        poller.stop()
    calls = [json.loads(line) for line in record_file.read_text().splitlines()]
    bodies = [json.loads(c["body"])["n"] for c in calls]
    # maxReceiveCount 2: the failing message is handled twice, the others once.
    assert sorted(bodies) == [1, 2, 2, 3]
    first = calls[0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:unit-work"
    assert {"messageId", "receiptHandle", "md5OfBody", "awsRegion"} <= set(first)
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    second_try = [c for c in calls if json.loads(c["body"])["n"] == 2][1]
    assert second_try["attributes"]["ApproximateReceiveCount"] == "2"
    (message,) = dead
    assert json.loads(message["Body"]) == {"n": 2, "fail": True}
    assert _receive_all(sqs, url) == []  # the successes were deleted
