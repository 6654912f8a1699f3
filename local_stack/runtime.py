"""A Lambda runtime in this process: lazy handler loading, context objects, one invocation at once.

Each function's handler module is imported by file path under its own module name (every
handler is ``app.py``) on its first invocation and kept, like a warm Lambda sandbox.

Invocations run one at a time, process-wide (``workers.ProcessRuntime`` runs several of these
in worker processes, for the local stack). Lambda runs one invocation per sandbox, and
handlers rely on that: Powertools keeps the current event in a class attribute
(``BaseRouter.current_event``), and each function has its own environment variables, which
we can only give it by setting ``os.environ`` for the duration of the call.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Protocol

from local_stack.cfn import ACCOUNT_ID
from local_stack.spec import Function

log = logging.getLogger("local_stack")

Handler = Callable[[Any, Any], Any]


class InvocationError(Exception):
    """The function failed: it raised, timed out, or returned what Lambda cannot send back."""

    def __init__(self, function: str, error_type: str, message: str, trace: list[str]) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.message = message
        self.trace = trace

    def payload(self, request_id: str) -> dict[str, Any]:
        """Lambda's error payload (what an on-failure destination receives)."""
        return {
            "errorMessage": self.message,
            "errorType": self.error_type,
            "requestId": request_id,
            "stackTrace": self.trace,
        }


class Busy(Exception):
    """Another invocation held the runtime for longer than the caller would wait."""


@dataclass(frozen=True)
class Invocation:
    payload: Any  # the handler's result after a JSON round trip, as Lambda returns it
    payload_bytes: int
    duration_ms: float
    request_id: str


class Invoker(Protocol):
    """What the API emulation and the event pollers call: Runtime, or workers.ProcessRuntime."""

    functions: dict[str, Function]

    def invoke(
        self, name: str, event: Any, *, request_id: str | None = None, wait: float | None = None
    ) -> Invocation: ...


class LambdaContext:
    """The context object of the Python runtime (awslambdaric's LambdaContext)."""

    def __init__(self, function: Function, region: str, request_id: str) -> None:
        self.aws_request_id = request_id
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function.logical_id}"
        )
        # A string, as in Lambda: the runtime reads AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
        self.memory_limit_in_mb = str(function.memory_mb)
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = SimpleNamespace(cognito_identity_id=None, cognito_identity_pool_id=None)
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + function.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def handler_module_name(logical_id: str) -> str:
    return f"_local_stack_handler_{logical_id}"


def load_handler_module(path: Path, module_name: str) -> ModuleType:
    """Import a handler file under a unique name (registered in sys.modules, as imports are)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def add_layer_paths(paths: list[Path]) -> None:
    """Put each layer's python/ directory on sys.path once, like /opt/python in Lambda."""
    for path in reversed(paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a call, then restore the previous ones."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Runtime:
    """Runs the template's functions in this process, one invocation at a time."""

    def __init__(
        self,
        functions: Mapping[str, Function],
        *,
        region: str,
        defaults: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.region = region
        self.defaults = dict(defaults or {})  # under the template's variables
        self.overrides = dict(overrides or {})  # local settings over the template's variables
        self._lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}

    def environment_of(self, function: Function) -> dict[str, str]:
        """The function's variables: defaults, the template's, Lambda's own, local overrides."""
        return {
            **self.defaults,
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.logical_id}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **self.overrides,
        }

    def invoke(
        self,
        name: str,
        event: Any,
        *,
        request_id: str | None = None,
        wait: float | None = None,
    ) -> Invocation:
        """Invoke a function synchronously; raises InvocationError, or Busy after ``wait`` s."""
        function = self.functions[name]
        request_id = request_id or str(uuid.uuid4())
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            raise Busy(name)
        try:
            with environment(self.environment_of(function)):
                handler = self._handler(function)
                # Lambda hands the handler a freshly parsed event and serializes its result.
                event = json.loads(json.dumps(event))
                context = LambdaContext(function, self.region, request_id)
                started = time.monotonic()
                try:
                    result = handler(event, context)
                except (Exception, SystemExit) as err:  # sys.exit() fails the invocation too
                    log.error(
                        "%s raised (request %s):\n%s",
                        name,
                        request_id,
                        "".join(traceback.format_exception(err)).rstrip(),
                    )
                    raise _error(name, err) from err
                duration_ms = (time.monotonic() - started) * 1000
        finally:
            self._lock.release()
        if duration_ms > function.timeout_s * 1000:
            log.error(
                "%s took %.0f ms: Lambda would have stopped it at its Timeout of %g s",
                name,
                duration_ms,
                function.timeout_s,
            )
            raise InvocationError(
                name, "Sandbox.Timedout", f"Task timed out after {function.timeout_s:g} seconds", []
            )
        try:
            body = json.dumps(result)
        except (TypeError, ValueError) as err:
            log.error("%s returned a result Lambda cannot serialize: %s", name, err)
            raise InvocationError(name, "Runtime.MarshalError", str(err), []) from err
        return Invocation(json.loads(body), len(body.encode()), duration_ms, request_id)

    def _handler(self, function: Function) -> Handler:
        handler = self._handlers.get(function.logical_id)
        if handler is not None:
            return handler
        path = function.handler_file
        started = time.monotonic()
        try:
            module = load_handler_module(path, handler_module_name(function.logical_id))
            handler = getattr(module, function.handler_name)
        except Exception as err:
            # Lambda reports an init error and tries the init again on the next invocation.
            log.error(
                "%s: cannot load %s:\n%s",
                function.logical_id,
                function.handler,
                "".join(traceback.format_exception(err)).rstrip(),
            )
            raise _error(function.logical_id, err, init=True) from err
        log.info(
            "%s: cold start, loaded %s in %.0f ms",
            function.logical_id,
            _relative(path),
            (time.monotonic() - started) * 1000,
        )
        self._handlers[function.logical_id] = handler
        return handler


def _error(function: str, err: BaseException, *, init: bool = False) -> InvocationError:
    kind = type(err).__name__
    trace = traceback.format_tb(err.__traceback__)
    return InvocationError(function, "Runtime.ImportModuleError" if init else kind, str(err), trace)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
