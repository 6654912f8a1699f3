"""Faults injected into ingest, import, crop and delete at the botocore level (tests/support/
faults.py): DynamoDB throttling, cancelled transactions, S3 errors, lost answers and timeouts
after a commit. After Lambda's retries (the S3-triggered ingest: up to 3 attempts) or the
client's retry of the same request (the API routes, after a 5xx), the table and the bucket equal
a clean run of the same inputs in a fresh table and bucket.
"""

from __future__ import annotations

import json
import os
import types
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import botocore.endpoint
import pytest

from imgsvc import aws as clients
from imgsvc import records, stats
from local_stack.resources import create_from_template
from tests.conftest import PHOTOS, ROOT, LambdaContext, api_event, call, load_handler
from tests.integration.test_ingest import s3_event, start_upload
from tests.support.faults import DYNAMODB_ATTEMPTS, S3_ATTEMPTS, FaultPlan

PHOTO = "chelsea_canon.jpg"  # has a camera: all four counters
LAMBDA_ATTEMPTS = 3  # IngestFunction's EventInvokeConfig: MaximumRetryAttempts 2
CLIENT_ATTEMPTS = 3
BOX = {"left": 10, "top": 10, "right": 90, "bottom": 70}
# Values that differ between two runs by design: times, random ids, and the delete guard's
# generation (a delete finished by a retry takes the guard over: one generation more).
VOLATILE = frozenset(
    {"created_at", "completed_at", "expire_at", "expires_at", "expires_epoch", "GSI1SK",
     "day", "deleting_at", "upload_id", "gen"}
)  # fmt: skip


@pytest.fixture
def plan(aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultPlan]:
    # No backoff waits: botocore's own (endpoint.time.sleep) and records' transaction retries.
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda s: None))
    monkeypatch.setattr(records, "retry_delay", lambda attempt, rng=None: 0.0)
    faults = FaultPlan()
    faults.install(clients.s3())
    faults.install(clients.ddb_client())
    yield faults
    faults.uninstall()


@pytest.fixture
def handlers(aws) -> dict[str, Any]:
    names = ("uploads", "ingest", "import_image", "crop", "images")
    return {n: load_handler(n) for n in names}


# --------------------------------------------------------------------------- state
def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    return value


def snapshot() -> dict[str, Any]:
    """The table's items (volatile fields out, upload ids masked) and the bucket's keys."""
    settings_table, bucket = os.environ["TABLE_NAME"], os.environ["BUCKET_NAME"]
    table = boto3.resource("dynamodb").Table(settings_table)
    items = []
    for item in clients.all_items(table.scan):
        kept = {k: _plain(v) for k, v in item.items() if k not in VOLATILE}
        if kept["PK"].startswith("UPLOAD#"):
            kept["PK"] = "UPLOAD#*"
        items.append(json.dumps(kept, sort_keys=True, default=str))
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    masked = [f"uploads/*/{k.rsplit('/', 1)[1]}" if k.startswith("uploads/") else k for k in keys]
    return {"items": sorted(items), "objects": sorted(masked)}


def clean_run(plan: FaultPlan, scenario: Callable[[], Any]) -> dict[str, Any]:
    """The scenario without faults, in a fresh table and bucket of the same moto."""
    name = f"clean-{uuid.uuid4().hex[:12]}"
    saved = {k: os.environ[k] for k in ("TABLE_NAME", "BUCKET_NAME")}
    create_from_template(
        ROOT / "template.yaml",
        dynamodb=boto3.client("dynamodb"),
        s3=boto3.client("s3"),
        table_name=name,
        bucket_name=name,
    )
    os.environ.update(TABLE_NAME=name, BUCKET_NAME=name)
    plan.enabled = False
    try:
        scenario()
        return snapshot()
    finally:
        plan.enabled = True
        os.environ.update(saved)


def assert_like_clean(plan: FaultPlan, scenario: Callable[[], Any]) -> None:
    faulty = snapshot()
    assert faulty == clean_run(plan, scenario)
    assert stats.get_stats() == stats.recount()  # no double count


# --------------------------------------------------------------------------- drivers
def lambda_async(handler: Any, event: dict[str, Any]) -> list[Any]:
    """An asynchronous invocation: Lambda retries a failed one, up to 3 attempts in all."""
    outcomes: list[Any] = []
    for _ in range(LAMBDA_ATTEMPTS):
        try:
            outcomes.append(handler.lambda_handler(event, LambdaContext())["results"][0])
            return outcomes
        except Exception as err:  # the invocation failed: Lambda runs it again
            outcomes.append(err)
    return outcomes


def client_retry(handler: Any, event: dict[str, Any]) -> list[tuple[int, Any]]:
    """The client sends the same request again (same headers) after a 5xx."""
    answers = []
    for _ in range(CLIENT_ATTEMPTS):
        status, body, _ = call(handler, event)
        answers.append((status, body))
        if status < 500:
            break
    return answers


def upload_and_ingest(
    handlers: dict[str, Any], filename: str = "a.jpg", then: Callable[[], Any] = lambda: None
) -> list[Any]:
    """POST /uploads, the object lands in S3, ``then`` (the faults), the S3 event's ingest."""
    data = (PHOTOS / PHOTO).read_bytes()
    upload_id = start_upload(handlers, filename)
    then()
    key = f"uploads/{upload_id}/{filename}"
    boto3.client("s3").put_object(Bucket=os.environ["BUCKET_NAME"], Key=key, Body=data)
    return lambda_async(handlers["ingest"], s3_event(os.environ["BUCKET_NAME"], key, len(data)))


def multipart(data: bytes, filename: str = "a.jpg", boundary: str = "b0undary") -> bytes:
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; "
        f'name="image"; filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode()


def post_image(key: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    if key:
        headers["Idempotency-Key"] = key
    return api_event(
        "POST", "/images", body=multipart((PHOTOS / PHOTO).read_bytes()), headers=headers
    )


# --------------------------------------------------------------------------- botocore
def test_the_fault_plan_sees_botocores_retries(plan, aws) -> None:
    """What the legacy retry mode does with each fault (the numbers the tests rely on)."""
    from botocore.exceptions import ClientError

    plan.add("GetItem", "throttle", times=100)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        clients.table().get_item(Key={"PK": "a", "SK": "b"})
    assert plan.attempts["GetItem"] == DYNAMODB_ATTEMPTS
    plan.clear()
    plan.add("PutObject", "server_error", times=100)
    with pytest.raises(ClientError, match="InternalError"):
        clients.s3().put_object(Bucket=aws.bucket, Key="k", Body=b"x")
    assert plan.attempts["PutObject"] == S3_ATTEMPTS
    plan.clear()
    plan.add("TransactWriteItems", "conflict", times=100)
    put = {"Put": {"TableName": "imgsvc-test", "Item": {"PK": "x", "SK": "y"}}}
    with pytest.raises(ClientError, match="TransactionCanceled"):
        clients.ddb_client().transact_write_items(TransactItems=[put])
    assert plan.attempts["TransactWriteItems"] == 1  # not botocore's to retry
    assert "Item" not in aws.table.get_item(Key={"PK": "x", "SK": "y"})  # moto never saw it
    plan.clear()
    plan.add("PutItem", "lost_response")
    clients.table().put_item(Item={"PK": "p", "SK": "q"})
    assert plan.attempts["PutItem"] == 2  # sent again after the read timeout


# --------------------------------------------------------------------------- ingest (S3)
INGEST_FAULTS = [
    # absorbed by botocore's retries within one invocation
    ("TransactWriteItems", "throttle", DYNAMODB_ATTEMPTS - 1, 1),
    ("CopyObject", "server_error", S3_ATTEMPTS - 1, 1),
    ("TransactWriteItems", "lost_response", 1, 1),  # sent again: finds itself committed
    # outlast them: the invocation fails, Lambda's retry completes it
    ("TransactWriteItems", "throttle", DYNAMODB_ATTEMPTS, 2),
    ("TransactWriteItems", "conflict", 6, 2),  # records._transact's 6 attempts
    ("GetItem", "throttle", DYNAMODB_ATTEMPTS, 2),
    ("CopyObject", "server_error", S3_ATTEMPTS, 2),
    ("PutObject", "server_error", S3_ATTEMPTS, 2),  # the thumbnail
    ("DeleteObject", "server_error", S3_ATTEMPTS, 2),  # the upload object, after the commit
    ("TransactWriteItems", "commit_timeout", 1, 2),
    # two invocations fail, the third (Lambda's last) completes it
    ("TransactWriteItems", "throttle", 2 * DYNAMODB_ATTEMPTS, 3),
    ("TransactWriteItems", "commit_timeout", 2, 2),  # the retry commits nothing
]


@pytest.mark.parametrize(("operation", "kind", "times", "invocations"), INGEST_FAULTS)
def test_ingest_after_lambda_retries_equals_a_clean_run(
    plan, aws, handlers, operation, kind, times, invocations
) -> None:
    outcomes = upload_and_ingest(handlers, then=lambda: plan.add(operation, kind, times=times))
    assert len(outcomes) == invocations, outcomes
    assert isinstance(outcomes[-1], dict), outcomes
    assert outcomes[-1]["outcome"] in ("created", "already_processed")
    assert_like_clean(plan, lambda: upload_and_ingest(handlers))


@pytest.mark.parametrize("kind", ["throttle", "commit_timeout", "lost_response"])
def test_a_duplicate_upload_under_faults_counts_once(plan, aws, handlers, kind) -> None:
    upload_and_ingest(handlers, "a.jpg")
    times = DYNAMODB_ATTEMPTS if kind == "throttle" else 1
    outcomes = upload_and_ingest(
        handlers, "b.jpg", then=lambda: plan.add("TransactWriteItems", kind, times=times)
    )
    assert isinstance(outcomes[-1], dict), outcomes

    def clean() -> None:
        upload_and_ingest(handlers, "a.jpg")
        upload_and_ingest(handlers, "b.jpg")

    assert_like_clean(plan, clean)
    assert sum(stats.get_stats()["uploads_per_day"].values()) == 2


# --------------------------------------------------------------------------- POST /images
API_FAULTS = [
    ("TransactWriteItems", "throttle", DYNAMODB_ATTEMPTS),
    ("TransactWriteItems", "conflict", 6),
    ("PutObject", "server_error", S3_ATTEMPTS),
    ("TransactWriteItems", "lost_response", 1),
    ("TransactWriteItems", "commit_timeout", 1),
]


@pytest.mark.parametrize(("operation", "kind", "times"), API_FAULTS)
def test_direct_upload_retried_with_its_key_equals_a_clean_run(
    plan, aws, handlers, operation, kind, times
) -> None:
    key = str(uuid.uuid4())
    plan.add(operation, kind, times=times)
    answers = client_retry(handlers["import_image"], post_image(key))
    assert answers[-1][0] == 201, answers  # created, as the clean run says
    if len(answers) > 1:  # a fault the client may retry: a 503 in the one error shape
        assert answers[0][0] == 503 and answers[0][1]["code"] == "unavailable", answers
        assert "retry" in answers[0][1]["message"]
    assert_like_clean(plan, lambda: call(handlers["import_image"], post_image(key)))


def test_a_retry_without_a_key_counts_twice(plan, aws, handlers) -> None:
    """Why the key: without it, a retry after a commit that timed out is a second upload."""
    plan.add("TransactWriteItems", "commit_timeout")
    answers = client_retry(handlers["import_image"], post_image())
    assert [a[0] for a in answers] == [503, 200]  # the retry found the content: a duplicate
    assert sum(stats.get_stats()["uploads_per_day"].values()) == 2


def test_a_lost_answer_without_a_key_is_not_a_conflict(plan, aws, handlers) -> None:
    """botocore sends a timed-out transaction again: it finds its own upload record."""
    plan.add("TransactWriteItems", "lost_response")
    status, body, _ = call(handlers["import_image"], post_image())
    assert status == 201, body
    assert_like_clean(plan, lambda: call(handlers["import_image"], post_image()))


def test_the_key_replays_and_refuses_another_request(plan, aws, handlers) -> None:
    key = str(uuid.uuid4())
    first = call(handlers["import_image"], post_image(key))
    again = call(handlers["import_image"], post_image(key))
    assert first[0] == again[0] == 201 and first[1] == again[1]
    other = api_event(
        "POST",
        "/images",
        body=multipart((PHOTOS / "horse_rgba.png").read_bytes(), "b.png"),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary", "Idempotency-Key": key},
    )
    status, body, _ = call(handlers["import_image"], other)
    assert status == 422 and body["code"] == "idempotency_key_reused", body
    delete = api_event("DELETE", f"/images/{first[1]['image_id']}")
    assert call(handlers["images"], delete)[0] == 200
    status, body, _ = call(handlers["import_image"], post_image(key))
    assert status == 410 and "new key" in body["message"], body


@pytest.mark.parametrize("key", ["short", "x" * 129, "a b c d e f g h i j"])
def test_a_malformed_key_is_a_400(aws, handlers, key) -> None:
    status, body, _ = call(handlers["import_image"], post_image(key))
    assert status == 400 and "Idempotency-Key" in body["message"], body


def test_url_import_retried_with_its_key_equals_a_clean_run(
    plan, aws, handlers, photo_server, monkeypatch
) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    key = str(uuid.uuid4())

    def event() -> dict[str, Any]:
        body = {"url": photo_server.url(PHOTO), "name": "cat"}
        return api_event("POST", "/images", body=body, headers={"Idempotency-Key": key})

    plan.add("TransactWriteItems", "commit_timeout")
    answers = client_retry(handlers["import_image"], event())
    assert [a[0] for a in answers] == [503, 201], answers
    assert_like_clean(plan, lambda: call(handlers["import_image"], event()))


# --------------------------------------------------------------------------- crop
@pytest.mark.parametrize(("operation", "kind", "times"), API_FAULTS)
def test_crop_retried_with_its_key_equals_a_clean_run(
    plan, aws, handlers, operation, kind, times
) -> None:
    key = str(uuid.uuid4())

    def crop(source_id: str) -> list[tuple[int, Any]]:
        event = api_event(
            "POST", f"/images/{source_id}/crop", body=BOX, headers={"Idempotency-Key": key}
        )
        return client_retry(handlers["crop"], event)

    def scenario() -> list[tuple[int, Any]]:
        status, source, _ = call(handlers["import_image"], post_image())
        assert status == 201, source
        return crop(source["image_id"])

    source = call(handlers["import_image"], post_image())[1]
    plan.add(operation, kind, times=times)
    answers = crop(source["image_id"])
    assert answers[-1][0] == 201, answers
    assert_like_clean(plan, scenario)


# --------------------------------------------------------------------------- delete
DELETE_FAULTS = [
    ("TransactWriteItems", "throttle", DYNAMODB_ATTEMPTS),
    ("TransactWriteItems", "conflict", 6),
    ("TransactWriteItems", "lost_response", 1),  # botocore's resend finds it committed
    ("TransactWriteItems", "commit_timeout", 1),  # the retry finishes the delete
    ("DeleteObject", "server_error", S3_ATTEMPTS),  # after the commit: likewise
    ("DeleteObjects", "server_error", S3_ATTEMPTS),  # the renditions
]


@pytest.mark.parametrize(("operation", "kind", "times"), DELETE_FAULTS)
def test_delete_retried_equals_a_clean_run(plan, aws, handlers, operation, kind, times) -> None:
    def scenario() -> list[tuple[int, Any]]:
        status, image, _ = call(handlers["import_image"], post_image())
        assert status == 201
        return client_retry(handlers["images"], api_event("DELETE", f"/images/{image['image_id']}"))

    image = call(handlers["import_image"], post_image())[1]
    plan.add(operation, kind, times=times)
    answers = client_retry(handlers["images"], api_event("DELETE", f"/images/{image['image_id']}"))
    assert answers[-1] == (200, {"status": "deleted", "image_id": image["image_id"]}), answers
    assert_like_clean(plan, scenario)
    guard = aws.table.get_item(Key=records._guard_key(image["image_id"]))["Item"]
    assert guard["deleting"] is False
    # and the bytes can come back
    assert call(handlers["import_image"], post_image())[0] == 201


def test_what_an_ingest_that_fails_all_three_attempts_leaves(plan, aws, handlers) -> None:
    """Known limit: the event goes to IngestDeadLetterQueue; the stored bytes and thumbnail
    stay without a record until the upload is delivered again (the file is still pending)."""
    outcomes = upload_and_ingest(
        handlers, then=lambda: plan.add("TransactWriteItems", "throttle", times=1000)
    )
    assert len(outcomes) == LAMBDA_ATTEMPTS and all(isinstance(o, Exception) for o in outcomes)
    assert stats.recount()["total_images"] == 0
    assert [k.split("/")[0] for k in snapshot()["objects"]] == ["images", "renditions", "uploads"]
