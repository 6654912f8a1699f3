"""Run a migration (imgsvc.migrations) over every stored image, against a deployed or local stack.

    .venv/bin/python -m scripts.migrate run display-phash --stack <stack-name> [--wait]
    .venv/bin/python -m scripts.migrate run display-phash --local --wait
    .venv/bin/python -m scripts.migrate status display-phash --stack <stack-name>
    .venv/bin/python -m scripts.migrate list

``run`` pages the image listing and sends the ids, 25 a message, to the stack's
MigrationQueue; MigrationFunction invocations do the work, in parallel. The progress item
(``MIGRATION#<name>``/``RUN``) keeps the cursor of the last page sent, so running it again
continues where it stopped (``--restart`` starts over); images already migrated are skipped
by the function. ``--wait`` follows the counters until every id is done or failed.

The queue URL and table come from the stack's outputs (CloudFormation, with your AWS
credentials) or, with ``--local``, from the ready file of ``make local``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "core" / "python")]  # a script: imgsvc from the layer
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the script prints its own progress
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "imgsvc-migrate")

DEFAULT_READY_FILE = ROOT / ".local-stack" / "ready.json"
# What the listing must read as the functions do (same table, same listing partitions).
_SETTINGS = ("TABLE_NAME", "INDEX_SHARDS")


@dataclass
class Target:
    """Where a migration runs: the queue, the dead-letter queue, and an SQS client."""

    description: str
    queue_url: str
    dlq_url: str | None
    sqs: Any


def _boto3_client(service: str, **kwargs: Any) -> Any:
    import boto3

    return boto3.client(service, **kwargs)


def local_target(ready_file: Path) -> Target:
    """The local stack of ``make local``: its moto server, its resources, dummy credentials."""
    try:
        info = json.loads(ready_file.read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"no local stack: {ready_file} does not exist (start `make local`)"
        ) from None
    outputs = info.get("outputs") or {}
    if "MigrationQueueUrl" not in outputs:
        raise SystemExit(f"{ready_file}: the local stack has no MigrationQueue (restart it)")
    from local_stack.stack import isolate_from_aws  # dummy credentials, no profile or config

    isolate_from_aws(info["aws_endpoint"], info["region"])
    env = (info.get("environments") or {}).get(outputs.get("MigrationFunctionName", ""), {})
    _apply_settings({"TABLE_NAME": outputs["TableName"], **env})
    return Target(
        f"the local stack ({info['api_url']})",
        outputs["MigrationQueueUrl"],
        outputs.get("MigrationDeadLetterQueueUrl"),
        _boto3_client("sqs"),
    )


def stack_target(stack_name: str, region: str | None) -> Target:
    """A deployed stack: its outputs, and MigrationFunction's own settings."""
    from botocore.exceptions import ClientError

    kwargs = {"region_name": region} if region else {}
    try:
        (stack,) = _boto3_client("cloudformation", **kwargs).describe_stacks(StackName=stack_name)[
            "Stacks"
        ]
    except ClientError as err:
        raise SystemExit(f"cannot read stack {stack_name}: {err}") from err
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = {"MigrationQueueUrl", "TableName", "MigrationFunctionName"} - set(outputs)
    if missing:
        raise SystemExit(f"stack {stack_name} has no output {', '.join(sorted(missing))}: deploy")
    config = _boto3_client("lambda", **kwargs).get_function_configuration(
        FunctionName=outputs["MigrationFunctionName"]
    )
    env = (config.get("Environment") or {}).get("Variables") or {}
    _apply_settings({"TABLE_NAME": outputs["TableName"], **env})
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    return Target(
        f"stack {stack_name}",
        outputs["MigrationQueueUrl"],
        outputs.get("MigrationDeadLetterQueueUrl"),
        _boto3_client("sqs", **kwargs),
    )


def _apply_settings(env: dict[str, str]) -> None:
    for name in _SETTINGS:
        if env.get(name):
            os.environ[name] = env[name]


def send(target: Target, bodies: list[dict[str, Any]]) -> None:
    """SendMessageBatch, 10 a call; a message SQS refused is an error (the page is re-sent)."""
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = target.sqs.send_message_batch(
            QueueUrl=target.queue_url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused messages: {response['Failed']}")


def describe(progress: dict[str, Any]) -> str:
    listed = "listing done" if progress.get("listed") else f"{progress['pages']} pages listed"
    state = f"finished {progress['finished_at']}" if progress.get("finished_at") else "running"
    return (
        f"{progress['name']}@{progress['version']}: enqueued {progress['enqueued']} ({listed}), "
        f"done {progress['done']} of {progress['enqueued']}, changed {progress['changed']}, "
        f"failed {progress['failed']}; started {progress['started_at']}, {state}"
    )


def dead_letters(target: Target) -> int | None:
    if not target.dlq_url:
        return None
    attributes = target.sqs.get_queue_attributes(
        QueueUrl=target.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def enqueue(
    target: Target,
    name: str,
    *,
    restart: bool,
    page_size: int,
    batch: int,
    max_pages: int | None,
    out: Callable[[str], None],
) -> dict[str, Any]:
    """Send the listing, page after page, from the stored cursor; returns the progress."""
    from imgsvc import migrations, records

    migration = migrations.get(name)
    progress, resumed = migrations.start_run(migration, restart=restart)
    if resumed and progress.get("listed"):
        out(f"{describe(progress)} (already enqueued: --restart runs it again)")
        return progress
    out(
        f"{'resuming' if resumed else 'starting'} {migration.tag} on {target.description}"
        + (f" after page {progress['pages']}" if resumed else "")
    )
    cursor, pages = progress.get("cursor"), 0
    while max_pages is None or pages < max_pages:
        images, cursor = records.list_images(page_size, cursor)
        ids = [image["image_id"] for image in images]
        bodies = [
            migrations.message(migration, progress["run_id"], ids[i : i + batch])
            for i in range(0, len(ids), batch)
        ]
        send(target, bodies)
        progress = migrations.record_page(name, progress["run_id"], len(ids), cursor)
        pages += 1
        out(f"enqueued {progress['enqueued']} (page {progress['pages']})")
        if cursor is None:
            break
    return progress


def wait(
    target: Target,
    name: str,
    *,
    timeout: float,
    interval: float,
    out: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    from imgsvc import migrations

    deadline = clock() + timeout
    last = ""
    while True:
        progress = migrations.get_progress(name)
        if progress is None:
            raise SystemExit(f"{name} has never run")
        line = (
            f"done {progress['done']} of {progress['enqueued']} "
            f"(changed {progress['changed']}, failed {progress['failed']})"
        )
        if line != last:
            out(line)
            last = line
        if migrations.is_complete(progress):
            return migrations.finish_if_complete(progress)
        if not progress.get("listed"):
            out("the listing is not all enqueued: run again without --max-pages to continue")
            return progress
        if clock() > deadline:
            out(f"still running after {timeout:g} s: `status {name}` follows it")
            return progress
        sleep(interval)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the registered migrations")
    for command in ("run", "status"):
        sub = commands.add_parser(command, help=f"{command} a migration")
        sub.add_argument(
            "names",
            nargs="+",
            metavar="name",
            help="migrations (see `list`), or `all`: every registered one, in order",
        )
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--stack", help="a deployed stack's name (AWS credentials needed)")
        where.add_argument("--local", action="store_true", help="the local stack (make local)")
        sub.add_argument("--region", help="the deployed stack's region (default: your config)")
        sub.add_argument(
            "--ready-file",
            type=Path,
            default=Path(os.environ.get("LOCAL_READY_FILE") or DEFAULT_READY_FILE),
            help="the local stack's ready file (default: .local-stack/ready.json)",
        )
        if command == "run":
            sub.add_argument("--restart", action="store_true", help="start over from the top")
            sub.add_argument("--wait", action="store_true", help="follow it until every id is done")
            sub.add_argument("--timeout", type=float, default=3600, help="--wait at most (s)")
            sub.add_argument("--page-size", type=int, default=100, help="images per listing page")
            sub.add_argument("--batch", type=int, default=25, help="image ids per message")
            sub.add_argument(
                "--max-pages", type=int, help="stop after this many pages (resume later)"
            )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    from imgsvc import migrations

    if args.command == "list":
        for migration in migrations.REGISTRY.values():
            out(f"{migration.tag}  {migration.description}")
        return 0
    names = list(migrations.REGISTRY) if args.names == ["all"] else list(dict.fromkeys(args.names))
    try:
        for name in names:
            migrations.get(name)
    except KeyError as err:
        out(f"error: {err.args[0]}")
        return 2
    if args.command == "run" and not 1 <= args.batch <= migrations.BATCH_IDS:
        out(f"error: --batch must be 1..{migrations.BATCH_IDS}")
        return 2
    target = local_target(args.ready_file) if args.local else stack_target(args.stack, args.region)
    failed = False
    for name in names:
        progress = _one(args, target, name, out)
        failed = failed or bool(progress and progress["failed"])
    dead = dead_letters(target)
    if dead:
        out(f"{dead} messages in the dead-letter queue {target.dlq_url}")
    return 1 if failed else 0


def _one(
    args: argparse.Namespace, target: Target, name: str, out: Callable[[str], None]
) -> dict[str, Any] | None:
    """Status or run (and follow) one migration; its progress item."""
    from imgsvc import migrations

    if args.command == "status":
        progress = migrations.get_progress(name)
        out(describe(progress) if progress else f"{name} has never run on {target.description}")
        return progress
    progress = enqueue(
        target,
        name,
        restart=args.restart,
        page_size=args.page_size,
        batch=args.batch,
        max_pages=args.max_pages,
        out=out,
    )
    if args.wait:
        progress = wait(target, name, timeout=args.timeout, interval=2.0, out=out)
        out(describe(progress))
    return progress


if __name__ == "__main__":
    sys.exit(main())
