"""End-to-end fixtures: the local stack as a subprocess, and a local HTTP server of photos.

``stack``         one ``python -m local_stack`` for the session (template.yaml, random ports)
``stack_factory`` start more stacks (another template, a signal test); stopped at the end
(``photo_server`` is in tests/conftest.py: unit tests use it too)
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data" / "photos"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


# ---------------------------------------------------------------- the local stack
@dataclass
class LocalStackProcess:
    """A running ``python -m local_stack`` and clients for it."""

    process: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path
    info: dict[str, Any]  # the ready file: URLs, API key, resource names
    session: requests.Session = field(default_factory=requests.Session)  # sends the API key

    @property
    def api_url(self) -> str:
        return self.info["api_url"]

    @property
    def aws_endpoint(self) -> str:
        return self.info["aws_endpoint"]

    @property
    def api_key(self) -> str:
        return self.info["api_key"]

    @property
    def table_name(self) -> str:
        return next(iter(self.info["tables"].values()))

    @property
    def bucket_name(self) -> str:
        return next(iter(self.info["buckets"].values()))

    def url(self, path: str) -> str:
        return self.api_url + path

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's moto server (never real AWS)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.info["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @property
    def s3(self) -> Any:
        return self._cached("s3")

    @property
    def dynamodb(self) -> Any:
        return self._cached("dynamodb")

    @property
    def sqs(self) -> Any:
        return self._cached("sqs")

    @property
    def table(self) -> Any:
        """The stack's table as a boto3 Table resource (plain Python values, not typed JSON)."""
        tables = self.__dict__.setdefault("_tables", {})
        if "table" not in tables:
            import boto3

            tables["table"] = boto3.resource(
                "dynamodb",
                endpoint_url=self.aws_endpoint,
                region_name=self.info["region"],
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).Table(self.table_name)
        return tables["table"]

    def _cached(self, service: str) -> Any:
        clients = self.__dict__.setdefault("_clients", {})
        if service not in clients:
            clients[service] = self.client(service)
        return clients[service]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send a signal and wait; returns the exit code (kills it if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the local stack did not stop within {timeout} s:\n{self.log()}")
        self.session.close()
        return self.process.returncode


def start_stack(
    workdir: Path,
    *,
    template: Path | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> LocalStackProcess:
    """Start ``python -m local_stack`` on free ports; returns once /status answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready_file, log_path = workdir / "ready.json", workdir / "stack.log"
    command = [
        sys.executable,
        "-m",
        "local_stack",
        "--port",
        "0",
        "--aws-port",
        "0",
        "--ready-file",
        str(ready_file),
        "--retry-delay",
        "1",
        *(["--template", str(template)] if template else []),
        *(args or []),
    ]
    environment = {
        **os.environ,
        "API_KEY": secrets.token_urlsafe(16),
        "ALLOW_PRIVATE_URLS": "true",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block the stack
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    stack = LocalStackProcess(process, log_path, ready_file, json.loads(ready_file.read_text()))
    stack.session.headers["x-api-key"] = stack.api_key
    while True:  # any HTTP answer will do: the route may not exist in this template
        try:
            requests.get(stack.url("/status"), timeout=5)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                stack.stop(signal.SIGKILL)
                pytest.fail(f"the API does not answer:\n{stack.log()}")
            time.sleep(0.05)
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """The local stack of template.yaml, with API_KEY set and ALLOW_PRIVATE_URLS=true."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    code = running.stop()
    if code != 0:
        pytest.fail(f"the local stack exited with {code}, not 0:\n{running.log()}")


@pytest.fixture(scope="module")
def stack_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LocalStackProcess]]:
    """``stack_factory(template=None, env=None, args=None)``: more stacks, for this module
    (stopped at its end unless a test stopped them)."""
    started: list[LocalStackProcess] = []

    def start(**kwargs: Any) -> LocalStackProcess:
        running = start_stack(tmp_path_factory.mktemp("stack"), **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop(signal.SIGKILL if running.process.poll() is None else signal.SIGTERM)
