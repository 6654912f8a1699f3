"""Invocations in parallel, each in a worker process, as Lambda runs them in separate sandboxes.

Threads would not do: Powertools keeps the current event in class state and each function gets
its environment through ``os.environ``. A worker runs one invocation at a time with the
in-process ``Runtime`` (lazy handler loading, contexts, the JSON round trip), so a warm worker is
a warm sandbox. A worker that outlives the function's ``Timeout`` is killed and replaced, as
Lambda stops a sandbox; one that dies (``os._exit``, a crash) fails the invocation.

Workers are started with ``spawn``: the parent runs server threads, which ``fork`` would copy
mid-lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import queue
import sys
import threading
import uuid
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from local_stack.runtime import Busy, Invocation, InvocationError, Runtime
from local_stack.spec import Function

log = logging.getLogger("local_stack")

# Time the parent allows a worker beyond the function's Timeout before it kills it, and more on
# a worker's first invocation of a function (loading the handler: Lambda's init phase has its
# own 10 s limit, outside the Timeout).
_KILL_GRACE_S = 2.0
_INIT_S = 10.0


def _serve(conn: Connection, settings: dict[str, Any], log_level: int) -> None:
    """A worker's loop: one invocation at a time until the parent sends None."""
    runtime = Runtime(**settings)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(log_level)
    log.propagate = False
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        name, event_json, request_id = message
        try:
            done = runtime.invoke(name, json.loads(event_json), request_id=request_id)
        except InvocationError as err:
            conn.send(("error", err.error_type, err.message, err.trace))
        else:
            conn.send(("ok", json.dumps(done.payload), done.payload_bytes, done.duration_ms))


class _Worker:
    def __init__(self, context: Any, settings: dict[str, Any], log_level: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, settings, log_level), name="lambda-worker", daemon=True
        )
        self.process.start()
        child.close()
        self.loaded: set[str] = set()  # functions whose handler this worker has imported

    def call(self, message: tuple[str, str, str], timeout: float) -> tuple[Any, ...]:
        """The worker's reply; ("timeout",) when it ran past ``timeout``, ("died",) when it
        exited (a closed pipe wakes poll() too, and recv() then fails)."""
        try:
            self.conn.send(message)
            if not self.conn.poll(timeout):
                return ("timeout",)
            return self.conn.recv()
        except (EOFError, OSError):
            return ("died",)

    def stop(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


class ProcessRuntime:
    """The template's functions, invoked in parallel in ``workers`` worker processes."""

    def __init__(
        self,
        functions: Mapping[str, Function],
        *,
        region: str,
        workers: int,
        defaults: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self._settings: dict[str, Any] = {
            "functions": dict(functions),
            "region": region,
            "defaults": dict(defaults or {}),
            "overrides": dict(overrides or {}),
        }
        self._template = Runtime(**self._settings)  # for environment_of only
        self._context = multiprocessing.get_context("spawn")
        self._log_level = log.getEffectiveLevel()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(max(1, workers)):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self._settings, self._log_level)

    def environment_of(self, function: Function) -> dict[str, str]:
        return self._template.environment_of(function)

    def invoke(
        self,
        name: str,
        event: Any,
        *,
        request_id: str | None = None,
        wait: float | None = None,
    ) -> Invocation:
        """Invoke a function in an idle worker; raises InvocationError, or Busy after ``wait`` s
        without an idle worker."""
        function = self.functions[name]
        request_id = request_id or str(uuid.uuid4())
        try:
            worker = self._idle.get(timeout=wait)
        except queue.Empty:
            raise Busy(name) from None
        message = (name, json.dumps(event), request_id)
        try:
            init = 0.0 if name in worker.loaded else _INIT_S
            reply = worker.call(message, function.timeout_s + _KILL_GRACE_S + init)
            if reply[0] in ("timeout", "died"):
                worker.stop(timeout=0.5)
                worker = self._spawn()
                if reply[0] == "timeout":
                    log.error(
                        "%s: still running after its Timeout of %g s: worker killed",
                        name,
                        function.timeout_s,
                    )
                    raise InvocationError(
                        name,
                        "Sandbox.Timedout",
                        f"Task timed out after {function.timeout_s:g} seconds",
                        [],
                    )
                log.error("%s: the worker process exited during the invocation", name)
                raise InvocationError(name, "Runtime.ExitError", "Runtime exited", [])
        finally:
            with self._lock:
                if self._closed:
                    worker.stop()
                else:
                    self._idle.put(worker)
        worker.loaded.add(name)
        if reply[0] == "error":
            _, error_type, text, trace = reply
            raise InvocationError(name, error_type, text, trace)
        _, body, payload_bytes, duration_ms = reply
        return Invocation(json.loads(body), payload_bytes, duration_ms, request_id)

    def close(self) -> None:
        """Stop the idle workers now, the busy ones when their invocation ends."""
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return
