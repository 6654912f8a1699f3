"""HTTP glue shared by every API handler: the resolver, the error shape, and request parsing.

Handlers build their routes on ``create_app()`` and export ``lambda_handler = api_handler(app)``.
Requests are validated by Powertools (``enable_validation=True``): path, query and body
parameters are typed on the route functions, and a validation failure becomes the one error
shape with a short, bounded message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel, ValidationError

from imgsvc.errors import BadRequest, NotFound, ServiceError, Unavailable, UnsupportedMediaType
from imgsvc.observability import logger, metrics, tracer
from imgsvc.schemas import IDEMPOTENCY_KEY_PATTERN, IMAGE_ID_PATTERN, UPLOAD_ID_PATTERN

M = TypeVar("M", bound=BaseModel)

# A validation message names at most this many problems, each cut to this length, then says how
# many more there were: a body with 100,000 unknown keys gets a short answer, not megabytes.
MAX_REPORTED_ERRORS = 3
MAX_ERROR_PART = 160
# Characters that never belong in a path: Powertools' route patterns end in `$`, which also
# matches before a trailing newline, so `/images/<id>%0A` would otherwise reach the route as <id>.
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))


PATTERN_HINTS = {
    IMAGE_ID_PATTERN: "an image id is 64 lowercase hex characters (the sha256 of its bytes)",
    UPLOAD_ID_PATTERN: "an upload id is the lowercase UUID that POST /uploads returned",
    IDEMPOTENCY_KEY_PATTERN: "an Idempotency-Key is 16 to 128 characters of letters, digits "
    "and +/=._:- (a UUID will do)",
}


def error_response(error: ServiceError) -> Response:
    return Response(
        status_code=error.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
    )


def strict_json(text: str | bytes) -> Any:
    """json.loads that refuses what JSON allows but text does not (lone surrogates), and depth
    bombs; both surface as a JSON error, so every route answers 400 for them."""
    try:
        value = json.loads(text)
        # A lone surrogate ("\ud800") decodes to a str that cannot be encoded: find it here,
        # once for the whole document, rather than wherever the string is used later.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError(
            "a string is not valid Unicode text (lone surrogate escape)", doc, 0
        ) from err
    except RecursionError as err:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError("the document is nested too deeply", doc, 0) from err
    return value


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_PART else text[: MAX_ERROR_PART - 1] + "\u2026"


def describe_errors(errors: list[dict[str, Any]] | Any) -> str:
    """pydantic/Powertools error records as one short sentence, whatever their number."""
    errors = list(errors)
    parts = []
    for e in errors[:MAX_REPORTED_ERRORS]:
        loc = [str(p) for p in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error") or e.get("msg", "")
            parts.append(_clip(f"the request body is not valid JSON: {reason}"))
            continue
        where = ".".join(loc) or "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        hint = PATTERN_HINTS.get((e.get("ctx") or {}).get("pattern", ""))
        if e.get("type") == "string_pattern_mismatch" and hint:
            msg = f"malformed: {hint}"
        parts.append(_clip(f"{where}: {msg}"))
    more = len(errors) - len(parts)
    if more > 0:
        parts.append(f"and {more} more problem{'s' if more > 1 else ''}")
    return "; ".join(parts) or "the request is not valid"


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, with bodies read as JSON only.

    Powertools also parses form and multipart bodies for a model-typed body (and lets a
    multipart type without a boundary escape as a ValueError, a 500). Every validated body of
    this API is JSON, so any other declared type is a 415 before any parsing.
    """

    def _get_body(self, app: Any) -> dict[str, Any]:
        content_type = app.current_event.headers.get("content-type", "").strip()
        mime = content_type.split(";")[0].strip().lower()
        if mime and mime != content_types.APPLICATION_JSON:
            raise RequestUnsupportedContentType(
                "Unsupported content type",
                errors=[{"type": "unsupported_content_type", "loc": ("body",), "msg": mime}],
            )
        return self._parse_json_data(app)


def create_app() -> APIGatewayRestResolver:
    """A REST API resolver whose every error, expected or not, has the service's one shape."""
    app = APIGatewayRestResolver(
        cors=CORSConfig(allow_origin="*", allow_headers=["Content-Type", "x-api-key"], max_age=600),
        enable_validation=True,
        json_body_deserializer=strict_json,
    )
    # Replaces the instance Powertools made for enable_validation (the attribute it uses).
    app._request_validation_middleware = JsonBodyValidation()

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(error: RequestUnsupportedContentType) -> Response:
        ctype = app.current_event.headers.get("content-type") or "none"
        return error_response(
            UnsupportedMediaType(
                f"content type {_clip(ctype)!r} is not accepted: send application/json"
            )
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        message = describe_errors(error.errors())
        logger.info("client error", extra={"code": "bad_request", "error": message})
        return error_response(BadRequest(f"invalid request: {message}"))

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if error.status_code >= 500:
            logger.warning("upstream or server error", extra={"code": error.code})
        else:
            logger.info("client error", extra={"code": error.code, "error": error.message})
        return error_response(error)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        event = app.current_event
        return error_response(
            NotFound(
                f"no route for {event.http_method} {_clip(event.path)}: see GET /docs for the API"
            )
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        # Log the stack trace for us; never show it to the client.
        logger.exception("unhandled error")
        transient = transient_error(error)
        if transient is not None:  # the client may retry (with the same Idempotency-Key)
            return error_response(transient)
        return error_response(ServiceError("internal error: the request was not completed"))

    return app


# Error codes of DynamoDB and S3 that botocore retries and that outlasted its retries.
_TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "InternalServerError", "InternalError", "ServiceUnavailable",
    "SlowDown", "RequestTimeout", "TransactionInProgressException",
})  # fmt: skip


def transient_error(error: Exception) -> Unavailable | None:
    """A 503 for what outlasted botocore's retries (throttling, 5xx, timeouts), else None."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code not in _TRANSIENT_CODES and status < 500:
            return None
        what = code or f"HTTP {status}"
    elif isinstance(error, (HTTPClientError, BotoConnectionError)):
        what = type(error).__name__
    else:
        return None
    return Unavailable(
        f"storage was busy or did not answer ({what}): retry the request in a moment"
    )


def _proxy_result(error: ServiceError) -> dict[str, Any]:
    return {
        "statusCode": error.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error.to_body()),
        "isBase64Encoded": False,
    }


def api_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for an API function, with logging, tracing and metrics."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if _CONTROL.intersection(event.get("path") or ""):
            return _proxy_result(BadRequest("the request path contains control characters"))
        return app.resolve(event, context)

    return lambda_handler


def client_scope(app: APIGatewayRestResolver, route: str) -> str:
    """The scope of an Idempotency-Key: the route and the client (its API key's id, as API
    Gateway says it), so two clients' keys never meet."""
    identity = app.current_event.request_context.identity
    return f"{route}#{identity.api_key_id or ''}"


def raw_body(app: APIGatewayRestResolver) -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as err:
            raise BadRequest("the request body is not valid base64") from err
    return body.encode("utf-8", errors="surrogatepass")


def parse_json_body(app: APIGatewayRestResolver, model: type[M]) -> M:
    """The JSON body as ``model``, for the one route whose body is JSON or multipart (POST
    /images): Powertools validates a body by a single content type, so that route parses its
    own, with the same rules and messages as every validated route."""
    data = raw_body(app)
    if not data.strip():
        raise BadRequest("the request body is empty: send a JSON object")
    try:
        value = strict_json(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"invalid request: the request body is not valid JSON: {err}") from err
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise BadRequest(f"invalid request: {describe_errors(err.errors())}") from err


ERROR_DESCRIPTIONS = {
    400: "The request is malformed: the message names the problem.",
    404: "No such resource.",
    409: "The request conflicts with the current state.",
    410: "The resource has expired.",
    413: "The payload is over a limit.",
    415: "The content type is not accepted.",
    422: "The bytes are not an image the service accepts.",
    502: "The remote server could not be reached or answered with an error.",
    503: "Storage was busy or did not answer: retry (with the same Idempotency-Key).",
    504: "The remote server did not answer in time.",
}


def responses(
    ok: dict[int, tuple[str, Any]], errors: dict[int, str] | None = None
) -> dict[int, Any]:
    """OpenAPI responses of a route: its successes (description, body model or media type) and
    the errors it can return (status -> when), all errors in the one error shape."""
    from imgsvc.schemas import ErrorBody

    out: dict[int, Any] = {}
    for status, (description, body) in ok.items():
        if body is None:
            out[status] = {"description": description}
        elif isinstance(body, str):
            out[status] = {"description": description, "content": {body: {"schema": {}}}}
        else:
            out[status] = {
                "description": description,
                "content": {content_types.APPLICATION_JSON: {"model": body}},
            }
    for status, when in {400: ERROR_DESCRIPTIONS[400], **(errors or {})}.items():
        out[status] = {
            "description": when or ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
    return out
