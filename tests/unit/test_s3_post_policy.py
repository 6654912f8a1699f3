"""Presigned POST policies checked as S3 checks them, in front of an app recording requests."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import boto3
import pytest
from botocore.config import Config
from werkzeug.test import Client

from local_stack.s3_post_policy import PostPolicyMiddleware

BUCKET = "bucket"
KEY = "uploads/u1/cat.jpg"


class Recorder:
    """Stands in for moto: records each request's body (what would be stored)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.bodies.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return []


def presigned(signature_version: str = "s3v4", expires: int = 300, **kwargs: Any) -> Any:
    s3 = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"}),
    )
    return s3.generate_presigned_post(
        BUCKET,
        kwargs.get("key", KEY),
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 100]],
        ExpiresIn=expires,
    )


def post(fields: dict[str, str], data: bytes = b"x" * 50, path: str = f"/{BUCKET}") -> Any:
    moto = Recorder()
    client = Client(PostPolicyMiddleware(moto))
    form = {**fields, "file": (io.BytesIO(data), "cat.jpg")}
    response = client.post(path, data=form, content_type="multipart/form-data")
    return response, moto


def error(response: Any) -> tuple[int, str, str, dict[str, str]]:
    root = ET.fromstring(response.data)
    extra = {e.tag: e.text or "" for e in root if e.tag not in ("Code", "Message")}
    return response.status_code, root.findtext("Code"), root.findtext("Message"), extra


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_a_form_within_its_policy_reaches_moto_unchanged(version: str) -> None:
    fields = presigned(version)["fields"]
    response, moto = post(fields)
    assert response.status_code == 204
    (body,) = moto.bodies
    assert b"x" * 50 in body and KEY.encode() in body


def test_larger_than_the_range_is_entity_too_large() -> None:
    response, moto = post(presigned()["fields"], b"x" * 101)
    status, code, message, extra = error(response)
    assert (status, code) == (400, "EntityTooLarge")
    assert message == "Your proposed upload exceeds the maximum allowed size"
    assert extra["ProposedSize"] == "101" and extra["MaxSizeAllowed"] == "100"
    assert moto.bodies == []


def test_smaller_than_the_range_is_entity_too_small() -> None:
    response, moto = post(presigned()["fields"], b"")
    assert error(response)[:2] == (400, "EntityTooSmall") and moto.bodies == []


def test_another_content_type_is_a_failed_condition() -> None:
    response, moto = post({**presigned()["fields"], "Content-Type": "text/html"})
    status, code, message, _ = error(response)
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        "Invalid according to Policy: Policy Condition failed: "
        '["eq", "$Content-Type", "image/jpeg"]'
    )
    assert moto.bodies == []


def test_another_key_is_a_failed_condition() -> None:
    response, moto = post({**presigned()["fields"], "key": "images/" + "0" * 64})
    status, code, message, _ = error(response)
    assert (status, code) == (403, "AccessDenied")
    assert message.endswith(f'["eq", "$key", "{KEY}"]') and moto.bodies == []


def test_another_bucket_is_a_failed_condition() -> None:
    response, moto = post(presigned()["fields"], path="/other-bucket")
    assert error(response)[2].endswith('["eq", "$bucket", "bucket"]') and moto.bodies == []


def test_a_field_no_condition_covers_is_refused() -> None:
    fields = {**presigned()["fields"], "x-amz-meta-owner": "me"}
    response, moto = post(fields)
    assert error(response)[:3] == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-owner",
    )
    assert moto.bodies == []
    response, moto = post({**presigned()["fields"], "x-ignore-this": "1"})
    assert response.status_code == 204  # x-ignore- fields are exempt


def test_after_expiry_is_refused() -> None:
    response, moto = post(presigned(expires=-1)["fields"])
    assert error(response)[:3] == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )
    assert moto.bodies == []


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_a_tampered_policy_or_signature_does_not_match(version: str) -> None:
    fields = presigned(version)["fields"]
    # A policy for a bigger range, not signed by the key: the signature no longer matches.
    other = presigned(version, key="uploads/u1/other.jpg")["fields"]
    response, moto = post({**fields, "policy": other["policy"]})
    assert error(response)[:2] == (403, "SignatureDoesNotMatch") and moto.bodies == []
    sig = "x-amz-signature" if version == "s3v4" else "signature"
    response, moto = post({**fields, sig: "0" * 64})
    assert error(response)[:2] == (403, "SignatureDoesNotMatch") and moto.bodies == []
    response, moto = post({k: v for k, v in fields.items() if k != sig})
    assert error(response)[:2] == (403, "AccessDenied") and moto.bodies == []


def test_other_requests_pass_through() -> None:
    moto = Recorder()
    client = Client(PostPolicyMiddleware(moto))
    assert (
        client.post("/", data=b"{}", content_type="application/x-amz-json-1.0").status_code == 204
    )
    assert client.put(f"/{BUCKET}/k", data=b"abc").status_code == 204
    assert moto.bodies == [b"{}", b"abc"]
