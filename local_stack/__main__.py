"""``python -m local_stack``: the API of template.yaml on 127.0.0.1, AWS served by moto.

Environment: API_KEY (else a random key), ALLOW_PRIVATE_URLS (else true: handlers may
fetch from localhost), AWS_DEFAULT_REGION (else us-east-1). Template parameters keep their
Default unless given with --parameter-overrides.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from local_stack.stack import LocalStack, Settings, write_ready_file

log = logging.getLogger("local_stack")
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=ROOT / "template.yaml",
        help="the SAM template (default: template.yaml of this repository)",
    )
    parser.add_argument("--port", type=int, default=3000, help="API port (0: any free port)")
    parser.add_argument(
        "--aws-port", type=int, default=3001, help="moto server port (0: any free port)"
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="write the URLs, API key and resource names here as JSON once listening",
    )
    parser.add_argument(
        "--retry-delay",
        type=int,
        default=5,
        help="seconds before a failed S3 event is delivered again (Lambda waits minutes)",
    )
    parser.add_argument(
        "--stage-prefix",
        action="store_true",
        help="serve the API under /<stage>/ as in AWS (http://127.0.0.1:3000/prod/status)",
    )
    parser.add_argument("--stack-name", default="local", help="for AWS::StackName (names)")
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as with sam deploy",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log moto's requests too")
    return parser.parse_args(argv)


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--parameter-overrides: {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    # moto's request handler logs every request through werkzeug's logger.
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)


def busy_port(ports: dict[str, int]) -> str | None:
    """A one-line error for the first port another program holds (werkzeug would print two
    lines and exit from inside the server's constructor); 0 means any free port."""
    for option, port in ports.items():
        if port == 0:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as err:
                return (
                    f"cannot start: port {port} ({option}) is taken by another program "
                    f"({err.strerror}): stop it, or choose free ports, e.g. "
                    "PORT=3100 AWS_PORT=3101 make local"
                )
    return None


def banner(stack: LocalStack) -> str:
    info, spec = stack.info(), stack.spec
    assert spec
    allowed = info["allow_private_urls"]
    lines = [
        f"Local stack from {stack.settings.template}",
        f"  API           {info['api_url']}   ({info['api_url']}/status)",
        f"  Web app       {info['api_url']}/   (open it in a browser; it asks for the API key)",
        f"  AWS endpoint  {info['aws_endpoint']}   (moto: S3, DynamoDB, SQS; AWS_ENDPOINT_URL)",
    ]
    lines += [f"  table         {name}   ({lid})" for lid, name in info["tables"].items()]
    lines += [f"  bucket        {name}   ({lid})" for lid, name in info["buckets"].items()]
    lines.append(f"  API key       {info['api_key']}   (send it as the x-api-key header)")
    for sub in spec.subscriptions:
        rules = " ".join(f"{k}={v}" for k, v in sub.filter_rules)
        delivery = next(d for d in stack.deliveries if d.function == sub.function)
        lines.append(
            f"  S3 events     {spec.buckets[sub.bucket].name} {','.join(sub.events)} {rules}"
            f" -> {sub.function} (failures: {delivery.failure_queue_name})"
        )
    if allowed:
        lines.append(
            "  Private URLs ARE ALLOWED: handlers may fetch localhost and private addresses "
            "(ALLOW_PRIVATE_URLS=false for the production setting)"
        )
    else:
        lines.append("  Private URLs are NOT allowed (ALLOW_PRIVATE_URLS=false), as in production")
    lines += [f"  note: {note}" for note in spec.notes]
    lines.append(
        f"Try: curl -H 'x-api-key: {info['api_key']}' {info['api_url']}/stats   (Ctrl-C stops)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _configure_logging(args.verbose)
    settings = Settings(
        template=args.template,
        api_key=os.environ.pop("API_KEY", "") or secrets.token_urlsafe(24),
        port=args.port,
        aws_port=args.aws_port,
        region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        stack_name=args.stack_name,
        allow_private_urls=os.environ.get("ALLOW_PRIVATE_URLS") or "true",
        retry_delay=args.retry_delay,
        stage_prefix=args.stage_prefix,
        parameter_overrides=_overrides(args.parameter_overrides),
    )
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            os._exit(1)  # a second Ctrl-C: do not wait for a slow handler
        log.info("%s: stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    busy = busy_port({"--port/PORT": args.port, "--aws-port/AWS_PORT": args.aws_port})
    if busy:
        log.error("%s", busy)
        return 1
    stack = LocalStack(settings)
    try:
        stack.start()
    except Exception as err:
        # A busy port or a template we cannot read needs no traceback; anything else does.
        log.error("cannot start: %s", err, exc_info=not isinstance(err, (OSError, ValueError)))
        stack.stop()
        return 1
    print(banner(stack), flush=True)
    if args.ready_file:
        write_ready_file(args.ready_file, stack.info())
    # Event.wait() with a timeout lets the main thread run the signal handlers.
    while not stopping.wait(0.5):
        pass
    stack.stop()
    if args.ready_file:
        args.ready_file.unlink(missing_ok=True)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    code = main()
    # Everything the stack held lived in memory and is discarded: skip the interpreter's final
    # garbage collection of moto's object graph, which can take longer than 10 s after a busy run.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
