"""S3's CORS for the moto server: a WSGI wrapper applying the bucket's CORS rules as S3 does.

moto answers a browser's presigned POST (and its errors) without CORS headers, so the browser
refuses to read the answer; real S3 evaluates the bucket's CORSRules for every request with an
Origin. Kept apart from moto (and from any other wrapper of the same server) so each stays small.

S3's algorithm (https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html): the first
rule whose AllowedOrigins match the Origin, whose AllowedMethods hold the method (for a
preflight: Access-Control-Request-Method) and whose AllowedHeaders match every requested header
applies. A preflight without one is 403; a request without one gets no CORS headers.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Rules = Sequence[dict[str, Any]]  # S3 API form: AllowedOrigins, AllowedMethods, ...
StartResponse = Callable[..., Any]
_CORS_HEADERS = {
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "access-control-allow-credentials",
}
_FORBIDDEN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessForbidden</Code>'
    b"<Message>CORSResponse: This CORS request is not allowed. This is usually because the "
    b"evalution of Origin, request method / Access-Control-Request-Method or "
    b"Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
    b"</Message></Error>"
)


_INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>The local S3 endpoint (moto) failed on this request.</Message></Error>"
)
log = logging.getLogger("local_stack")


def _matches(value: str, patterns: Iterable[str]) -> bool:
    # S3 patterns allow one "*" wildcard; origins compare exactly, headers case-insensitively.
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def find_rule(rules: Rules, origin: str, method: str, headers: Sequence[str] = ()) -> dict | None:
    for rule in rules:
        if not _matches(origin, rule.get("AllowedOrigins", [])):
            continue
        if method.upper() not in {m.upper() for m in rule.get("AllowedMethods", [])}:
            continue
        allowed = [h.lower() for h in rule.get("AllowedHeaders", [])]
        if all(_matches(h.lower(), allowed) for h in headers):
            return rule
    return None


def _allow_origin(rule: dict, origin: str) -> str:
    return "*" if "*" in rule.get("AllowedOrigins", []) else origin


def preflight_headers(rule: dict, origin: str, headers: Sequence[str]) -> list[tuple[str, str]]:
    out = [
        ("Access-Control-Allow-Origin", _allow_origin(rule, origin)),
        ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])),
        ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
    ]
    if headers:
        out.append(("Access-Control-Allow-Headers", ", ".join(headers)))
    if rule.get("ExposeHeaders"):
        out.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        out.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return out


def response_headers(rule: dict, origin: str) -> list[tuple[str, str]]:
    out = [
        ("Access-Control-Allow-Origin", _allow_origin(rule, origin)),
        ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])),
        ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
    ]
    if rule.get("ExposeHeaders"):
        out.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        out.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return out


def bucket_of(environ: dict[str, Any]) -> str | None:
    """The bucket of a path-style request (local endpoints are IP addresses: path style)."""
    path = environ.get("PATH_INFO", "")
    name = path.lstrip("/").split("/", 1)[0]
    return name or None


def moto_rules(bucket: str) -> Rules | None:
    """The bucket's CORS rules as PutBucketCors stored them in moto's backend (None: no such
    bucket, so not an S3 request for this wrapper: DynamoDB and SQS share the port)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    found = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets.get(bucket)
    if found is None:
        return None
    rules = []
    for r in found.cors:
        rules.append(
            {
                "AllowedOrigins": list(r.allowed_origins or []),
                "AllowedMethods": list(r.allowed_methods or []),
                "AllowedHeaders": list(r.allowed_headers or []),
                "ExposeHeaders": list(r.exposed_headers or []),
                "MaxAgeSeconds": int(r.max_age_seconds) if r.max_age_seconds else None,
            }
        )
    return rules


class S3Cors:
    """Answers preflights from the rules and adds CORS headers to every matched response."""

    def __init__(self, app: Any, rules_for: Callable[[str], Rules | None] = moto_rules) -> None:
        self.app = app
        self.rules_for = rules_for

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        bucket = bucket_of(environ)
        if not origin or not bucket:
            return self.app(environ, start_response)
        rules = self.rules_for(bucket)
        if rules is None:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            wanted = environ["HTTP_ACCESS_CONTROL_REQUEST_METHOD"]
            raw = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
            headers = [h.strip() for h in raw.split(",") if h.strip()]
            rule = find_rule(rules, origin, wanted, headers)
            if rule is None:
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(_FORBIDDEN)))],
                )
                return [_FORBIDDEN]
            start_response(
                "200 OK", [*preflight_headers(rule, origin, headers), ("Content-Length", "0")]
            )
            return [b""]
        rule = find_rule(rules, origin, method)

        def cors_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            # moto's own CORS headers (if any) are replaced by the rule's, as S3 would send.
            kept = [(k, v) for k, v in headers if k.lower() not in _CORS_HEADERS]
            if rule is not None:
                kept = [(k, v) for k, v in kept if k.lower() != "vary"]
                kept += response_headers(rule, origin)
            return start_response(status, kept, *exc)

        try:
            return self.app(environ, cors_start_response)
        except Exception:
            # moto raises on some malformed requests (a POST without a key field) where S3
            # answers an error: answer one the page can read, and log the traceback.
            log.exception("moto failed on %s %s", method, environ.get("PATH_INFO"))
            cors_start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_INTERNAL)))],
            )
            return [_INTERNAL]
