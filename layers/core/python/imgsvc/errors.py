"""The service's errors. Every error a client can cause is a ServiceError subclass.

The HTTP layer turns any ServiceError into the one error shape of the API:
``{"status": "error", "code": <code>, "message": <message>}`` with ``status_code``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class: an error with an HTTP status, a stable code and a message for users."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class BlockedUrl(BadRequest):
    """The URL is not allowed: wrong scheme, or it resolves to a non-public address."""

    code = "blocked_url"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Gone(ServiceError):
    status_code = 410
    code = "gone"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidImage(ServiceError):
    """The bytes are not an image the service accepts (not an image, truncated, bomb, format)."""

    status_code = 422
    code = "invalid_image"


class UpstreamError(ServiceError):
    """A remote server could not be reached or answered with an error."""

    status_code = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class KeyReused(ServiceError):
    """An Idempotency-Key sent again with a different request (IETF httpapi draft: 422)."""

    status_code = 422
    code = "idempotency_key_reused"


class Unavailable(ServiceError):
    """DynamoDB or S3 stayed busy or did not answer: nothing the client did; retry."""

    status_code = 503
    code = "unavailable"
