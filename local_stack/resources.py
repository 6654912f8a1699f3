"""Create the template's tables, buckets and queues in moto (or any S3/DynamoDB/SQS endpoint)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from local_stack.spec import Bucket, Queue, StackSpec, Table
from local_stack.template import read_stack


def create_table(dynamodb: Any, table: Table) -> None:
    dynamodb.create_table(**table.create_args)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def create_bucket(s3: Any, bucket: Bucket, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket.name)
    else:
        s3.create_bucket(
            Bucket=bucket.name, CreateBucketConfiguration={"LocationConstraint": region}
        )
    if bucket.cors_rules:
        s3.put_bucket_cors(
            Bucket=bucket.name, CORSConfiguration={"CORSRules": list(bucket.cors_rules)}
        )


def create_queue(sqs: Any, queue: Queue) -> str:
    return sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]


def create_all(spec: StackSpec, *, dynamodb: Any, s3: Any, sqs: Any) -> None:
    """Every table, bucket and queue of the template (S3 notifications: see notifications)."""
    for table in spec.tables.values():
        create_table(dynamodb, table)
    for bucket in spec.buckets.values():
        create_bucket(s3, bucket, spec.region)
    # Dead-letter queues first: a RedrivePolicy must name an existing queue.
    for queue in sorted(spec.queues.values(), key=lambda q: q.dead_letter_queue is not None):
        create_queue(sqs, queue)


def create_from_template(
    template_path: str | Path,
    *,
    dynamodb: Any = None,
    s3: Any = None,
    table_name: str | None = None,
    bucket_name: str | None = None,
    region: str = "us-east-1",
) -> StackSpec:
    """For tests on moto's in-process mock: the template's single table and bucket, renamed.

    Returns the spec so a test can see what was created.
    """
    spec = read_stack(template_path, aws_endpoint="http://localhost", region=region)
    if dynamodb is not None:
        for table in spec.tables.values():
            name = table_name or table.name
            create_table(
                dynamodb,
                replace(table, name=name, create_args={**table.create_args, "TableName": name}),
            )
    if s3 is not None:
        for bucket in spec.buckets.values():
            create_bucket(s3, replace(bucket, name=bucket_name or bucket.name), region)
    return spec
