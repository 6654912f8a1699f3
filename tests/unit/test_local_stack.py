"""The local stack without servers: template reading, routing, proxy events and responses,
API Gateway's checks (API keys, 404/405/413, CORS preflights, 502s), the Lambda runtime,
S3 notification delivery (moto in-process), and template.yaml against the handlers' routes."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from local_stack import notifications, resources
from local_stack.cfn import Resolver, Unresolvable, load_template
from local_stack.events import (
    LAMBDA_PAYLOAD_LIMIT,
    MalformedResponse,
    media_type_matches,
    to_http_response,
)
from local_stack.routes import RouteTable
from local_stack.runtime import InvocationError, Runtime, add_layer_paths, load_handler_module
from local_stack.server import ApiGateway
from local_stack.spec import Route
from local_stack.template import IMPLICIT_API, merge_globals, read_stack

ROOT = Path(__file__).resolve().parents[2]
KEY = "unit-test-key"
ENDPOINT = "https://sqs.us-east-1.amazonaws.com"  # moto's in-process queue URLs use it

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: v1}
  Limit: {Type: Number, Default: 5}
Conditions:
  IsBig: !Equals [!Ref Limit, 10]
Globals:
  Function:
    Runtime: python3.13
    Timeout: 5
    MemorySize: 256
    Layers: [!Ref LibLayer]
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        BUCKET_NAME: !Sub "${AWS::StackName}-${AWS::AccountId}-data"
        TABLE_ARN: !GetAtt Table.Arn
        LIMIT: !Ref Limit
        SIZE: !If [IsBig, big, small]
        FLAG: true
        QUEUE_URL: !Ref Failures
        GONE: !Ref AWS::NoValue
        API_ROOT: !GetAtt Api.RootResourceId
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
      BinaryMediaTypes: [image~1*, multipart~1form-data]
      Cors:
        AllowOrigin: "'*'"
        AllowHeaders: "'Content-Type,X-Api-Key'"
        MaxAge: "'600'"
      Auth:
        ApiKeyRequired: true
        AddApiKeyRequiredToCorsPreflight: false
%(gateway_responses)s
  LibLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: lib/}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Environment: {Variables: {LIMIT: "7", OWN: mine}}
      Events:
        GetItem:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/items/{item_id}", Method: get}
        PostItems: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /items, Method: POST}}
        Special: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /items/special, Method: GET}}
        Public:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /public
            Method: GET
            Auth: {ApiKeyRequired: false}
        Proxy: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/files/{path+}", Method: ANY}}
        Nightly: {Type: Schedule, Properties: {Schedule: rate(1 day)}}
  Boom:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: boom/
      Handler: app.handler
      Events:
        Boom: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /boom, Method: GET}}
        Bad: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /bad, Method: GET}}
  Ingest:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ingest/
      Handler: app.handler
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events: [s3:ObjectCreated:*]
            Filter: {S3Key: {Rules: [{Name: prefix, Value: uploads/}]}}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: PK, AttributeType: S}
        - {AttributeName: SK, AttributeType: S}
        - {AttributeName: GSI1PK, AttributeType: S}
      KeySchema:
        - {AttributeName: PK, KeyType: HASH}
        - {AttributeName: SK, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: GSI1
          KeySchema: [{AttributeName: GSI1PK, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expire_at, Enabled: true}
      SSESpecification: {SSEEnabled: true}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-${AWS::AccountId}-data"
      CorsConfiguration:
        CorsRules:
          - AllowedOrigins: ["*"]
            AllowedMethods: [POST]
            ExposedHeaders: [ETag]
            MaxAge: 60
            Id: r1
  Failures:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 1209600}
"""

GATEWAY_RESPONSES = """\
      GatewayResponses:
        INVALID_API_KEY:
          StatusCode: 401
          ResponseParameters: {Headers: {Access-Control-Allow-Origin: "'*'"}}
          ResponseTemplates:
            application/json: '{"status": "error", "code": "key", "message": "template says no"}'
        DEFAULT_4XX:
          ResponseTemplates:
            application/json: >-
              {"status": "error", "code": "4xx", "message": $context.error.messageString}
"""

ECHO = """\
import json
import os

import unit_lib  # from the LibLayer's python/ directory

unit_lib.LOADS += 1  # counts imports of this module (unit_lib stays imported)


def handler(event, context):
    query = event["queryStringParameters"] or {}
    if "status" in query:
        return {"statusCode": int(query["status"]), "body": ""}
    if "png" in query:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": "iVBORw0KGgo=",
            "isBase64Encoded": True,
        }
    names = ("TABLE_NAME", "BUCKET_NAME", "LIMIT", "OWN", "SIZE", "FLAG", "GONE", "API_ROOT")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-One": "1"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps({
            "event": event,
            "env": {name: os.environ.get(name) for name in names},
            "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "aws_request_id": context.aws_request_id,
                "remaining": context.get_remaining_time_in_millis(),
            },
            "layer": unit_lib.VALUE,
            "loads": unit_lib.LOADS,
        }),
    }
"""

BOOM = """\
def handler(event, context):
    if event["path"] == "/bad":
        return {"statusCode": 200, "body": {"not": "a string"}}
    raise RuntimeError("boom goes the handler")
"""

INGEST = """\
import json
import os
from urllib.parse import unquote_plus


def handler(event, context):
    key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({"key": key, "event": event}) + "\\n")
    if "fail" in key:
        raise ValueError(f"cannot ingest {key}")
    return {"ok": key}
"""


def write_project(root: Path, *, gateway_responses: str = "") -> Path:
    files = {
        "template.yaml": TEMPLATE % {"gateway_responses": gateway_responses.rstrip("\n")},
        "echo/app.py": ECHO,
        "boom/app.py": BOOM,
        "ingest/app.py": INGEST,
        "lib/python/unit_lib.py": "VALUE = 'from the layer'\nLOADS = 0\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "template.yaml"


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def spec(template_path: Path):
    return read_stack(template_path, aws_endpoint=ENDPOINT, stack_name="unit")


@pytest.fixture(scope="module")
def runtime(spec) -> Runtime:
    saved = list(sys.path)
    add_layer_paths(spec.layer_paths)
    yield Runtime(spec.functions, region="us-east-1")
    sys.path[:] = saved


@pytest.fixture(scope="module")
def client(spec, runtime) -> Client:
    return Client(ApiGateway(spec.apis, spec.routes, runtime, KEY))


def get_json(client: Client, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    headers = {"x-api-key": KEY, **kwargs.pop("headers", {})}
    response = client.open(path, headers=headers, **kwargs)
    return response.status_code, json.loads(response.get_data() or b"null"), response.headers


# ---------------------------------------------------------------- template
def test_routes_come_from_api_events(spec) -> None:
    got = {(r.method, r.path, r.function, r.api_key_required) for r in spec.routes}
    assert got == {
        ("GET", "/items/{item_id}", "Echo", True),
        ("POST", "/items", "Echo", True),
        ("GET", "/items/special", "Echo", True),
        ("GET", "/public", "Echo", False),  # Auth: ApiKeyRequired: false on the event
        ("ANY", "/files/{path+}", "Echo", True),
        ("GET", "/boom", "Boom", True),
        ("GET", "/bad", "Boom", True),
    }
    assert {r.api for r in spec.routes} == {"Api"}
    assert any("Nightly: Schedule events are not emulated" in n for n in spec.notes)


def test_environment_is_resolved_with_globals_under_the_function(spec) -> None:
    env = spec.functions["Echo"].environment
    assert env["TABLE_NAME"] == "unit-table"  # !Ref to the table: its local name
    assert env["BUCKET_NAME"] == "unit-123456789012-data"  # the bucket's own BucketName
    assert env["BUCKET_NAME"] == spec.buckets["Bucket"].name
    assert env["TABLE_ARN"] == "arn:aws:dynamodb:us-east-1:123456789012:table/unit-table"
    assert env["LIMIT"] == "7"  # the function's variable wins over Globals
    assert env["OWN"] == "mine"
    assert env["SIZE"] == "small"  # !If on a condition over a parameter default
    assert env["FLAG"] == "true"  # a YAML boolean, as CloudFormation writes it
    assert env["QUEUE_URL"] == f"{ENDPOINT}/123456789012/unit-failures"
    assert "GONE" not in env  # AWS::NoValue
    assert "API_ROOT" not in env  # cannot be resolved locally: dropped, and said so
    assert any("API_ROOT dropped" in n for n in spec.notes)
    assert spec.functions["Boom"].environment["LIMIT"] == "5"  # the parameter's Default


def test_parameter_overrides(template_path: Path) -> None:
    spec = read_stack(template_path, aws_endpoint=ENDPOINT, parameter_overrides={"Limit": "10"})
    assert spec.functions["Boom"].environment["LIMIT"] == "10"
    assert spec.functions["Boom"].environment["SIZE"] == "big"
    with pytest.raises(ValueError, match="Nope"):
        read_stack(template_path, aws_endpoint=ENDPOINT, parameter_overrides={"Nope": "1"})


def test_function_settings_and_layers(spec, template_path: Path) -> None:
    echo = spec.functions["Echo"]
    assert echo.handler_file == template_path.parent / "echo" / "app.py"
    assert echo.handler_name == "handler"
    assert (echo.memory_mb, echo.timeout_s) == (256, 5.0)
    assert spec.layer_paths == [template_path.parent / "lib" / "python"]
    ingest = spec.functions["Ingest"].async_config
    assert (ingest.max_retry_attempts, ingest.failure_queue, ingest.failure_format) == (
        1,
        "Failures",
        "record",
    )


def test_table_bucket_queue_and_subscription(spec) -> None:
    table = spec.tables["Table"]
    assert table.create_args == {
        "TableName": "unit-table",
        "AttributeDefinitions": [
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
            {"AttributeName": "GSI1PK", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "GSI1",
                "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
    assert table.ttl_attribute == "expire_at"
    # CloudFormation's CorsRule names, translated to the S3 API's.
    assert spec.buckets["Bucket"].cors_rules == (
        {
            "AllowedOrigins": ["*"],
            "AllowedMethods": ["POST"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 60,
            "ID": "r1",
        },
    )
    assert spec.queues["Failures"].attributes == {"MessageRetentionPeriod": "1209600"}
    (sub,) = spec.subscriptions
    assert (sub.function, sub.bucket, sub.events, sub.filter_rules) == (
        "Ingest",
        "Bucket",
        ("s3:ObjectCreated:*",),
        (("prefix", "uploads/"),),
    )


def test_api_settings(spec) -> None:
    api = spec.apis["Api"]
    assert api.stage == "v1"
    assert api.binary_media_types == ("image/*", "multipart/form-data")
    assert api.cors and api.cors.allow_origin == "*" and api.cors.max_age == "600"
    assert api.cors.allow_methods is None
    assert (api.api_key_required, api.api_key_on_preflight) == (True, False)
    assert api.gateway_responses == {}


def test_implicit_api_and_globals_merge(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Globals:
              Api: {Cors: "'https://example.com'", Auth: {ApiKeyRequired: true}}
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  Runtime: python3.12
                  CodeUri: fn/
                  Handler: app.handler
                  Events:
                    Get: {Type: Api, Properties: {Path: /things/, Method: get}}
            """
        )
    )
    spec = read_stack(tmp_path / "template.yaml", aws_endpoint=ENDPOINT)
    assert spec.routes == [Route("GET", "/things", "Fn", IMPLICIT_API, True)]
    api = spec.apis[IMPLICIT_API]
    assert api.stage == "Prod" and api.cors and api.cors.allow_origin == "https://example.com"
    merged = merge_globals(
        {"Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}, "Timeout": 3},
        {"Layers": ["b"], "Environment": {"Variables": {"B": "2"}}, "Timeout": {"Ref": "T"}},
    )
    assert merged == {
        "Layers": ["a", "b"],
        "Environment": {"Variables": {"A": "1", "B": "2"}},
        "Timeout": {"Ref": "T"},
    }


def test_cfn_yaml_tags_and_intrinsics(template_path: Path) -> None:
    template = load_template(template_path)
    assert template["Conditions"]["IsBig"] == {"Fn::Equals": [{"Ref": "Limit"}, 10]}
    table_arn = template["Globals"]["Function"]["Environment"]["Variables"]["TABLE_ARN"]
    assert table_arn == {"Fn::GetAtt": ["Table", "Arn"]}
    resolver = Resolver(template, region="eu-west-1", stack_name="s", refs={"Table": "t"})
    assert (
        resolver.resolve({"Fn::Sub": "${AWS::Region}/${Table}/${!Literal}"})
        == "eu-west-1/t/${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}-${Stage}", {"X": {"Ref": "Table"}}]}) == "t-v1"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Limit"}]]}) == "a-5"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}) == "b"
    with pytest.raises(Unresolvable):
        resolver.resolve({"Ref": "Missing"})


# ---------------------------------------------------------------- routing
def test_route_matching_prefers_static_then_params_then_greedy() -> None:
    table = RouteTable(
        [
            Route("GET", "/items/{item_id}", "F", "A", True),
            Route("GET", "/items/special", "G", "A", True),
            Route("ANY", "/items/{proxy+}", "H", "A", True),
        ]
    )
    special, item, deep = (table.match(p) for p in ("/items/special", "/items/a%2Fb", "/items/a/b"))
    assert special and special.resource == "/items/special"
    assert (
        item and item.resource == "/items/{item_id}" and item.path_parameters == {"item_id": "a/b"}
    )
    assert deep and deep.resource == "/items/{proxy+}" and deep.path_parameters == {"proxy": "a/b"}
    assert deep.route_for("DELETE") and deep.route_for("DELETE").function == "H"
    trailing = table.match("/items/special/")
    assert trailing and trailing.resource == "/items/special"
    assert table.match("/items") is None and table.match("/items//x") is None
    with pytest.raises(ValueError, match="both"):
        RouteTable([Route("GET", "/a", "F", "A", True), Route("GET", "/a", "G", "A", True)])


# ---------------------------------------------------------------- requests and events
def test_proxy_event(client: Client) -> None:
    status, body, headers = get_json(
        client, "/items/a%2Fb?x=1&x=2&y=three", headers={"X-Custom": "hello"}
    )
    assert status == 200
    event = body["event"]
    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/a/b"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"item_id": "a/b"}
    assert event["queryStringParameters"] == {"x": "2", "y": "three"}  # the last value
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["three"]}
    assert event["headers"]["X-Custom"] == "hello"
    assert event["multiValueHeaders"]["X-Custom"] == ["hello"]
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["stageVariables"] is None
    assert (event["body"], event["isBase64Encoded"]) == (None, False)
    context = event["requestContext"]
    assert (context["stage"], context["path"]) == ("v1", "/v1/items/a/b")
    assert (context["resourcePath"], context["httpMethod"]) == ("/items/{item_id}", "GET")
    assert context["identity"]["apiKey"] == KEY and context["identity"]["sourceIp"]
    assert context["requestId"] == headers["x-amzn-RequestId"]


def test_no_query_and_no_path_parameters_are_null(client: Client) -> None:
    status, body, _ = get_json(client, "/public", headers={"x-api-key": ""})
    assert status == 200
    event = body["event"]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["requestContext"]["identity"]["apiKey"] is None  # not a keyed method


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [
        ("image/png", True),
        ("multipart/form-data; boundary=xyz", True),
        ("application/json", False),
        ("text/plain; charset=utf-8", False),
    ],
)
def test_binary_media_types_are_base64_encoded(
    client: Client, content_type: str, binary: bool
) -> None:
    data = b'{"a": "\xc3\xa9"}'
    status, body, _ = get_json(
        client, "/items", method="POST", data=data, headers={"Content-Type": content_type}
    )
    assert status == 200
    event = body["event"]
    assert event["isBase64Encoded"] is binary
    sent = base64.b64decode(event["body"]) if binary else event["body"].encode()
    assert sent == data


def test_lambda_context_and_environment(client: Client) -> None:
    status, body, _ = get_json(client, "/items/1")
    assert status == 200
    context = body["context"]
    assert context["function_name"] == "Echo"
    assert context["memory_limit_in_mb"] == "256"  # a string, as in the Python runtime
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert context["aws_request_id"] == body["event"]["requestContext"]["requestId"]
    assert 0 < context["remaining"] <= 5000
    assert body["env"]["TABLE_NAME"] == "unit-table" and body["env"]["LIMIT"] == "7"
    assert body["layer"] == "from the layer"
    assert "OWN" not in os.environ  # set for the call only


def test_handler_module_is_loaded_once(client: Client) -> None:
    first = get_json(client, "/items/1")[1]["loads"]
    second = get_json(client, "/items/2")[1]["loads"]
    assert first == second == 1


# ---------------------------------------------------------------- responses
def test_response_headers_are_merged(client: Client) -> None:
    response = client.get("/items/1", headers={"x-api-key": KEY})
    assert response.headers.getlist("X-Multi") == ["a", "b"]
    assert response.headers["X-One"] == "1"
    assert response.headers["Content-Type"] == "application/json"


def test_status_code_and_default_content_type(client: Client) -> None:
    response = client.get("/items/1?status=201", headers={"x-api-key": KEY})
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"  # API Gateway's default


def test_binary_response_is_decoded_only_for_a_binary_accept(client: Client) -> None:
    png = client.get("/items/1?png=1", headers={"x-api-key": KEY, "Accept": "image/png"})
    assert png.get_data() == base64.b64decode("iVBORw0KGgo=")
    # API Gateway looks at the first Accept type: */* is not one of the binary media types.
    text = client.get("/items/1?png=1", headers={"x-api-key": KEY, "Accept": "*/*"})
    assert text.get_data() == b"iVBORw0KGgo="


def test_to_http_response_rejects_malformed_results() -> None:
    for result in (None, {"body": "x"}, {"statusCode": 200, "body": {"a": 1}}, {"statusCode": "x"}):
        with pytest.raises(MalformedResponse):
            to_http_response(result, accept=None, binary_media_types=())
    with pytest.raises(MalformedResponse):
        to_http_response(
            {"statusCode": 200, "headers": {"X": {"nested": 1}}}, accept=None, binary_media_types=()
        )
    ok = to_http_response(
        {"statusCode": "204", "headers": {"X": 1, "B": True}, "body": None},
        accept=None,
        binary_media_types=(),
    )
    assert (ok.status, ok.body) == (204, b"")
    assert ("X", "1") in ok.headers and ("B", "true") in ok.headers


def test_media_type_matching() -> None:
    assert media_type_matches("image/png", ["image/*"])
    assert media_type_matches("IMAGE/PNG; q=1", ["image/png"])
    assert media_type_matches("text/html", ["*/*"])
    assert not media_type_matches("*/*", ["image/*"])
    assert not media_type_matches(None, ["*/*"])


# ---------------------------------------------------------------- API Gateway's checks
def test_api_key_is_enforced(client: Client) -> None:
    for headers in ({}, {"x-api-key": "wrong"}):
        response = client.get("/items/1", headers=headers)
        assert response.status_code == 403
        assert response.json == {
            "status": "error",
            "code": "forbidden",
            "message": "Forbidden: send your API key in the x-api-key header",
        }
    assert client.get("/public").status_code == 200


def test_unknown_path_is_404_and_wrong_method_405(client: Client) -> None:
    response = client.get("/nope", headers={"x-api-key": KEY})
    assert response.status_code == 404
    assert response.json["status"] == "error" and response.json["code"] == "not_found"
    response = client.delete("/items", headers={"x-api-key": KEY})
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"


def test_body_over_lambda_limit_is_413(client: Client) -> None:
    # 4.6 MB becomes more than 6 MB once base64-encoded into the event.
    data = b"\0" * (LAMBDA_PAYLOAD_LIMIT * 3 // 4 + 10)
    response = client.post(
        "/items", data=data, headers={"x-api-key": KEY, "Content-Type": "image/png"}
    )
    assert response.status_code == 413
    assert response.json["status"] == "error" and response.json["code"] == "too_large"


def test_handler_error_is_502_and_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="local_stack"):
        response = client.get("/boom", headers={"x-api-key": KEY})
    assert response.status_code == 502
    assert response.json == {
        "status": "error",
        "code": "internal_error",
        "message": "Internal server error",
    }
    assert "RuntimeError: boom goes the handler" in caplog.text
    assert "Traceback" in caplog.text
    malformed = client.get("/bad", headers={"x-api-key": KEY})
    assert malformed.status_code == 502


def test_cors_preflight(client: Client) -> None:
    response = client.options("/items/1", headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # No AllowMethods in the template: SAM lists the path's methods and OPTIONS.
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type,X-Api-Key"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert client.options("/nope").status_code == 404


def test_gateway_responses_and_preflight_key_from_the_template(tmp_path: Path) -> None:
    template = write_project(tmp_path, gateway_responses=GATEWAY_RESPONSES)
    template.write_text(template.read_text().replace("AddApiKeyRequiredToCorsPreflight: false", ""))
    spec = read_stack(template, aws_endpoint=ENDPOINT)
    client = Client(ApiGateway(spec.apis, spec.routes, Runtime({}, region="us-east-1"), KEY))
    response = client.get("/items/1")
    assert response.status_code == 401  # the template's StatusCode
    assert response.json == {"status": "error", "code": "key", "message": "template says no"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # DEFAULT_4XX applies to the types the template does not name, with $context variables.
    response = client.get("/nope")
    assert response.status_code == 403  # API Gateway's own status for this type
    assert response.json == {"status": "error", "code": "4xx", "message": "No route for GET /nope"}
    # SAM puts the API key on its OPTIONS methods unless AddApiKeyRequiredToCorsPreflight: false.
    assert client.options("/items/1").status_code == 401
    assert client.options("/items/1", headers={"x-api-key": KEY}).status_code == 200


# ---------------------------------------------------------------- runtime
def test_invocation_errors(spec) -> None:
    runtime = Runtime(spec.functions, region="us-east-1")
    with pytest.raises(InvocationError) as err:
        runtime.invoke("Boom", {"path": "/boom"})
    assert err.value.error_type == "RuntimeError"
    payload = err.value.payload("r1")
    assert payload["errorMessage"] == "boom goes the handler" and payload["stackTrace"]


# ---------------------------------------------------------------- S3 notifications
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        yield {name: boto3.client(name) for name in ("s3", "sqs", "dynamodb")}


def test_resources_are_created_from_the_template(spec, aws_env) -> None:
    resources.create_all(spec, **aws_env)
    table = aws_env["dynamodb"].describe_table(TableName="unit-table")["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["GSI1"]
    ttl = aws_env["dynamodb"].describe_time_to_live(TableName="unit-table")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expire_at"
    cors = aws_env["s3"].get_bucket_cors(Bucket="unit-123456789012-data")["CORSRules"]
    assert cors[0]["ExposeHeaders"] == ["ETag"] and cors[0]["MaxAgeSeconds"] == 60
    assert aws_env["sqs"].get_queue_url(QueueName="unit-failures")["QueueUrl"] == spec.queue_url(
        "Failures"
    )


def test_create_from_template_renames_for_in_process_tests(template_path: Path, aws_env) -> None:
    resources.create_from_template(
        template_path,
        dynamodb=aws_env["dynamodb"],
        s3=aws_env["s3"],
        table_name="t-test",
        bucket_name="b-test",
    )
    assert aws_env["dynamodb"].describe_table(TableName="t-test")["Table"]["KeySchema"]
    aws_env["s3"].head_bucket(Bucket="b-test")


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    return response.get("Messages", [])


def test_s3_notifications_reach_the_event_queue(spec, aws_env) -> None:
    resources.create_all(spec, **aws_env)
    (delivery,) = notifications.configure(spec, s3=aws_env["s3"], sqs=aws_env["sqs"], retry_delay=1)
    assert delivery.failure_queue_url == spec.queue_url("Failures")
    bucket = spec.buckets["Bucket"].name
    aws_env["s3"].put_object(Bucket=bucket, Key="uploads/a b.jpg", Body=b"x")
    aws_env["s3"].put_object(Bucket=bucket, Key="elsewhere/c.jpg", Body=b"x")  # filtered out
    bodies = [json.loads(m["Body"]) for m in _receive(aws_env["sqs"], delivery.queue_url)]
    records = [b["Records"][0] for b in bodies if "Records" in b]
    # moto encodes the key's slashes too; the poller re-encodes the key as S3 does.
    assert [r["s3"]["object"]["key"] for r in records] == ["uploads%2Fa+b.jpg"]
    assert records[0]["eventName"] == "ObjectCreated:Put"
    assert any(b.get("Event") == "s3:TestEvent" for b in bodies)


def test_poller_retries_then_moves_the_event_to_the_failure_queue(
    spec, aws_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_file = tmp_path / "calls.jsonl"
    monkeypatch.setenv("RECORD_FILE", str(record_file))
    resources.create_all(spec, **aws_env)
    (delivery,) = notifications.configure(spec, s3=aws_env["s3"], sqs=aws_env["sqs"], retry_delay=1)
    runtime = Runtime(spec.functions, region="us-east-1")
    poller = notifications.Poller(delivery, spec, runtime, aws_env["sqs"], retry_delay=1)
    bucket = spec.buckets["Bucket"].name
    aws_env["s3"].put_object(Bucket=bucket, Key="uploads/good.jpg", Body=b"x")
    aws_env["s3"].put_object(Bucket=bucket, Key="uploads/fail.jpg", Body=b"x")
    poller.start()
    try:
        deadline = time.monotonic() + 10
        failed: list[dict[str, Any]] = []
        while not failed and time.monotonic() < deadline:
            failed = _receive(aws_env["sqs"], delivery.failure_queue_url)
            time.sleep(0.2)
    finally:
        poller.stop()
    calls = [json.loads(line) for line in record_file.read_text().splitlines()]
    # MaximumRetryAttempts: 1 -> two attempts for the failing key, one for the good one.
    assert sorted(c["key"] for c in calls) == [
        "uploads/fail.jpg",
        "uploads/fail.jpg",
        "uploads/good.jpg",
    ]
    delivered = calls[0]["event"]["Records"][0]
    assert "userIdentity" in delivered  # completed like S3's events
    assert delivered["s3"]["object"]["key"].startswith("uploads/")  # S3 keeps slashes
    (message,) = failed
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "uploads/fail.jpg"
    assert _receive(aws_env["sqs"], delivery.queue_url) == []  # nothing left behind


# ---------------------------------------------------------------- template.yaml vs handlers
REAL_TEMPLATE = ROOT / "template.yaml"


def _real_functions() -> list[str]:
    if not REAL_TEMPLATE.exists():
        return []
    return sorted(
        logical_id
        for logical_id, resource in load_template(REAL_TEMPLATE)["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    )


def registered_routes(module: Any) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route of the module's Powertools resolvers.

    Resolvers keep their routes in ``_static_routes`` and ``_dynamic_routes`` (Route objects
    with ``method`` and ``path``, parameters written ``<name>``); routers included with
    ``include_router`` are registered into them too.
    """
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    routes = set()
    for value in vars(module).values():
        if isinstance(value, ApiGatewayResolver):
            for route in value._static_routes + value._dynamic_routes:
                routes.add((route.method, re.sub(r"<(\w+)>", r"{\1}", route.path)))
    return routes


@pytest.mark.parametrize("logical_id", _real_functions() or ["(none)"])
def test_template_routes_match_the_handlers(
    logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes come from template.yaml: a test fails if the template and a handler disagree."""
    spec = read_stack(REAL_TEMPLATE, aws_endpoint="http://127.0.0.1:3001")
    function = spec.functions[logical_id]
    if not function.handler_file.exists():
        pytest.skip(f"{function.handler_file.relative_to(ROOT)} does not exist yet")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module = load_handler_module(function.handler_file, f"_route_check_{logical_id}")
    monkeypatch.delitem(sys.modules, module.__name__)
    in_template = {(r.method, r.path) for r in spec.routes if r.function == logical_id}
    in_handler = registered_routes(module)
    assert in_template - in_handler == set(), f"{logical_id}: in template.yaml, not the handler"
    assert in_handler - in_template == set(), f"{logical_id}: in the handler, not template.yaml"


def test_real_template_reads_completely() -> None:
    spec = read_stack(REAL_TEMPLATE, aws_endpoint="http://127.0.0.1:3001")
    assert spec.routes and len(spec.tables) == 1 and len(spec.buckets) == 1
    table = next(iter(spec.tables.values()))
    keys = [k["AttributeName"] for k in table.create_args["KeySchema"]]
    assert keys == ["PK", "SK"] and table.ttl_attribute == "expire_at"
    assert [i["IndexName"] for i in table.create_args["GlobalSecondaryIndexes"]] == ["GSI1"]
    assert [s.function for s in spec.subscriptions] == ["IngestFunction"]
    bucket = next(iter(spec.buckets.values()))
    for function in spec.functions.values():
        env = function.environment
        assert env.get("TABLE_NAME") == table.name, function.logical_id
        assert env.get("BUCKET_NAME") == bucket.name, function.logical_id


def test_stage_prefix_serves_the_api_under_its_stage(spec, runtime) -> None:
    client = Client(ApiGateway(spec.apis, spec.routes, runtime, KEY, stage_prefix=True))
    status, body, _ = get_json(client, "/v1/items/a")
    assert status == 200
    assert body["event"]["path"] == "/items/a"
    assert body["event"]["requestContext"]["path"] == "/v1/items/a"
    # Outside the stage, API Gateway answers 403 Forbidden.
    status, body, _ = get_json(client, "/items/a")
    assert (status, body) == (403, {"message": "Forbidden"})
    assert get_json(client, "/v2/items/a")[0] == 403
