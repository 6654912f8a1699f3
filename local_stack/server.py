"""The API Gateway emulation as a WSGI app, and a threaded HTTP server to run it on 127.0.0.1."""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local_stack.events import (
    API_PAYLOAD_LIMIT,
    LAMBDA_PAYLOAD_LIMIT,
    HttpResponse,
    MalformedResponse,
    build_event,
    error_response,
    event_size,
    gateway_response,
    to_http_response,
)
from local_stack.routes import Match, RouteTable
from local_stack.runtime import Busy, InvocationError, Runtime
from local_stack.template import HTTP_METHODS, Api, Route

log = logging.getLogger("local_stack")

# API Gateway stops waiting for a Lambda integration after 29 s.
INTEGRATION_TIMEOUT_S = 29.0


class ApiGateway:
    """WSGI app: routes, API keys, CORS preflights, payload limits, then the Lambda proxy."""

    def __init__(
        self,
        apis: dict[str, Api],
        routes: Iterable[Route],
        runtime: Runtime,
        api_key: str,
        *,
        stage_prefix: bool = False,
    ):
        self.apis = apis
        self.table = RouteTable(routes)
        self.runtime = runtime
        self.api_key = api_key
        # Responses for unknown paths use the API's settings when there is only one API.
        self.default_api = next(iter(apis.values())) if len(apis) == 1 else None
        if stage_prefix and self.default_api is None:
            raise ValueError("--stage-prefix needs a template with exactly one API")
        # As in AWS: every path starts with /<stage>; /<stage> alone is the root resource.
        self.stage = self.default_api.stage if stage_prefix and self.default_api else None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        result, function = self.handle(request, request_id)
        log.info(
            "%s %s -> %d%s (%.0f ms)",
            request.method,
            request.full_path.rstrip("?"),
            result.status,
            f" {function}" if function else "",
            (time.monotonic() - started) * 1000,
        )
        response = Response(result.body, status=result.status)
        response.headers.clear()
        for name, value in [*result.headers, ("x-amzn-RequestId", request_id)]:
            response.headers.add(name, value)
        return response(environ, start_response)

    def handle(self, request: Request, request_id: str) -> tuple[HttpResponse, str | None]:
        """The response, and the function that produced it (None: API Gateway itself did)."""
        if (request.content_length or 0) > API_PAYLOAD_LIMIT:
            return self._gateway(self.default_api, "REQUEST_TOO_LARGE", request_id), None
        raw_path = _raw_path(request)
        context_path = None
        if self.stage is not None:
            prefix = f"/{self.stage}"
            if raw_path != prefix and not raw_path.startswith(prefix + "/"):
                # API Gateway's answer for a path outside every stage.
                body = b'{"message":"Forbidden"}'
                headers = [("Content-Type", "application/json")]
                return HttpResponse(403, headers, body), None
            context_path = request.path  # decoded, as API Gateway reports it
            raw_path = raw_path[len(prefix) :] or "/"
        match = self.table.match(raw_path)
        if match is None:
            message = f"No route for {request.method} {request.path}"
            return self._gateway(
                self.default_api, "MISSING_AUTHENTICATION_TOKEN", request_id, message
            ), None
        api = self.apis[next(iter(match.methods.values())).api]
        method = request.method.upper()
        if method == "OPTIONS" and "OPTIONS" not in match.methods and api.cors:
            return self._preflight(request, match, api, request_id), None
        route = match.route_for(method)
        if route is None:
            # API Gateway answers a missing method like an unknown path (403 Missing
            # Authentication Token, or the template's MISSING_AUTHENTICATION_TOKEN response);
            # 405 with the allowed methods tells a developer more.
            allowed = ", ".join(sorted(match.methods))
            message = f"{method} is not allowed on {match.resource}: use {allowed}"
            extra = {"Allow": allowed}
            return error_response(api, 405, "method_not_allowed", message, extra), None
        if route.api_key_required and not self._has_key(request):
            return self._gateway(api, "INVALID_API_KEY", request_id), None
        return self._invoke(request, request_id, match, route, api, context_path), route.function

    # ---------------------------------------------------------------- steps
    def _has_key(self, request: Request) -> bool:
        sent = request.headers.get("x-api-key", "")
        return hmac.compare_digest(sent.encode(), self.api_key.encode())

    def _preflight(self, request: Request, match: Match, api: Api, request_id: str) -> HttpResponse:
        # SAM's generated OPTIONS method needs the key too, unless AddApiKeyRequiredToCorsPreflight
        # is false: browsers never send it on a preflight, so that fails in AWS as it does here.
        if api.api_key_required and api.api_key_on_preflight and not self._has_key(request):
            log.warning(
                "CORS preflight refused: %s requires the API key on OPTIONS "
                "(set Auth.AddApiKeyRequiredToCorsPreflight: false)",
                api.logical_id,
            )
            return self._gateway(api, "INVALID_API_KEY", request_id)
        cors = api.cors
        assert cors is not None
        if "ANY" in match.methods:
            methods = ",".join(HTTP_METHODS)
        else:
            methods = ",".join(sorted({*match.methods, "OPTIONS"}))
        headers = [
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", cors.allow_origin),
            ("Access-Control-Allow-Methods", cors.allow_methods or methods),
        ]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return HttpResponse(200, headers, b"")

    def _invoke(
        self,
        request: Request,
        request_id: str,
        match: Match,
        route: Route,
        api: Api,
        context_path: str | None = None,
    ) -> HttpResponse:
        api_key = request.headers.get("x-api-key")
        event = build_event(
            request,
            match=match,
            route=route,
            api=api,
            request_id=request_id,
            api_key=api_key,
            context_path=context_path,
        )
        size = event_size(event)
        if size > LAMBDA_PAYLOAD_LIMIT:
            log.warning(
                "%s: the event is %d bytes, over Lambda's %d byte invocation limit",
                route.function,
                size,
                LAMBDA_PAYLOAD_LIMIT,
            )
            return self._gateway(api, "REQUEST_TOO_LARGE", request_id)
        try:
            invocation = self.runtime.invoke(
                route.function, event, request_id=request_id, wait=INTEGRATION_TIMEOUT_S
            )
        except Busy:
            log.error("%s: another invocation held the runtime for 29 s", route.function)
            return self._gateway(api, "INTEGRATION_TIMEOUT", request_id)
        except InvocationError:
            return self._gateway(api, "DEFAULT_5XX", request_id)
        if invocation.duration_ms > INTEGRATION_TIMEOUT_S * 1000:
            log.error("%s: API Gateway gives up on an integration after 29 s", route.function)
            return self._gateway(api, "INTEGRATION_TIMEOUT", request_id)
        if invocation.payload_bytes > LAMBDA_PAYLOAD_LIMIT:
            log.error(
                "%s: the response is %d bytes, over Lambda's %d byte limit",
                route.function,
                invocation.payload_bytes,
                LAMBDA_PAYLOAD_LIMIT,
            )
            return self._gateway(api, "DEFAULT_5XX", request_id)
        try:
            return to_http_response(
                invocation.payload,
                accept=request.headers.get("Accept"),
                binary_media_types=api.binary_media_types,
            )
        except MalformedResponse as err:
            log.error("%s: malformed Lambda proxy response: %s", route.function, err)
            return self._gateway(api, "DEFAULT_5XX", request_id)

    def _gateway(
        self, api: Api | None, kind: str, request_id: str, message: str | None = None
    ) -> HttpResponse:
        return gateway_response(api, kind, request_id=request_id, message=message)


def _raw_path(request: Request) -> str:
    # The path as sent, so that an encoded slash stays inside a path parameter.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return urlsplit(raw).path or "/"
    return quote(request.path)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The app logs each request itself, with the function and the duration."""


class HttpServer:
    """A threaded werkzeug server on 127.0.0.1 (port 0: any free port)."""

    def __init__(
        self, app: Any, port: int, request_handler: type[WSGIRequestHandler] = _QuietHandler
    ) -> None:
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=request_handler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
