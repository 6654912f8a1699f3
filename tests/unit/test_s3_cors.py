"""The local S3 endpoint's CORS layer, against the rules of template.yaml's bucket."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from local_stack.s3_cors import S3Cors, find_rule
from local_stack.template import read_stack
from tests.conftest import ROOT

ORIGIN = "http://127.0.0.1:3000"


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    spec = read_stack(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:3001")
    (bucket,) = spec.buckets.values()
    return list(bucket.cors_rules)


class Recorder:
    """Stands in for moto: answers with a status and its own (wrong) CORS header."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.calls: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls.append(environ["REQUEST_METHOD"])
        headers = {"Access-Control-Allow-Origin": "https://moto.example", "ETag": '"x"'}
        return Response(b"<Error/>" if self.status >= 400 else b"", self.status, headers)(
            environ, start_response
        )


def client(rules: list[dict[str, Any]], status: int = 204) -> tuple[Client, Recorder]:
    app = Recorder(status)
    known = {"bucket": rules}
    return Client(S3Cors(app, rules_for=known.get)), app


def test_preflight_is_answered_from_the_rules(rules) -> None:
    c, app = client(rules)
    r = c.options(
        "/bucket/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 200 and app.calls == []
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "HEAD", "POST"}
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert r.headers["Access-Control-Max-Age"] == "3000"


def test_preflight_for_a_method_no_rule_allows_is_403(rules) -> None:
    c, app = client(rules)
    r = c.options("/bucket/k", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 403 and b"CORSResponse" in r.data and app.calls == []
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("status", [204, 403])
def test_post_and_its_errors_carry_the_rule_headers(rules, status: int) -> None:
    c, app = client(rules, status)
    r = c.post("/bucket/", headers={"Origin": ORIGIN}, data={"key": "k"})
    assert r.status_code == status and app.calls == ["POST"]
    assert r.headers.getlist("Access-Control-Allow-Origin") == ["*"]  # moto's header replaced
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, Location"
    assert r.headers["ETag"] == '"x"'


def test_requests_without_origin_or_bucket_pass_through(rules) -> None:
    c, app = client(rules)
    r = c.post("/bucket/", data={"key": "k"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://moto.example"
    r = c.post("/other-bucket/", headers={"Origin": ORIGIN}, data={"key": "k"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://moto.example"
    assert app.calls == ["POST", "POST"]


def test_rule_matching_origins_methods_and_headers() -> None:
    rules = [
        {
            "AllowedOrigins": ["https://*.example.com"],
            "AllowedMethods": ["PUT"],
            "AllowedHeaders": ["x-amz-*", "content-type"],
        },
        {"AllowedOrigins": ["http://app.test"], "AllowedMethods": ["GET"]},
    ]
    assert find_rule(rules, "https://a.example.com", "PUT", ["X-Amz-Date"]) is rules[0]
    assert find_rule(rules, "https://a.example.com", "PUT", ["authorization"]) is None
    assert find_rule(rules, "http://a.example.com", "PUT") is None
    assert find_rule(rules, "http://app.test", "GET") is rules[1]
    assert find_rule(rules, "http://app.test", "POST") is None


def test_a_moto_failure_is_an_error_the_page_can_read(rules) -> None:
    def raising(environ: dict[str, Any], start_response: Any) -> Any:
        raise KeyError("key")

    c = Client(S3Cors(raising, rules_for={"bucket": rules}.get))
    r = c.post("/bucket/", headers={"Origin": ORIGIN}, data={"x": "y"})
    assert r.status_code == 500 and b"InternalError" in r.data
    assert r.headers["Access-Control-Allow-Origin"] == "*"
