"""Invariants of template.yaml that the architecture (docs/ARCHITECTURE.md) depends on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]

# docs/ARCHITECTURE.md, "Functions and routes": logical id -> (dir, imaging layer, routes).
FUNCTIONS: dict[str, tuple[str, bool, set[tuple[str, str]]]] = {
    "StatusFunction": (
        "status",
        False,
        {("GET", "/status"), ("GET", "/openapi.json"), ("GET", "/docs")},
    ),
    "AnalyzeFunction": ("analyze", True, {("POST", "/analyze")}),
    "HistoryFunction": ("history", False, {("GET", "/history")}),
    "UploadsFunction": (
        "uploads",
        False,
        {
            ("POST", "/uploads"),
            ("POST", "/uploads/{upload_id}/files"),
            ("GET", "/uploads/{upload_id}"),
        },
    ),
    "IngestFunction": ("ingest", True, set()),
    "ImagesFunction": (
        "images",
        False,
        {
            ("GET", "/images"),
            ("DELETE", "/images"),
            ("GET", "/images/{image_id}"),
            ("DELETE", "/images/{image_id}"),
            ("GET", "/images/{image_id}/content"),
            ("GET", "/images/{image_id}/thumbnail"),
            ("POST", "/images/lookup"),
        },
    ),
    "ImportFunction": ("import_image", True, {("POST", "/images")}),
    "CropFunction": ("crop", True, {("POST", "/images/{image_id}/crop")}),
    "DiffFunction": ("diff", False, {("GET", "/images/{image_id}/diff/{other_id}")}),
    "SimilarFunction": ("similar", False, {("GET", "/images/{image_id}/similar")}),
    "AsciiFunction": ("ascii", True, {("GET", "/images/{image_id}/ascii")}),
    "RenditionFunction": ("rendition", True, {("GET", "/images/{image_id}/rendition")}),
    "StatsFunction": ("stats", False, {("GET", "/stats")}),
    "WebAppFunction": ("webapp", False, {("GET", "/"), ("GET", "/static/{version}/{name}")}),
    "MigrationFunction": ("migrate", True, set()),
}
NO_API_KEY = {
    ("GET", "/status"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/images/{image_id}/content"),
    ("GET", "/images/{image_id}/thumbnail"),
    ("GET", "/images/{image_id}/rendition"),
    ("GET", "/"),
    ("GET", "/static/{version}/{name}"),
}
# Functions that only read: no write policy templates, no S3 writes.
READ_ONLY = {
    "StatusFunction",
    "HistoryFunction",
    "DiffFunction",
    "SimilarFunction",
    "AsciiFunction",
    "StatsFunction",
    "WebAppFunction",
}
WRITE_ACTIONS = re.compile(r"^(s3:(Put|Delete|Copy)|dynamodb:(Put|Update|Delete|BatchWrite))", re.I)
WRITE_POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy",
    "DynamoDBWritePolicy",
    "S3CrudPolicy",
    "S3WritePolicy",
    "S3FullAccessPolicy",
}
BUCKET_NAME = {"Fn::Sub": "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    tpl, matches = decode(str(ROOT / "template.yaml"))
    assert tpl is not None, [str(m) for m in matches]
    return tpl


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def globals_fn(template: dict[str, Any]) -> dict[str, Any]:
    return template["Globals"]["Function"]


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def props(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return resources[name]["Properties"]


def refs(values: list[Any]) -> list[str]:
    return [v["Ref"] for v in values if isinstance(v, dict) and "Ref" in v]


def api_events(fn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    events = fn["Properties"].get("Events", {})
    return {k: v["Properties"] for k, v in events.items() if v["Type"] == "Api"}


def statements(fn: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in fn["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            out += policy["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_functions_are_exactly_the_architecture_table(resources: dict[str, Any]) -> None:
    functions = of_type(resources, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, (folder, _imaging, _routes) in FUNCTIONS.items():
        p = functions[name]["Properties"]
        assert p["CodeUri"].rstrip("/") == f"functions/{folder}", name
        assert p["Handler"] == "app.lambda_handler", name
        assert (ROOT / "functions" / folder).is_dir(), name


def test_every_function_is_python313_on_arm64_with_tracing(
    resources: dict[str, Any], globals_fn: dict[str, Any]
) -> None:
    assert globals_fn["Runtime"] == "python3.13"
    assert globals_fn["Architectures"] == ["arm64"]
    assert globals_fn["Tracing"] == "Active"
    for name in FUNCTIONS:
        p = props(resources, name)
        assert p.get("Runtime", "python3.13") == "python3.13", name
        assert p.get("Architectures", ["arm64"]) == ["arm64"], name


def test_layers_every_function_gets_runtime_and_core_only_imaging_ones_get_imaging(
    resources: dict[str, Any], globals_fn: dict[str, Any]
) -> None:
    for name, (_folder, imaging, _routes) in FUNCTIONS.items():
        layers = refs(globals_fn.get("Layers", []) + props(resources, name).get("Layers", []))
        assert "RuntimeLayer" in layers and "CoreLayer" in layers, name
        assert ("ImagingLayer" in layers) is imaging, name
        assert len(layers) == len(set(layers)), name


def make_targets() -> set[str]:
    """Targets the top-level Makefile defines (make's database, nothing is run)."""
    dump = subprocess.run(
        ["make", "--no-print-directory", "-pRrq", "-f", str(ROOT / "Makefile"), ":"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return set(re.findall(r"^([A-Za-z0-9_-]+):", dump, flags=re.M))


def test_layers_are_built_for_python313_arm64_by_the_makefile(resources: dict[str, Any]) -> None:
    targets = make_targets()
    layers = of_type(resources, "AWS::Serverless::LayerVersion")
    assert set(layers) == {"RuntimeLayer", "CoreLayer", "ImagingLayer"}
    for name, layer in layers.items():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"], name
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"], name
        assert layer["Metadata"]["BuildArchitecture"] == "arm64", name
    for name, res in {**layers, **of_type(resources, "AWS::Serverless::Function")}.items():
        assert res["Metadata"]["BuildMethod"] == "makefile", name
        assert f"build-{name}" in targets, f"Makefile has no build-{name}"


def test_private_urls_are_never_allowed(
    resources: dict[str, Any], globals_fn: dict[str, Any]
) -> None:
    assert globals_fn["Environment"]["Variables"]["ALLOW_PRIVATE_URLS"] == "false"
    for name in FUNCTIONS:
        env = props(resources, name).get("Environment", {}).get("Variables", {})
        assert env.get("ALLOW_PRIVATE_URLS", "false") == "false", name


def test_environment_names_are_the_ones_config_reads(globals_fn: dict[str, Any]) -> None:
    env = globals_fn["Environment"]["Variables"]
    config = (ROOT / "layers/core/python/imgsvc/config.py").read_text()
    expected = {
        "TABLE_NAME",
        "BUCKET_NAME",
        "UPLOAD_PREFIX",
        "IMAGE_PREFIX",
        "MAX_UPLOAD_BYTES",
        "MAX_PIXELS",
        "ALLOW_PRIVATE_URLS",
        "FETCH_TIMEOUT_SECONDS",
        "CACHE_TTL_SECONDS",
        "STATS_DAY_SHARDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert expected <= set(env)
    for name in env:
        # AWS_ENDPOINT_URL is boto3's (test_aws_endpoint_is_declared_empty).
        if not name.startswith("POWERTOOLS_") and name != "AWS_ENDPOINT_URL":
            assert f'"{name}"' in config, (
                f"{name} is set in template.yaml but config.py never reads it"
            )
    assert env["UPLOAD_PREFIX"] == "uploads/"
    assert env["IMAGE_PREFIX"] == "images/"


def test_aws_endpoint_is_declared_empty(
    resources: dict[str, Any], globals_fn: dict[str, Any]
) -> None:
    """Empty in AWS (botocore ignores it); declared so `sam local --env-vars` can set it."""
    assert globals_fn["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""
    for name in FUNCTIONS:
        env = props(resources, name).get("Environment", {}).get("Variables", {})
        assert env.get("AWS_ENDPOINT_URL", "") == "", name


def test_routes_and_api_keys(resources: dict[str, Any]) -> None:
    api = props(resources, "ImageApi")
    assert api["Auth"]["ApiKeyRequired"] is True
    assert api["Auth"]["UsagePlan"]["CreateUsagePlan"] == "PER_API"
    # A CORS preflight carries no x-api-key header.
    assert api["Auth"]["AddApiKeyRequiredToCorsPreflight"] is False
    open_routes = set()
    for name, (_folder, _imaging, routes) in FUNCTIONS.items():
        events = api_events(resources[name])
        found = {(e["Method"].upper(), e["Path"]) for e in events.values()}
        assert found == routes, name
        for event in events.values():
            assert event["RestApiId"] == {"Ref": "ImageApi"}, name
            if event.get("Auth", {}).get("ApiKeyRequired", True) is False:
                open_routes.add((event["Method"].upper(), event["Path"]))
    assert open_routes == NO_API_KEY


def test_api_cors_binary_types_and_error_shape(resources: dict[str, Any]) -> None:
    api = props(resources, "ImageApi")
    assert api["Cors"]["AllowOrigin"] == "'*'"
    allowed = api["Cors"]["AllowHeaders"].lower()
    assert "content-type" in allowed and "x-api-key" in allowed
    assert {"multipart~1form-data", "image~1*"} <= set(api["BinaryMediaTypes"])
    responses = api["GatewayResponses"]
    assert {
        "INVALID_API_KEY",
        "THROTTLED",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    } <= set(responses)
    assert str(responses["INVALID_API_KEY"]["StatusCode"]) == "403"
    assert str(responses["THROTTLED"]["StatusCode"]) == "429"
    assert str(responses["REQUEST_TOO_LARGE"]["StatusCode"]) == "413"
    for kind, response in responses.items():
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == "'*'", kind
        body = response["ResponseTemplates"]["application/json"]
        assert re.search(r'"status": "error", "code": "[a-z_]+", "message": ', body), kind


def test_table_design(resources: dict[str, Any]) -> None:
    table = props(resources, "ImageTable")
    assert resources["ImageTable"]["Type"] == "AWS::DynamoDB::Table"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"PK": "S", "SK": "S", "GSI1PK": "S", "GSI1SK": "S"}
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "GSI1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expire_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_bucket_is_private_encrypted_and_expires_uploads(resources: dict[str, Any]) -> None:
    bucket = props(resources, "UploadBucket")
    block = bucket["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = [
        r
        for r in bucket["LifecycleConfiguration"]["Rules"]
        if r.get("Prefix") == "uploads/" and r["Status"] == "Enabled"
    ]
    assert rules and rules[0]["ExpirationInDays"] == 1
    assert rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert "POST" in cors["AllowedMethods"] and "GET" in cors["AllowedMethods"]


def test_bucket_name_is_fixed_and_never_referenced_by_functions(
    resources: dict[str, Any], globals_fn: dict[str, Any]
) -> None:
    """A Ref to the bucket from a function or its policies closes a dependency cycle."""
    assert props(resources, "UploadBucket")["BucketName"] == BUCKET_NAME
    assert globals_fn["Environment"]["Variables"]["BUCKET_NAME"] == BUCKET_NAME
    for name in FUNCTIONS:
        p = props(resources, name)
        assert "UploadBucket" not in repr(p.get("Environment", {})), name
        assert "UploadBucket" not in repr(p.get("Policies", [])), name
        for statement in statements(resources[name]):
            for resource in as_list(statement["Resource"]):
                arn = resource["Fn::Sub"]
                if arn.startswith("arn:${AWS::Partition}:dynamodb:"):
                    assert arn.endswith(":table/${ImageTable}"), name
                    continue
                assert arn.startswith("arn:${AWS::Partition}:s3:::" + BUCKET_NAME["Fn::Sub"]), name


def test_read_only_functions_cannot_write(resources: dict[str, Any]) -> None:
    for name in READ_ONLY:
        policies = props(resources, name).get("Policies", [])
        templates = {k for p in policies if isinstance(p, dict) for k in p if k != "Statement"}
        assert not templates & WRITE_POLICY_TEMPLATES, name
        for statement in statements(resources[name]):
            for action in as_list(statement["Action"]):
                assert not WRITE_ACTIONS.match(action), f"{name}: {action}"


def test_only_uploads_and_ingest_touch_uploads_prefix(resources: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        touches = any(
            "/uploads/" in r["Fn::Sub"]
            for s in statements(resources[name])
            for r in as_list(s["Resource"])
        )
        assert touches is (name in {"UploadsFunction", "IngestFunction"}), name


def test_ingest_is_triggered_by_uploads_and_has_a_dead_letter_queue(
    resources: dict[str, Any],
) -> None:
    ingest = props(resources, "IngestFunction")
    s3_events = [e["Properties"] for e in ingest["Events"].values() if e["Type"] == "S3"]
    assert len(s3_events) == 1
    (event,) = s3_events
    assert event["Bucket"] == {"Ref": "UploadBucket"}
    assert event["Events"] in ("s3:ObjectCreated:*", ["s3:ObjectCreated:*"])
    assert event["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    config = ingest["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert resources["IngestDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"


def test_migrations_fan_out_over_a_queue_with_a_dead_letter_queue(
    resources: dict[str, Any],
) -> None:
    fn = props(resources, "MigrationFunction")
    (event,) = fn["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["MigrationQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = props(resources, "MigrationQueue")
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["MigrationDeadLetterQueue", "Arn"]}
    # The function knows which receive is the last: it counts a message as failed then.
    assert (
        str(redrive["maxReceiveCount"]) == fn["Environment"]["Variables"]["MIGRATION_MAX_RECEIVES"]
    )
    # Lambda needs the visibility timeout to be at least the function's timeout.
    assert int(queue["VisibilityTimeout"]) >= 6 * int(fn["Timeout"])
    # No Scan or Query: it reads and writes single items (and transactions of them).
    actions = {a for s in statements(resources["MigrationFunction"]) for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("dynamodb:")} - {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
    # S3 writes only under renditions/ (the thumbnails backfill), never to the originals.
    for statement in statements(resources["MigrationFunction"]):
        writes = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
        if any(WRITE_ACTIONS.match(a) for a in writes):
            resource = json.dumps(statement["Resource"])
            assert resource.endswith('/renditions/*"') or resource.endswith('/renditions/*"}'), (
                resource
            )


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {"ApiUrl", "BucketName", "TableName", "ApiKeyId", "IngestDeadLetterQueueUrl"} <= set(
        outputs
    )
    # scripts/migrate.py finds the queue and the function's settings by these.
    assert {"MigrationQueueUrl", "MigrationDeadLetterQueueUrl", "MigrationFunctionName"} <= set(
        outputs
    )
    # SAM names the key of a PER_API usage plan <ApiLogicalId>ApiKey.
    assert outputs["ApiKeyId"]["Value"] == {"Ref": "ImageApiApiKey"}
    assert outputs["ApiUrl"]["Value"]["Fn::Sub"].endswith("/${StageName}/")


def test_parameter_defaults(template: dict[str, Any], globals_fn: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert int(params["MaxUploadBytes"]["Default"]) == 26214400
    assert int(params["MaxPixels"]["Default"]) == 100000000
    assert params["StageName"]["Default"] == "prod"
    env = globals_fn["Environment"]["Variables"]
    assert env["MAX_UPLOAD_BYTES"] == {"Ref": "MaxUploadBytes"}
    assert env["MAX_PIXELS"] == {"Ref": "MaxPixels"}
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            name = re.sub(r"\[.*\]", "", name).strip().lower().replace("_", "-")
            pins[name] = version.strip()
    return pins


def test_layer_requirements_are_pinned_to_the_dev_versions() -> None:
    dev = _pins(ROOT / "requirements-dev.txt")
    for layer in ("runtime", "imaging"):
        pins = _pins(ROOT / "layers" / layer / "requirements.txt")
        assert pins, layer
        for name, version in pins.items():
            assert version, f"{layer}: {name} is not pinned"
            assert name not in {"boto3", "botocore", "s3transfer", "scipy", "pywavelets"}, name
            if name in dev:
                assert version == dev[name], f"{layer}: {name}=={version}, dev has {dev[name]}"
    assert {"aws-lambda-powertools", "multipart"} <= set(
        _pins(ROOT / "layers/runtime/requirements.txt")
    )
    # pi-heif: libheif with its LGPL decoder only; pillow-heif would bring GPL x265 into the layer.
    assert set(_pins(ROOT / "layers/imaging/requirements.txt")) == {
        "pillow",
        "numpy",
        "imagehash",
        "pi-heif",
    }
