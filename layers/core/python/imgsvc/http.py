"""HTTP glue shared by every API handler: the resolver, the error shape, and request parsing.

Handlers build their routes on ``create_app()`` and export ``lambda_handler = api_handler(app)``.
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
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel, ValidationError

from imgsvc.errors import BadRequest, NotFound, ServiceError
from imgsvc.observability import logger, metrics, tracer

M = TypeVar("M", bound=BaseModel)


def error_response(error: ServiceError) -> Response:
    return Response(
        status_code=error.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
    )


def create_app() -> APIGatewayRestResolver:
    """A REST API resolver whose every error, expected or not, has the service's one shape."""
    app = APIGatewayRestResolver(
        cors=CORSConfig(allow_origin="*", allow_headers=["Content-Type", "x-api-key"], max_age=600)
    )

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
            NotFound(f"no route for {event.http_method} {event.path}: see the README's API table")
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        # Log the stack trace for us; never show it to the client.
        logger.exception("unhandled error")
        return error_response(ServiceError("internal error: the request was not completed"))

    return app


def api_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for an API function, with logging, tracing and metrics."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler


def raw_body(app: APIGatewayRestResolver) -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as err:
            raise BadRequest("the request body is not valid base64") from err
    return body.encode("utf-8")


def json_body(app: APIGatewayRestResolver) -> Any:
    data = raw_body(app)
    if not data.strip():
        raise BadRequest("the request body is empty: send a JSON object")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the request body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise BadRequest("the request body is nested too deeply") from err


def describe_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_model(data: Any, model: type[M]) -> M:
    """Validate data against a pydantic model; a mismatch is a 400 naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise BadRequest(f"invalid request: {describe_validation_error(err)}") from err


def parse_body(app: APIGatewayRestResolver, model: type[M]) -> M:
    return parse_model(json_body(app), model)


def query_int(app: APIGatewayRestResolver, name: str, default: int, low: int, high: int) -> int:
    raw = app.current_event.get_query_string_value(name=name, default_value=None)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {raw!r}") from err
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high}, got {value}")
    return value


def json_response(status_code: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, default=str),
        headers=headers or {},
    )
