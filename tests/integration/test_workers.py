"""Invocations in worker processes: in parallel, killed past their Timeout, dead ones replaced."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.runtime import Busy, InvocationError
from local_stack.spec import Function
from local_stack.workers import ProcessRuntime

HANDLER = """
import json, os, socket, time


def lambda_handler(event, context):
    if event.get("exit"):
        os._exit(3)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if "port" in event:
        # Wait at the test's barrier: it answers once every invocation has arrived.
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=30) as sock:
            sock.sendall(b"%d\\n" % os.getpid())
            sock.recv(1)
    return {"pid": os.getpid(), "env": os.environ.get("WHO"), "request": context.aws_request_id}
"""


@pytest.fixture
def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessRuntime]:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(textwrap.dedent(HANDLER))
    fn = Function("Fn", tmp_path / "fn", "app.lambda_handler", {"WHO": "fn"}, timeout_s=1.5)
    workers = getattr(request, "param", 2)
    rt = ProcessRuntime({"Fn": fn}, region="us-east-1", workers=workers)
    yield rt
    rt.close()


class Barrier:
    """A TCP rendezvous: ``meet(n)`` returns once n invocations are connected at the same time."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]

    def meet(self, n: int) -> list[int]:
        conns = [self.server.accept()[0] for _ in range(n)]
        pids = [int(c.makefile().readline()) for c in conns]
        for c in conns:
            c.sendall(b"x")
            c.close()
        return pids


def test_invocations_run_in_parallel_in_separate_processes(runtime: ProcessRuntime) -> None:
    barrier = Barrier()
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(runtime.invoke("Fn", {"port": barrier.port}))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    pids = barrier.meet(2)  # both connected at once: a serial runtime would never get here
    for t in threads:
        t.join(30)
    assert len(set(pids)) == 2
    assert sorted(r.payload["pid"] for r in results) == sorted(pids)
    assert {r.payload["env"] for r in results} == {"fn"}


@pytest.mark.parametrize("runtime", [1], indirect=True)
def test_busy_when_every_worker_is_taken(runtime: ProcessRuntime) -> None:
    barrier = Barrier()
    thread = threading.Thread(target=runtime.invoke, args=("Fn", {"port": barrier.port}))
    thread.start()
    conn = barrier.server.accept()[0]  # the only worker is now inside the handler
    with pytest.raises(Busy):
        runtime.invoke("Fn", {}, wait=0.01)
    conn.sendall(b"x")
    conn.close()
    thread.join(30)
    assert runtime.invoke("Fn", {}).payload["env"] == "fn"


@pytest.mark.parametrize("runtime", [1], indirect=True)
def test_a_run_past_the_timeout_is_killed_and_the_worker_replaced(runtime: ProcessRuntime) -> None:
    runtime.invoke("Fn", {})  # warm: the first call of a worker also gets Lambda's init time
    with pytest.raises(InvocationError) as info:
        runtime.invoke("Fn", {"sleep": 600})
    assert info.value.error_type == "Sandbox.Timedout"
    assert "1.5 seconds" in info.value.message
    assert runtime.invoke("Fn", {}).payload["env"] == "fn"


@pytest.mark.parametrize("runtime", [1], indirect=True)
def test_a_worker_that_exits_fails_the_invocation_only(runtime: ProcessRuntime) -> None:
    first = runtime.invoke("Fn", {}).payload["pid"]
    with pytest.raises(InvocationError) as info:
        runtime.invoke("Fn", {"exit": True})
    assert info.value.error_type == "Runtime.ExitError"
    again = runtime.invoke("Fn", {})
    assert again.payload["pid"] != first and json.loads(json.dumps(again.payload))
