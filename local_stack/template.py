"""The template reader: what the local stack needs from a SAM template, read once into the
plain dataclasses of local_stack.spec.

Everything here comes from template.yaml: routes, functions (code, handler, environment,
memory, timeout, layers, async retries), the API's settings (stage, API keys, CORS, binary
media types, gateway responses), tables, buckets, queues and S3 notifications.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from local_stack.cfn import (
    ACCOUNT_ID,
    NO_VALUE,
    Resolver,
    Unresolvable,
    load_template,
    scalar_to_str,
)
from local_stack.spec import (
    Api,
    AsyncConfig,
    Bucket,
    Cors,
    Function,
    GatewayResponse,
    Queue,
    Route,
    S3Subscription,
    SqsSubscription,
    StackSpec,
    Table,
    queue_url,
)

log = logging.getLogger("local_stack")

IMPLICIT_API = "ServerlessRestApi"  # SAM's id for the API of events without RestApiId


def kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def strip_quotes(value: str) -> str:
    """SAM's CORS and gateway response values are quoted string expressions: "'*'"."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def merge_globals(global_props: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge, lists concatenate (globals first), the rest overrides."""
    out = dict(global_props)
    for key, value in props.items():
        current = out.get(key)
        if _is_plain_map(current) and _is_plain_map(value):
            out[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            out[key] = current + value
        else:
            out[key] = value
    return out


def _is_plain_map(value: Any) -> bool:
    # An intrinsic function is a one-key map but merges like a primitive.
    if not isinstance(value, dict):
        return False
    return not (len(value) == 1 and next(iter(value)) in ("Ref", "Condition", "Fn::If", "Fn::Sub"))


def logical_id_of(value: Any) -> str | None:
    """The resource an event property points at: !Ref X, !GetAtt X.Arn or a plain X."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        key, arg = next(iter(value.items()))
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt" and isinstance(arg, list) and arg:
            return str(arg[0])
    return None


class _Reader:
    """Builds a StackSpec; one instance per template read."""

    def __init__(
        self,
        template: dict[str, Any],
        template_path: Path,
        *,
        region: str,
        stack_name: str,
        aws_endpoint: str,
        parameter_overrides: dict[str, str] | None,
    ) -> None:
        self.template = template
        self.root = template_path.parent
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.spec = StackSpec(template_path, region, stack_name, aws_endpoint)
        self.resolver = Resolver(
            template,
            region=region,
            stack_name=stack_name,
            parameter_overrides=parameter_overrides,
        )
        globals_ = template.get("Globals") or {}
        self.function_globals: dict[str, Any] = globals_.get("Function") or {}
        self.api_globals: dict[str, Any] = globals_.get("Api") or {}

    def read(self) -> StackSpec:
        self._storage()
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == "AWS::Serverless::Function":
                self._function(logical_id, merge_globals(self.function_globals, _props(resource)))
        used_apis = {route.api for route in self.spec.routes}
        for api_id in sorted(used_apis):
            self.spec.apis[api_id] = self._api(api_id)
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type", "")
            if kind == "AWS::Serverless::Api" and logical_id not in used_apis:
                self.spec.notes.append(f"{logical_id}: no function routes to this API")
            if kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::SimpleTable"):
                self.spec.notes.append(f"{logical_id}: {kind} is not emulated")
        self._outputs()
        return self.spec

    def _outputs(self) -> None:
        """The Outputs a local stack has too (queue URLs, names); the API's need API Gateway."""
        for name, output in (self.template.get("Outputs") or {}).items():
            try:
                self.spec.outputs[name] = scalar_to_str(self.resolver.resolve(output["Value"]))
            except (Unresolvable, KeyError, TypeError, ValueError):
                continue

    # ---------------------------------------------------------------- storage
    def _physical_name(self, logical_id: str, props: dict[str, Any], key: str) -> str:
        if key in props:
            try:
                return scalar_to_str(self.resolver.resolve(props[key]))
            except Unresolvable as err:
                self.spec.notes.append(f"{logical_id}.{key}: {err}; using a local name")
        return f"{self.spec.stack_name}-{kebab(logical_id)}"

    def _storage(self) -> None:
        region, r = self.spec.region, self.resolver
        for logical_id, resource in self.resources.items():
            kind, props = resource.get("Type"), _props(resource)
            if kind == "AWS::DynamoDB::Table":
                name = self._physical_name(logical_id, props, "TableName")
                r.refs[logical_id] = name
                r.attrs[(logical_id, "Arn")] = (
                    f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}"
                )
            elif kind == "AWS::S3::Bucket":
                name = self._physical_name(logical_id, props, "BucketName")
                r.refs[logical_id] = name
                r.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
                r.attrs[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"
                r.attrs[(logical_id, "RegionalDomainName")] = f"{name}.s3.{region}.amazonaws.com"
            elif kind == "AWS::SQS::Queue":
                name = self._physical_name(logical_id, props, "QueueName")
                if str(props.get("FifoQueue")).lower() == "true" and not name.endswith(".fifo"):
                    name += ".fifo"
                url = queue_url(self.spec.aws_endpoint, name)
                r.refs[logical_id] = url
                r.attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"
                r.attrs[(logical_id, "QueueName")] = name
                r.attrs[(logical_id, "QueueUrl")] = url
            elif kind == "AWS::Serverless::Function":
                r.refs[logical_id] = logical_id
                r.attrs[(logical_id, "Arn")] = (
                    f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{logical_id}"
                )
        # Second pass: the rest of each resource may refer to the names above.
        for logical_id, resource in self.resources.items():
            kind, props = resource.get("Type"), _props(resource)
            if kind == "AWS::DynamoDB::Table":
                self.spec.tables[logical_id] = self._table(logical_id, props)
            elif kind == "AWS::S3::Bucket":
                self.spec.buckets[logical_id] = self._bucket(logical_id, props)
            elif kind == "AWS::SQS::Queue":
                self.spec.queues[logical_id] = self._queue(logical_id, props)

    def _table(self, logical_id: str, raw: dict[str, Any]) -> Table:
        props = self.resolver.resolve(raw)
        billing = props.get("BillingMode", "PROVISIONED")
        args: dict[str, Any] = {
            "TableName": self.resolver.refs[logical_id],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            args["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                _index(index, provisioned=billing == "PROVISIONED")
                for index in props["GlobalSecondaryIndexes"]
            ]
        if props.get("LocalSecondaryIndexes"):
            args["LocalSecondaryIndexes"] = [
                _index(index, provisioned=False) for index in props["LocalSecondaryIndexes"]
            ]
        stream = props.get("StreamSpecification") or {}
        if stream.get("StreamViewType"):
            args["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        ttl = props.get("TimeToLiveSpecification") or {}
        enabled = str(ttl.get("Enabled", "false")).lower() == "true"
        return Table(
            logical_id, args["TableName"], args, ttl.get("AttributeName") if enabled else None
        )

    def _bucket(self, logical_id: str, raw: dict[str, Any]) -> Bucket:
        props = self.resolver.resolve(raw)
        # CloudFormation's CorsRule property names differ from the S3 API's.
        renames = {"ExposedHeaders": "ExposeHeaders", "Id": "ID", "MaxAge": "MaxAgeSeconds"}
        rules = []
        for rule in (props.get("CorsConfiguration") or {}).get("CorsRules") or []:
            api_rule = {renames.get(k, k): v for k, v in rule.items()}
            if "MaxAgeSeconds" in api_rule:
                api_rule["MaxAgeSeconds"] = int(api_rule["MaxAgeSeconds"])
            rules.append(api_rule)
        if props.get("LifecycleConfiguration"):
            self.spec.notes.append(f"{logical_id}: lifecycle rules are not applied locally")
        return Bucket(logical_id, self.resolver.refs[logical_id], tuple(rules))

    def _queue(self, logical_id: str, raw: dict[str, Any]) -> Queue:
        props = self.resolver.resolve(raw)
        copied = (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "FifoQueue",
            "ContentBasedDeduplication",
        )
        attributes = {k: scalar_to_str(props[k]) for k in copied if k in props}
        name = self.resolver.attrs[(logical_id, "QueueName")]
        redrive = props.get("RedrivePolicy") or {}
        dlq = logical_id_of((raw.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if not redrive:
            return Queue(logical_id, name, attributes)
        if dlq not in self.resources:
            raise ValueError(f"{logical_id}: RedrivePolicy names no queue of the template")
        receives = int(redrive["maxReceiveCount"])
        # moto's SQS moves a message to the DLQ itself, on the receive after the last allowed.
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": receives}
        )
        return Queue(logical_id, name, attributes, dlq, receives)

    # ---------------------------------------------------------------- functions
    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python"):
            self.spec.notes.append(f"{logical_id}: runtime {runtime or '?'} is not emulated")
            return
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str) or "InlineCode" in props:
            self.spec.notes.append(f"{logical_id}: only a local CodeUri directory is emulated")
            return
        function = Function(
            logical_id=logical_id,
            code_dir=(self.root / code_uri).resolve(),
            handler=str(props.get("Handler", "app.lambda_handler")),
            environment=self._environment(logical_id, props),
            memory_mb=int(self._value(props.get("MemorySize", 128))),
            timeout_s=float(self._value(props.get("Timeout", 3))),
            async_config=self._async_config(logical_id, props),
        )
        self.spec.functions[logical_id] = function
        self._layers(logical_id, props.get("Layers") or [])
        for event_id, event in (props.get("Events") or {}).items():
            kind, event_props = event.get("Type"), event.get("Properties") or {}
            if kind == "Api":
                self.spec.routes.append(self._route(logical_id, event_props))
            elif kind == "S3":
                self.spec.subscriptions.append(self._s3_event(logical_id, event_props))
            elif kind == "SQS":
                self.spec.sqs_subscriptions.append(self._sqs_event(logical_id, event_props))
            else:
                self.spec.notes.append(f"{logical_id}.{event_id}: {kind} events are not emulated")

    def _value(self, raw: Any) -> Any:
        return self.resolver.resolve(raw)

    def _environment(self, logical_id: str, props: dict[str, Any]) -> dict[str, str]:
        variables = (props.get("Environment") or {}).get("Variables") or {}
        env: dict[str, str] = {}
        for name, raw in variables.items():
            try:
                value = self.resolver.resolve(raw)
                if value is not NO_VALUE and value is not None:
                    env[name] = scalar_to_str(value)
            except Unresolvable as err:
                self.spec.notes.append(f"{logical_id}: {name} dropped ({err} cannot be resolved)")
        return env

    def _async_config(self, logical_id: str, props: dict[str, Any]) -> AsyncConfig:
        config = props.get("EventInvokeConfig") or {}
        retries = int(self._value(config.get("MaximumRetryAttempts", 2)))
        on_failure = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
        dlq = props.get("DeadLetterQueue") or {}
        candidates = [
            (on_failure.get("Type"), on_failure.get("Destination"), "record"),
            (dlq.get("Type"), dlq.get("TargetArn"), "event"),
        ]
        for kind, target, fmt in candidates:
            if kind is None:
                continue
            queue_id = logical_id_of(target)
            if kind == "SQS" and queue_id in self.spec.queues:
                return AsyncConfig(retries, queue_id, fmt)
            self.spec.notes.append(
                f"{logical_id}: failure destination {kind} {target} is not emulated; "
                "failed events go to a local queue"
            )
        return AsyncConfig(retries, None, "record")

    def _layers(self, logical_id: str, layers: list[Any]) -> None:
        for layer in layers:
            layer_id = logical_id_of(layer) if isinstance(layer, dict) else None
            resource = self.resources.get(layer_id or "", {})
            content_uri = _props(resource).get("ContentUri")
            if resource.get("Type") != "AWS::Serverless::LayerVersion" or not isinstance(
                content_uri, str
            ):
                self.spec.notes.append(
                    f"{logical_id}: layer {layer} is not local; its packages must be installed"
                )
                continue
            path = (self.root / content_uri / "python").resolve()
            # Layers built from requirements.txt have no python/ until sam build: their
            # packages come from the virtualenv instead.
            if path.is_dir() and path not in self.spec.layer_paths:
                self.spec.layer_paths.append(path)

    def _route(self, logical_id: str, raw: dict[str, Any]) -> Route:
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "RestApiId"})
        api_id = logical_id_of(raw.get("RestApiId")) or IMPLICIT_API
        api_props = self._api_props(api_id)
        default = _bool((api_props.get("Auth") or {}).get("ApiKeyRequired", False))
        auth = props.get("Auth") or {}
        required = _bool(auth["ApiKeyRequired"]) if "ApiKeyRequired" in auth else default
        method = str(props["Method"]).upper()
        path = "/" + str(props["Path"]).strip("/")
        return Route(method, path, logical_id, api_id, required)

    def _s3_event(self, logical_id: str, raw: dict[str, Any]) -> S3Subscription:
        bucket = logical_id_of(raw.get("Bucket"))
        if bucket not in self.spec.buckets:
            raise ValueError(
                f"{logical_id}: S3 event on {raw.get('Bucket')}, not a template bucket"
            )
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "Bucket"})
        events = props.get("Events") or []
        events = (events,) if isinstance(events, str) else tuple(events)
        rules = ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        filter_rules = tuple((str(r["Name"]).lower(), str(r["Value"])) for r in rules)
        return S3Subscription(logical_id, bucket, events, filter_rules)

    def _sqs_event(self, logical_id: str, raw: dict[str, Any]) -> SqsSubscription:
        queue = logical_id_of(raw.get("Queue"))
        if queue not in self.spec.queues:
            raise ValueError(f"{logical_id}: SQS event on {raw.get('Queue')}, not a template queue")
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "Queue"})
        scaling = props.get("ScalingConfig") or {}
        if props.get("MaximumBatchingWindowInSeconds") or props.get("FilterCriteria"):
            self.spec.notes.append(
                f"{logical_id}: batching windows and filter criteria of SQS events are ignored"
            )
        return SqsSubscription(
            logical_id,
            queue,
            batch_size=int(props.get("BatchSize", 10)),
            report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            max_concurrency=int(scaling["MaximumConcurrency"])
            if "MaximumConcurrency" in scaling
            else None,
        )

    # ---------------------------------------------------------------- APIs
    def _api_props(self, api_id: str) -> dict[str, Any]:
        resource = self.resources.get(api_id)
        if api_id != IMPLICIT_API and (
            not resource or resource.get("Type") != "AWS::Serverless::Api"
        ):
            raise ValueError(f"RestApiId {api_id} is not an AWS::Serverless::Api in the template")
        return merge_globals(self.api_globals, _props(resource or {}))

    def _api(self, api_id: str) -> Api:
        raw = self._api_props(api_id)
        for unsupported in ("DefinitionBody", "DefinitionUri"):
            if unsupported in raw:
                self.spec.notes.append(
                    f"{api_id}: {unsupported} is ignored (routes come from events)"
                )
        props = self.resolver.resolve(
            {k: v for k, v in raw.items() if k not in ("DefinitionBody", "DefinitionUri")}
        )
        auth = props.get("Auth") or {}
        if auth.get("DefaultAuthorizer") or auth.get("Authorizers"):
            self.spec.notes.append(f"{api_id}: authorizers are not emulated (only API keys)")
        return Api(
            logical_id=api_id,
            stage=str(props.get("StageName", "Prod")),
            binary_media_types=tuple(
                str(t).replace("~1", "/") for t in props.get("BinaryMediaTypes") or ()
            ),
            cors=_cors(props.get("Cors")),
            api_key_required=_bool(auth.get("ApiKeyRequired", False)),
            api_key_on_preflight=_bool(auth.get("AddApiKeyRequiredToCorsPreflight", True)),
            gateway_responses={
                kind: GatewayResponse(
                    status=int(response["StatusCode"]) if "StatusCode" in response else None,
                    headers={
                        k: strip_quotes(str(v))
                        for k, v in (
                            (response.get("ResponseParameters") or {}).get("Headers") or {}
                        ).items()
                    },
                    templates=dict(response.get("ResponseTemplates") or {}),
                )
                for kind, response in (props.get("GatewayResponses") or {}).items()
            },
        )


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties") or {}


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _throughput(value: Any) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _index(index: dict[str, Any], *, provisioned: bool) -> dict[str, Any]:
    out = {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
    if provisioned:
        out["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return out


def _cors(value: Any) -> Cors | None:
    if not value:
        return None
    if isinstance(value, str):
        return Cors(allow_origin=strip_quotes(value))

    def get(key: str) -> str | None:
        return strip_quotes(str(value[key])) if key in value else None

    return Cors(
        allow_origin=get("AllowOrigin") or "*",
        allow_headers=get("AllowHeaders"),
        allow_methods=get("AllowMethods"),
        max_age=get("MaxAge"),
        allow_credentials=_bool(value.get("AllowCredentials", False)),
    )


def read_stack(
    template_path: str | Path,
    *,
    aws_endpoint: str,
    region: str = "us-east-1",
    stack_name: str = "local",
    parameter_overrides: dict[str, str] | None = None,
) -> StackSpec:
    """Read template.yaml into a StackSpec (names are local; queue URLs use aws_endpoint)."""
    path = Path(template_path).resolve()
    reader = _Reader(
        load_template(path),
        path,
        region=region,
        stack_name=stack_name,
        aws_endpoint=aws_endpoint,
        parameter_overrides=parameter_overrides,
    )
    return reader.read()
