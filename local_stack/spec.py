"""The stack as the local stack sees it: plain dataclasses read from a SAM template.

local_stack.template reads template.yaml into these; everything else (the API emulation, the
runtime, the resources in moto, the tools) uses only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.cfn import ACCOUNT_ID

HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


@dataclass(frozen=True)
class Route:
    method: str  # upper case; "ANY" matches every method
    path: str  # API Gateway resource path, e.g. /images/{image_id}
    function: str  # logical id of the function
    api: str  # logical id of the API
    api_key_required: bool


@dataclass(frozen=True)
class Cors:
    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None  # None: the path's methods, as SAM generates them
    max_age: str | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, str]
    templates: dict[str, str]


@dataclass(frozen=True)
class Api:
    logical_id: str
    stage: str
    binary_media_types: tuple[str, ...] = ()
    cors: Cors | None = None
    api_key_required: bool = False
    # SAM also puts the API key requirement on the OPTIONS methods it generates for CORS
    # unless Auth.AddApiKeyRequiredToCorsPreflight is false.
    api_key_on_preflight: bool = True
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)


@dataclass(frozen=True)
class AsyncConfig:
    """Lambda's asynchronous invocation settings (retries, where failed events go)."""

    max_retry_attempts: int = 2
    failure_queue: str | None = None  # logical id of an SQS queue in the template
    failure_format: str = "record"  # "record": on-failure destination; "event": DLQ


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str  # module.path.function, e.g. app.lambda_handler
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: float = 3.0
    async_config: AsyncConfig = AsyncConfig()

    @property
    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir.joinpath(*module.split(".")).with_suffix(".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class S3Subscription:
    """A function's S3 event: which bucket, which event names, which key filter."""

    function: str
    bucket: str  # logical id
    events: tuple[str, ...]
    filter_rules: tuple[tuple[str, str], ...]  # (prefix|suffix, value)


@dataclass(frozen=True)
class SqsSubscription:
    """A function's SQS event source: which queue, how many messages per invocation."""

    function: str
    queue: str  # logical id
    batch_size: int = 10
    report_failures: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    create_args: dict[str, Any]  # DynamoDB CreateTable arguments
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str
    cors_rules: tuple[dict[str, Any], ...] = ()  # S3 PutBucketCors rules


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)  # CreateQueue's, RedrivePolicy too
    dead_letter_queue: str | None = None  # logical id (RedrivePolicy.deadLetterTargetArn)
    max_receive_count: int | None = None


@dataclass
class StackSpec:
    template_path: Path
    region: str
    stack_name: str
    aws_endpoint: str
    apis: dict[str, Api] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    subscriptions: list[S3Subscription] = field(default_factory=list)
    sqs_subscriptions: list[SqsSubscription] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # the Outputs that resolve locally
    layer_paths: list[Path] = field(default_factory=list)  # each layer's <ContentUri>/python
    notes: list[str] = field(default_factory=list)  # what is not emulated, and why

    def queue_url(self, logical_id: str) -> str:
        return queue_url(self.aws_endpoint, self.queues[logical_id].name)


def queue_url(aws_endpoint: str, name: str) -> str:
    return f"{aws_endpoint.rstrip('/')}/{ACCOUNT_ID}/{name}"
