"""API Gateway REST API (v1) proxy integration: the Lambda event, the HTTP response, and
API Gateway's own error responses (the template's GatewayResponses when it has them)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request

from local_stack.cfn import ACCOUNT_ID
from local_stack.routes import Match
from local_stack.spec import Api, Route

log = logging.getLogger("local_stack")

# Lambda's limit for a synchronous invocation's request and response payloads: 6 MB.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
# API Gateway's own limit on a request body (it answers 413 itself, before Lambda).
API_PAYLOAD_LIMIT = 10 * 1024 * 1024
API_ID = "local"
API_KEY_ID = "local-api-key"
# Set by the server from the connection, never from the client.
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection"}


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MalformedResponse(ValueError):
    """What API Gateway logs as "Malformed Lambda proxy response" (and answers 502)."""


def media_type_matches(content_type: str | None, patterns: Iterable[str]) -> bool:
    """Does a Content-Type or Accept value match one of the API's binary media types?"""
    if not content_type:
        return False
    kind, _, sub = content_type.split(";", 1)[0].strip().lower().partition("/")
    for pattern in patterns:
        p_kind, _, p_sub = pattern.strip().lower().partition("/")
        if p_kind in ("*", kind) and p_sub in ("*", sub):
            return True
    return False


def build_event(
    request: Request,
    *,
    match: Match,
    route: Route,
    api: Api,
    request_id: str,
    api_key: str | None,
    context_path: str | None = None,
) -> dict[str, Any]:
    """The proxy event API Gateway sends to Lambda for this request. context_path: the path
    as requested, stage included (served under a stage prefix); else /<stage> + the path."""
    if context_path is None:
        path, context_path = request.path, f"/{api.stage}{request.path}"
    else:
        path = context_path[len(api.stage) + 1 :] or "/"
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    # API Gateway adds these in front of every integration.
    source_ip = request.remote_addr or "127.0.0.1"
    multi_headers.setdefault("X-Forwarded-For", [source_ip])
    multi_headers.setdefault("X-Forwarded-Proto", [request.scheme])
    multi_headers.setdefault("X-Forwarded-Port", [str(request.environ.get("SERVER_PORT", ""))])
    multi_query = {k: request.args.getlist(k) for k in request.args}

    body, is_base64 = _event_body(request, api)
    now = time.time()
    method = request.method.upper()
    return {
        "resource": match.resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": hashlib.sha1(match.resource.encode()).hexdigest()[:6],
            "resourcePath": match.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": context_path,
            "accountId": ACCOUNT_ID,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "stage": api.stage,
            "domainPrefix": request.host.split(".", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.headers.get("User-Agent"),
                "user": None,
                # API Gateway fills these in only on methods that require a key.
                "apiKey": api_key if route.api_key_required else None,
                "apiKeyId": API_KEY_ID if route.api_key_required else None,
            },
            "domainName": request.host,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _event_body(request: Request, api: Api) -> tuple[str | None, bool]:
    data = request.get_data(cache=True)
    if not data:
        return None, False
    if media_type_matches(request.content_type, api.binary_media_types):
        return base64.b64encode(data).decode("ascii"), True
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        # API Gateway passes a non-binary body as UTF-8 text and mangles anything else.
        log.warning(
            "%s %s: the body is not UTF-8 and its Content-Type %r is not a binary media type "
            "of the API (%s): API Gateway would corrupt it",
            request.method,
            request.path,
            request.content_type,
            ", ".join(api.binary_media_types) or "none",
        )
        return data.decode("utf-8", errors="replace"), False


def event_size(event: Mapping[str, Any]) -> int:
    return len(json.dumps(event).encode())


def to_http_response(
    result: Any,
    *,
    accept: str | None,
    binary_media_types: Iterable[str],
) -> HttpResponse:
    """Turn a Lambda proxy result into the HTTP response API Gateway sends; raises
    MalformedResponse for results API Gateway rejects."""
    if not isinstance(result, dict):
        raise MalformedResponse(f"the result is a {type(result).__name__}, not an object")
    try:
        status = int(result.get("statusCode"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise MalformedResponse(f"statusCode {result.get('statusCode')!r} is not a number") from err
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponse(f"body is a {type(body).__name__}, not a string")

    headers = _merge_headers(result.get("headers"), result.get("multiValueHeaders"))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    content_type = next(v for n, v in headers if n.lower() == "content-type")

    data = (body or "").encode("utf-8")
    if _truthy(result.get("isBase64Encoded")) and body:
        # API Gateway decodes only when the client's first Accept type (or, with no
        # Accept, the response's Content-Type) is one of the API's binary media types.
        first_accept = accept.split(",", 1)[0] if accept else content_type
        if media_type_matches(first_accept, binary_media_types):
            try:
                data = base64.b64decode(body, validate=True)
            except binascii.Error as err:
                raise MalformedResponse("isBase64Encoded but the body is not base64") from err
        else:
            log.warning(
                "binary response sent as base64 text: the request's Accept %r does not match "
                "the API's binary media types (%s), as in API Gateway",
                accept,
                ", ".join(binary_media_types) or "none",
            )
    return HttpResponse(status, headers, data)


def _merge_headers(single: Any, multi: Any) -> list[tuple[str, str]]:
    # Both may be given: API Gateway sends the union, each name/value pair once.
    if single is not None and not isinstance(single, dict):
        raise MalformedResponse("headers is not an object")
    if multi is not None and not isinstance(multi, dict):
        raise MalformedResponse("multiValueHeaders is not an object")
    merged: list[tuple[str, str]] = []
    for name, values in (multi or {}).items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] is not a list")
        merged.extend((name, _header_value(name, v)) for v in values)
    for name, value in (single or {}).items():
        pair = (name, _header_value(name, value))
        if pair not in merged:
            merged.append(pair)
    return [(n, v) for n, v in merged if n.lower() not in _DROPPED_RESPONSE_HEADERS]


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise MalformedResponse(f"header {name!r} has a non-scalar value {value!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ---------------------------------------------------------------- gateway responses
# API Gateway's defaults for the responses it sends itself, by gateway response type.
GATEWAY_DEFAULTS: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "DEFAULT_5XX": (502, "Internal server error"),
}


@dataclass(frozen=True)
class LocalError:
    """Our body and status when the template defines no gateway response for a type."""

    status: int
    code: str
    message: str


LOCAL_ERRORS: dict[str, LocalError] = {
    # API Gateway answers 403 for an unknown path; the service's shape with 404 is clearer.
    "MISSING_AUTHENTICATION_TOKEN": LocalError(404, "not_found", "No such route"),
    "INVALID_API_KEY": LocalError(
        403, "forbidden", "Forbidden: send your API key in the x-api-key header"
    ),
    "REQUEST_TOO_LARGE": LocalError(
        413, "too_large", "The request is larger than Lambda's 6 MB invocation limit"
    ),
    "INTEGRATION_TIMEOUT": LocalError(504, "timeout", "Endpoint request timed out"),
    "DEFAULT_5XX": LocalError(502, "internal_error", "Internal server error"),
}


def gateway_response(
    api: Api | None,
    kind: str,
    *,
    request_id: str,
    message: str | None = None,
) -> HttpResponse:
    """API Gateway's own response of one type, customized by the template's GatewayResponses.

    ``message`` is $context.error.message (default: API Gateway's own), and the message of
    our fallback body when the template has no response for this type.
    """
    default_status, default_message = GATEWAY_DEFAULTS[kind]
    local = LOCAL_ERRORS[kind]
    local_message = message or local.message
    message = message or default_message
    responses = api.gateway_responses if api else {}
    family = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
    specific, general = responses.get(kind), responses.get(family)
    configured = specific or general
    template = (configured.templates.get("application/json") if configured else None) or None
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    if template is not None:
        status = specific.status if specific and specific.status else default_status
        body = _render(template, kind=kind, message=message, request_id=request_id)
    else:
        status = specific.status if specific and specific.status else local.status
        body = json.dumps({"status": "error", "code": local.code, "message": local_message})
    if configured:
        headers.extend(configured.headers.items())
    headers.append(("x-amzn-ErrorType", _error_type(kind)))
    return HttpResponse(status, headers, body.encode())


def error_response(
    api: Api | None,
    status: int,
    code: str,
    message: str,
    extra: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A local-only error in the service's shape (with the API's 4XX response headers)."""
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    configured = api.gateway_responses.get("DEFAULT_4XX") if api else None
    if configured:
        headers.extend(configured.headers.items())
    headers.extend((extra or {}).items())
    body = json.dumps({"status": "error", "code": code, "message": message})
    return HttpResponse(status, headers, body.encode())


def _render(template: str, *, kind: str, message: str, request_id: str) -> str:
    # The $context variables gateway response templates use most; longest names first.
    return (
        template.replace("$context.error.messageString", json.dumps(message))
        .replace("$context.error.message", message)
        .replace("$context.error.responseType", kind)
        .replace("$context.requestId", request_id)
    )


def _error_type(kind: str) -> str:
    return {
        "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
        "INVALID_API_KEY": "ForbiddenException",
        "REQUEST_TOO_LARGE": "RequestTooLargeException",
        "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    }.get(kind, "InternalServerErrorException")
