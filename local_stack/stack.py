"""Wiring: moto's server, the template's resources, the runtime, the API server, the pollers."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack import notifications, resources, sqs_events
from local_stack.moto_dynamodb import DynamoDBLock, install_transaction_undo_log
from local_stack.runtime import add_layer_paths
from local_stack.s3_cors import S3Cors
from local_stack.s3_post_policy import PostPolicyMiddleware
from local_stack.server import ApiGateway, HttpServer
from local_stack.spec import StackSpec
from local_stack.template import read_stack
from local_stack.workers import ProcessRuntime

log = logging.getLogger("local_stack")

# Environment of the whole process (handlers included): AWS means the moto server, always.
_AWS_VARIABLES_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


def isolate_from_aws(endpoint: str, region: str) -> None:
    """Point every boto3 client of this process at the moto server, with dummy credentials.

    Profiles, config files, session tokens and per-service endpoints from the developer's
    shell could otherwise send a request to real AWS.
    """
    for name in list(os.environ):
        if name in _AWS_VARIABLES_REMOVED or name.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[name]
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


class MotoServer(HttpServer):
    """moto's server (what ThreadedMotoServer runs), bound here so a busy port raises at once;
    ThreadedMotoServer binds in its thread and its start() then waits forever."""

    def __init__(self, port: int) -> None:
        # Before moto.settings is first imported: S3 then answers CORS from the bucket's
        # CorsConfiguration instead of allowing every origin.
        os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        app: Any = DomainDispatcherApplication(create_backend_app)
        # WSGI middlewares in front of moto, each in its own module (innermost first). CORS is
        # outermost: S3 applies the bucket's CORS rules to its errors too.
        install_transaction_undo_log()
        app = DynamoDBLock(app)
        app = PostPolicyMiddleware(app)
        app = S3Cors(app)
        super().__init__(app, port, request_handler=MotoRequestHandler)


@dataclass
class Settings:
    template: Path
    api_key: str
    port: int = 3000
    aws_port: int = 3001
    region: str = "us-east-1"
    stack_name: str = "local"
    allow_private_urls: str = "true"
    retry_delay: int = 5  # seconds before a failed S3 event is delivered again
    stage_prefix: bool = False  # serve under /<stage>/ as API Gateway does
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Invocations in parallel, one worker process each (LOCAL_STACK_WORKERS; Lambda: many).
    workers: int = field(default_factory=lambda: int(os.environ.get("LOCAL_STACK_WORKERS", "4")))


def client(service: str, endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec: StackSpec | None = None
        self.moto: MotoServer | None = None
        self.api: HttpServer | None = None
        self.deliveries: list[notifications.Delivery] = []
        self.pollers: list[notifications.Poller | sqs_events.SqsPoller] = []
        self.runtime: ProcessRuntime | None = None

    def start(self) -> None:
        s = self.settings
        self.moto = MotoServer(s.aws_port)
        self.moto.start()
        endpoint = self.moto.url
        isolate_from_aws(endpoint, s.region)
        self.spec = spec = read_stack(
            s.template,
            aws_endpoint=endpoint,
            region=s.region,
            stack_name=s.stack_name,
            parameter_overrides=s.parameter_overrides,
        )
        s3, sqs = client("s3", endpoint, s.region), client("sqs", endpoint, s.region)
        resources.create_all(spec, dynamodb=client("dynamodb", endpoint, s.region), s3=s3, sqs=sqs)
        self.deliveries = notifications.configure(spec, s3=s3, sqs=sqs, retry_delay=s.retry_delay)
        add_layer_paths(spec.layer_paths)
        self.runtime = runtime = ProcessRuntime(
            spec.functions,
            region=s.region,
            workers=s.workers,
            defaults=self.resource_variables(),
            overrides={
                # The template declares it empty (for `sam local --env-vars`): moto, always.
                "AWS_ENDPOINT_URL": endpoint,
                "ALLOW_PRIVATE_URLS": s.allow_private_urls,
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            },
        )
        self._check_environment(runtime)
        gateway = ApiGateway(
            spec.apis, spec.routes, runtime, s.api_key, stage_prefix=s.stage_prefix
        )
        self.api = HttpServer(gateway, s.port)
        self.api.start()
        self.pollers = [
            notifications.Poller(
                d, spec, runtime, sqs, retry_delay=s.retry_delay, concurrency=s.workers
            )
            for d in self.deliveries
        ]
        # Half the workers at most, so the API still answers while a queue is drained.
        self.pollers += [
            sqs_events.SqsPoller(
                sub, spec, runtime, sqs, retry_delay=s.retry_delay, concurrency=s.workers // 2
            )
            for sub in spec.sqs_subscriptions
        ]
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()  # all at once: each may be in a 1 s long poll
        if self.api:
            self.api.stop()
        for poller in self.pollers:
            poller.stop()
        if self.runtime:
            self.runtime.close()
        if self.moto:
            self.moto.stop()

    def resource_variables(self) -> dict[str, str]:
        """TABLE_NAME and BUCKET_NAME for the template's only table and bucket (the template's
        own variables, which name the same resources, take precedence)."""
        assert self.spec
        out = {}
        if len(self.spec.tables) == 1:
            out["TABLE_NAME"] = next(iter(self.spec.tables.values())).name
        if len(self.spec.buckets) == 1:
            out["BUCKET_NAME"] = next(iter(self.spec.buckets.values())).name
        return out

    def _check_environment(self, runtime: ProcessRuntime) -> None:
        assert self.spec
        tables = {t.name for t in self.spec.tables.values()}
        buckets = {b.name for b in self.spec.buckets.values()}
        for function in self.spec.functions.values():
            env = runtime.environment_of(function)
            for name, known in (("TABLE_NAME", tables), ("BUCKET_NAME", buckets)):
                if name in env and known and env[name] not in known:
                    log.warning(
                        "%s: %s=%s names no resource of the template (%s)",
                        function.logical_id,
                        name,
                        env[name],
                        ", ".join(sorted(known)),
                    )

    @property
    def api_url(self) -> str:
        """The API's base URL, without a trailing slash (with the stage under --stage-prefix)."""
        assert self.api and self.spec
        if self.settings.stage_prefix and len(self.spec.apis) == 1:
            return f"{self.api.url}/{next(iter(self.spec.apis.values())).stage}"
        return self.api.url

    def info(self) -> dict[str, Any]:
        """What clients need: the ready file's content."""
        assert self.spec and self.api and self.moto
        spec = self.spec
        return {
            "api_url": self.api_url,
            "aws_endpoint": self.moto.url,
            "api_key": self.settings.api_key,
            "region": spec.region,
            "stage": {api.logical_id: api.stage for api in spec.apis.values()},
            "tables": {t.logical_id: t.name for t in spec.tables.values()},
            "buckets": {b.logical_id: b.name for b in spec.buckets.values()},
            "queues": {q.logical_id: spec.queue_url(q.logical_id) for q in spec.queues.values()},
            "event_queues": {d.function: d.queue_url for d in self.deliveries},
            "failure_queues": {d.function: d.failure_queue_url for d in self.deliveries},
            # The template's Outputs that resolve locally, by the names a deployed stack has.
            "outputs": dict(spec.outputs),
            "sqs_event_sources": {s.function: s.queue for s in spec.sqs_subscriptions},
            # Each function's settings from the template (tools read them as from Lambda's
            # GetFunctionConfiguration in AWS).
            "environments": {f.logical_id: dict(f.environment) for f in spec.functions.values()},
            "allow_private_urls": self.settings.allow_private_urls.strip().lower()
            in ("1", "true", "yes", "on"),
            "pid": os.getpid(),
        }


def write_ready_file(path: Path, info: dict[str, Any]) -> None:
    """Written atomically, once both servers listen: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, path)
