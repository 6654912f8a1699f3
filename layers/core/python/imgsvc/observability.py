"""Logging, metrics and tracing for every module: the one place that builds them.

Domain modules and handlers import ``logger``, ``metrics`` and ``tracer`` from here, never
from the HTTP glue, so the same objects serve API functions and the S3-triggered ingest.

Tracing is opt-in (``TRACING_ENABLED``, the template's ``Tracing`` parameter). When it is
on, ``tracer`` is Powertools' Tracer (X-Ray SDK subsegments, patched boto3 and http
clients). When it is off, ``tracer`` is ``NoOpTracer``: Powertools' Tracer imports
``aws_xray_sdk.core`` even when disabled (its provider is built in the constructor, and
disabling goes through ``aws_xray_sdk.global_sdk_config``), and that import builds a
botocore session for the sampler: a third of a cold start for nothing. Lambda's own active
tracing of each invocation is configured in the template and does not need the SDK.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from imgsvc.config import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

F = TypeVar("F", bound=Callable[..., Any])

# Powertools reads POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL and
# POWERTOOLS_METRICS_NAMESPACE here, when the first handler module is imported.
logger = Logger()
metrics = Metrics()
# Most functions publish only the cold-start metric; Powertools would warn on every other call.
warnings.filterwarnings("ignore", message="No application metrics to publish")


class NoOpTracer:
    """The part of Powertools' Tracer API this service uses, doing nothing.

    Written by hand because Powertools has no tracer that avoids importing the X-Ray SDK.
    The decorators return the function itself, so tracing off costs nothing per call.
    """

    disabled = True

    @overload
    def capture_lambda_handler(self, lambda_handler: F) -> F: ...

    @overload
    def capture_lambda_handler(
        self,
        lambda_handler: None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[[F], F]: ...

    def capture_lambda_handler(
        self,
        lambda_handler: F | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> F | Callable[[F], F]:
        return lambda_handler if lambda_handler is not None else _identity

    @overload
    def capture_method(self, method: F) -> F: ...

    @overload
    def capture_method(
        self,
        method: None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[[F], F]: ...

    def capture_method(
        self,
        method: F | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> F | Callable[[F], F]:
        return method if method is not None else _identity

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def _identity(fn: F) -> F:
    return fn


def create_tracer(enabled: bool) -> Tracer | NoOpTracer:
    """Powertools' Tracer when tracing is enabled, else a tracer that imports nothing."""
    if not enabled:
        return NoOpTracer()
    from aws_lambda_powertools.tracing import Tracer

    return Tracer()


tracer = create_tracer(get_settings().tracing_enabled)
