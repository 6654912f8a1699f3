"""The API Gateway emulation as a WSGI app, and a threaded HTTP server to run it on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug import Request, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
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
from local_stack.runtime import Busy, InvocationError, Invoker
from local_stack.spec import HTTP_METHODS, Api, Route

log = logging.getLogger("local_stack")

# API Gateway stops waiting for a Lambda integration after 29 s.
INTEGRATION_TIMEOUT_S = 29.0
# REST API quotas (API Gateway developer guide, "Quotas for configuring and running a REST API"):
# the URL of a regional API is at most 10240 characters, and the request line and the header
# values together at most 10240 bytes.
URL_LENGTH_LIMIT = 10240
HEADER_SIZE_LIMIT = 10240


class ApiGateway:
    """WSGI app: routes, API keys, CORS preflights, payload limits, then the Lambda proxy."""

    def __init__(
        self,
        apis: dict[str, Api],
        routes: Iterable[Route],
        runtime: Invoker,
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
        # One byte over the quota is read at most (werkzeug stops a chunked body there).
        request.max_content_length = API_PAYLOAD_LIMIT + 1
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        try:
            refused = self._check_limits(request, request_id)
            result, function = (refused, None) if refused else self.handle(request, request_id)
        except Exception:
            # Never werkzeug's HTML page: the emulation's own failure in the service's shape.
            log.exception("the API emulation failed on %s %s", request.method, request.path)
            result, function = (
                error_response(self.default_api, 500, "internal_error", "Internal server error"),
                None,
            )
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
    def _check_limits(self, request: Request, request_id: str) -> HttpResponse | None:
        """API Gateway's request quotas, then the body read whole (it is buffered there too)."""
        api = self.default_api
        url = request.url
        if len(url) > URL_LENGTH_LIMIT:
            message = f"The URL is {len(url)} characters long: API Gateway's limit is "
            return error_response(api, 414, "uri_too_long", message + f"{URL_LENGTH_LIMIT}")
        raw = request.environ.get("RAW_URI") or request.full_path
        line = f"{request.method} {raw} {request.environ.get('SERVER_PROTOCOL', 'HTTP/1.1')}"
        size = len(line.encode("latin-1", "replace")) + sum(
            len(value.encode("latin-1", "replace")) for _, value in request.headers.items()
        )
        if size > HEADER_SIZE_LIMIT:
            message = (
                f"The request line and header values are {size} bytes: API Gateway's limit "
                f"is {HEADER_SIZE_LIMIT}"
            )
            return error_response(api, 431, "headers_too_large", message)
        try:
            if len(request.get_data(cache=True)) > API_PAYLOAD_LIMIT:
                raise RequestEntityTooLarge
        except RequestEntityTooLarge:
            return self._gateway(api, "REQUEST_TOO_LARGE", request_id)
        except (HTTPException, OSError, ValueError) as err:
            # A malformed chunked body, or the client hung up before sending all of it.
            message = f"The request body could not be read: {_reason(err)}"
            extra = {"Connection": "close"}
            return error_response(api, 400, "bad_request", message, extra)
        return None

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


def _reason(err: BaseException) -> str:
    if isinstance(err, HTTPException):
        return err.description or err.name
    return str(err) or type(err).__name__


# Codes for the errors http.server raises before the app sees a request.
_SERVER_ERROR_CODES = {413: "too_large", 414: "uri_too_long", 431: "headers_too_large"}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The app logs each request itself, with the function and the duration."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors (request line or header too long, bad syntax, too many headers)
        in the service's JSON shape instead of its HTML page."""
        short = self.responses.get(code, ("Error", ""))[0]
        default = "internal_error" if code >= 500 else "bad_request"
        body = json.dumps(
            {
                "status": "error",
                "code": _SERVER_ERROR_CODES.get(code, default),
                "message": message or short,
            }
        ).encode()
        log.info("%s -> %d (%s)", (self.requestline or "")[:80], code, message or short)
        # A request line too broken to parse leaves HTTP/0.9, which gets no status line.
        self.request_version = (
            "HTTP/1.0" if self.request_version == "HTTP/0.9" else self.request_version
        )
        self.send_response_only(code, short)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


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
