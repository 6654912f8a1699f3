"""API Gateway's request quotas in the emulation, and every error below it in the JSON shape:
through the WSGI app, and over a real socket for what http.server refuses itself."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import DechunkedInput
from werkzeug.test import Client, EnvironBuilder

from local_stack import server
from local_stack.runtime import Runtime
from local_stack.server import HEADER_SIZE_LIMIT, URL_LENGTH_LIMIT, ApiGateway, HttpServer
from local_stack.template import read_stack
from tests.unit.test_local_stack import KEY, ROOT

SHAPE = {"status", "code", "message"}
MANY_HEADERS = b"".join(b"x-h%d: 1\r\n" % i for i in range(120))  # http.server allows 100


@pytest.fixture(scope="module")
def gateway() -> ApiGateway:
    # The real template's routes; no function is ever invoked here.
    spec = read_stack(ROOT / "template.yaml", aws_endpoint="http://127.0.0.1:9", region="us-east-1")
    return ApiGateway(spec.apis, spec.routes, Runtime({}, region="us-east-1"), KEY)


def error_of(response: Any) -> tuple[int, str]:
    body = json.loads(response.get_data())
    assert set(body) == SHAPE and body["status"] == "error"
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, body["code"]


def test_a_url_over_the_quota_is_414(gateway: ApiGateway) -> None:
    client = Client(gateway)
    path = "/images?cursor=" + "a" * (URL_LENGTH_LIMIT - len("http://localhost/images?cursor=") + 1)
    assert error_of(client.get(path, headers={"x-api-key": KEY})) == (414, "uri_too_long")
    # One character less is routed (to the missing runtime function: not a limit error).
    assert client.get(path[:-1], headers={"x-api-key": KEY}).status_code != 414


def test_headers_over_the_quota_are_431(gateway: ApiGateway) -> None:
    client = Client(gateway)
    headers = {"x-api-key": KEY, "x-big": "b" * HEADER_SIZE_LIMIT}
    assert error_of(client.get("/status", headers=headers)) == (431, "headers_too_large")


def test_a_chunked_body_over_the_payload_quota_is_413(
    gateway: ApiGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "API_PAYLOAD_LIMIT", 1000)
    chunked = b"".join(b"%x\r\n%s\r\n" % (100, b"x" * 100) for _ in range(11)) + b"0\r\n\r\n"
    status, code = error_of(_chunked(gateway, chunked))
    assert (status, code) == (413, "too_large")


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc", b"3\r\nabcXX0\r\n\r\n"],
    ids=["bad-size", "truncated", "no-crlf"],
)
def test_a_malformed_chunked_body_is_400(gateway: ApiGateway, body: bytes) -> None:
    assert error_of(_chunked(gateway, body)) == (400, "bad_request")


def _chunked(gateway: ApiGateway, raw: bytes) -> Any:
    # The environ werkzeug's server builds for Transfer-Encoding: chunked.
    builder = EnvironBuilder(
        path="/images", method="POST", headers={"x-api-key": KEY, "Transfer-Encoding": "chunked"}
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = DechunkedInput(io.BytesIO(raw))
    environ["wsgi.input_terminated"] = True
    return Client(lambda e, s: gateway(environ, s)).post("/images")


# ---------------------------------------------------------------- over a socket
@pytest.fixture(scope="module")
def http(gateway: ApiGateway) -> Iterator[HttpServer]:
    srv = HttpServer(gateway, 0)
    srv.start()
    yield srv
    srv.stop()


def raw_request(srv: HttpServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /status HTTP/1.1\r\n" + MANY_HEADERS + b"\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /status HTTP/1.1\r\nx: " + b"a" * 70000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /status HTTP/9.x\r\n\r\n", 400, "bad_request"),
        (
            b"POST /images HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            400,
            "bad_request",
        ),
    ],
    ids=["request-line", "header-count", "header-line", "bad-syntax", "bad-chunk"],
)  # fmt: skip
def test_server_errors_are_json_not_html(
    http: HttpServer, data: bytes, status: int, code: str
) -> None:
    got, headers, body = raw_request(http, data)
    assert got == status and headers["content-type"] == "application/json"
    parsed = json.loads(body)
    assert set(parsed) == SHAPE and parsed["code"] == code
