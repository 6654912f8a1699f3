"""S3 browser-based uploads (presigned POST) checked as S3 checks them, in front of moto.

moto's S3 stores whatever a POST form carries: it checks neither the signature, nor the expiry,
nor a single condition of the policy. This WSGI middleware does, with S3's status codes and XML
errors, so the local stack refuses what AWS refuses and nothing is stored:

- a bad or missing SigV4 signature of the policy  -> 403 SignatureDoesNotMatch
- an expired policy                              -> 403 AccessDenied "Policy expired."
- a condition not met (eq, starts-with, bucket)  -> 403 AccessDenied "Policy Condition failed: ..."
- a form field no condition covers               -> 403 AccessDenied "Extra input fields: ..."
- a file outside content-length-range            -> 400 EntityTooLarge / EntityTooSmall

Written by hand: moto has no such check and no library offers one; the rules are those of
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html.
Other requests (every other S3 call, DynamoDB, SQS) pass through untouched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug import Request
from werkzeug.wsgi import get_input_stream

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

# Form fields that no condition needs to cover (S3: "except x-amz-signature, file, policy, and
# field names that have an x-ignore- prefix"; SigV2 forms sign with AWSAccessKeyId/signature).
_EXEMPT = {"x-amz-signature", "file", "policy", "signature", "awsaccesskeyid"}


class PolicyError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check_signature(
    form: dict[str, str], policy_b64: str, secret_for: Callable[[str], str | None]
) -> None:
    """SigV4 (x-amz-signature) or SigV2 (AWSAccessKeyId + signature), both over the policy."""
    if "x-amz-signature" in form:
        parts = form.get("x-amz-credential", "").split("/")
        if form.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or len(parts) != 5:
            raise PolicyError(
                400,
                "InvalidArgument",
                "POST requires x-amz-algorithm AWS4-HMAC-SHA256 and an x-amz-credential "
                "of the form <key>/<date>/<region>/<service>/aws4_request",
            )
        access_key, date, region, service, _ = parts
        secret = _secret(secret_for, access_key)
        key = _signing_key(secret, date, region, service)
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        sent = form["x-amz-signature"].lower()
    elif "awsaccesskeyid" in form and "signature" in form:
        secret = _secret(secret_for, form["awsaccesskeyid"])
        digest = hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()
        expected, sent = base64.b64encode(digest).decode(), form["signature"]
    else:
        raise PolicyError(
            403,
            "AccessDenied",
            "Bucket POST must contain a field named 'x-amz-signature' (or 'AWSAccessKeyId' "
            "and 'signature'). If it is specified, please check the order of the fields.",
        )
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise PolicyError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )


def _secret(secret_for: Callable[[str], str | None], access_key: str) -> str:
    secret = secret_for(access_key)
    if secret is None:
        raise PolicyError(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            AWSAccessKeyId=access_key,
        )
    return secret


def _condition_text(condition: Any) -> str:
    # S3 quotes the failed condition in its array form: ["eq", "$Content-Type", "image/jpeg"].
    if isinstance(condition, dict):
        ((name, value),) = condition.items()
        condition = ["eq", f"${name}", value]
    return json.dumps(condition)


def check_post(
    fields: dict[str, str],
    file_size: int,
    filename: str | None,
    *,
    bucket: str,
    secret_for: Callable[[str], str | None],
    now: float | None = None,
) -> None:
    """Raise PolicyError when S3 would refuse this POST form (field names compared lowercase)."""
    form = {name.lower(): value for name, value in fields.items()}
    policy_b64 = form.get("policy")
    if policy_b64 is None:
        return  # an anonymous POST: bucket policies decide in S3; not ours to emulate
    _check_signature(form, policy_b64, secret_for)
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
        assert isinstance(conditions, list)
    except (ValueError, KeyError, TypeError, AssertionError, binascii.Error) as err:
        raise PolicyError(400, "InvalidPolicyDocument", f"Invalid Policy: {err}") from err
    if expiration.timestamp() <= (time.time() if now is None else now):
        raise PolicyError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    form["bucket"] = bucket
    if filename is not None and "key" in form:
        form["key"] = form["key"].replace("${filename}", filename)
    covered = {"bucket"}
    size_range: tuple[int, int] | None = None
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            ((name, value),) = condition.items()
            op, name = "eq", name.lower()
        elif isinstance(condition, list) and len(condition) == 3:
            op, name, value = condition
            op = str(op).lower()
            if op == "content-length-range":
                size_range = (int(name), int(value))
                continue
            name = str(name).lower().removeprefix("$")
        else:
            raise PolicyError(400, "InvalidPolicyDocument", f"Invalid Policy: {condition!r}")
        covered.add(name)
        sent = form.get(name)
        ok = (
            sent == value
            if op == "eq"
            else op == "starts-with" and sent is not None and sent.startswith(str(value))
        )
        if not ok:
            raise PolicyError(
                403,
                "AccessDenied",
                "Invalid according to Policy: Policy Condition failed: "
                + _condition_text(condition),
            )
    extra = [
        n for n in form if n not in covered and n not in _EXEMPT and not n.startswith("x-ignore-")
    ]
    if extra:
        raise PolicyError(
            403,
            "AccessDenied",
            "Invalid according to Policy: Extra input fields: " + ", ".join(extra),
        )
    if size_range is not None:
        low, high = size_range
        if file_size > high:
            raise PolicyError(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=file_size,
                MaxSizeAllowed=high,
            )
        if file_size < low:
            raise PolicyError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=file_size,
                MinSizeAllowed=low,
            )


def error_xml(err: PolicyError, request_id: str) -> bytes:
    extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in err.extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{err.code}</Code><Message>{escape(err.message)}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId><HostId>local</HostId></Error>"
    ).encode()


class PostPolicyMiddleware:
    """WSGI middleware: presigned POST forms are checked before moto sees them.

    ``secret_for(access_key)`` gives the secret of an access key (None: unknown key). The local
    stack signs with the dummy pair ``testing``/``testing``, so that is the default.
    """

    def __init__(
        self,
        app: WsgiApp,
        secret_for: Callable[[str], str | None] = lambda key: "testing",
    ) -> None:
        self.app = app
        self.secret_for = secret_for

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or not environ.get(
            "CONTENT_TYPE", ""
        ).lower().startswith("multipart/form-data"):
            return self.app(environ, start_response)
        # Buffer the body: parse it here, then hand moto the same bytes.
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
        fields = dict(request.form.items())
        upload = request.files.get("file")
        size = 0
        if upload is not None:
            upload.stream.seek(0, io.SEEK_END)
            size = upload.stream.tell()
        try:
            check_post(
                fields,
                size,
                upload.filename if upload is not None else None,
                bucket=_bucket(request),
                secret_for=self.secret_for,
            )
        except PolicyError as err:
            request_id = uuid.uuid4().hex[:16].upper()
            payload = error_xml(err, request_id)
            start_response(
                f"{err.status} {_REASONS.get(err.status, '')}".strip(),
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(payload))),
                    ("x-amz-request-id", request_id),
                ],
            )
            return [payload]
        return self.app(environ, start_response)


_REASONS = {400: "Bad Request", 403: "Forbidden"}


def _bucket(request: Request) -> str:
    # Path style (http://127.0.0.1:port/<bucket>) or virtual-hosted (<bucket>.s3...).
    first = request.path.strip("/").split("/", 1)[0]
    if first:
        return first
    host = request.host.split(":", 1)[0]
    return host.split(".s3", 1)[0] if ".s3" in host else host
