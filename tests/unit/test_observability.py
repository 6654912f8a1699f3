"""Tracing is opt-in: with it off no handler imports the X-Ray SDK; the no-op tracer keeps
Powertools' decorator API; logging, metrics and tracing come from imgsvc.observability."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from imgsvc.observability import NoOpTracer, create_tracer
from local_stack.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core" / "python"
TEMPLATE = load_template(ROOT / "template.yaml")

# Imports every handler of the template under its own module name (all are app.py) in a
# fresh interpreter, then reports what got imported and which tracer the handlers share.
_PROBE = """
import importlib.util, json, sys
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"handler_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
from imgsvc.observability import tracer
print(json.dumps({
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
    "tracer": type(tracer).__module__ + "." + type(tracer).__name__,
}))
"""


def _handler_files() -> list[str]:
    return [
        str(ROOT / resource["Properties"]["CodeUri"] / "app.py")
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


def _import_all_handlers(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "TRACING_ENABLED"}
    clean.update(
        PYTHONPATH=str(CORE),
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",  # if the Tracer is built: no X-Ray daemon here
        **env,
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *_handler_files()],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_template_tracing_parameter_defaults_off_and_reaches_every_function() -> None:
    param = TEMPLATE["Parameters"]["Tracing"]
    assert str(param["Default"]) == "false"
    assert sorted(map(str, param["AllowedValues"])) == ["false", "true"]
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TRACING_ENABLED"] == {"Ref": "Tracing"}


def test_no_handler_imports_the_xray_sdk_when_tracing_is_off() -> None:
    report = _import_all_handlers()  # TRACING_ENABLED unset: the template's default
    assert len(_handler_files()) >= 12
    assert "aws_xray_sdk" not in report["modules"]
    assert report["tracer"] == "imgsvc.observability.NoOpTracer"
    # The same holds with the variable set the way the template sets it.
    assert "aws_xray_sdk" not in _import_all_handlers(TRACING_ENABLED="false")["modules"]


def test_tracing_on_uses_the_powertools_tracer() -> None:
    report = _import_all_handlers(TRACING_ENABLED="true")
    assert report["tracer"] == "aws_lambda_powertools.tracing.tracer.Tracer"
    assert "aws_xray_sdk" in report["modules"]


def test_create_tracer_in_process() -> None:
    from aws_lambda_powertools.tracing import Tracer

    assert isinstance(create_tracer(False), NoOpTracer)
    with mock.patch.dict(os.environ, {"POWERTOOLS_TRACE_DISABLED": "true"}):
        assert isinstance(create_tracer(True), Tracer)


def test_noop_tracer_decorators_return_the_function_itself() -> None:
    tracer = NoOpTracer()

    def handler(event: dict, context: object) -> dict:
        return {"echo": event}

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_method(capture_error=False)(handler) is handler

    @tracer.capture_method
    def method(x: int) -> int:
        return x + 1

    assert method(1) == 2
    tracer.put_annotation("key", "value")
    tracer.put_metadata("key", {"a": 1}, namespace="imgsvc")


def test_noop_tracer_covers_the_tracer_api_the_code_uses() -> None:
    """Every tracer.<attr> used in functions/ and imgsvc/ exists on NoOpTracer."""
    used: set[str] = set()
    files = [*ROOT.glob("functions/*/app.py"), *CORE.glob("imgsvc/*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "tracer"
            ):
                used.add(node.attr)
    assert "capture_lambda_handler" in used  # the scan finds the decorators
    assert sorted(a for a in used if not hasattr(NoOpTracer, a)) == []


def test_domain_modules_do_not_import_the_http_glue() -> None:
    offenders = []
    for path in sorted(CORE.glob("imgsvc/*.py")):
        if path.stem == "http":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if "imgsvc.http" in names:
                offenders.append(path.name)
    assert offenders == []


def test_a_blocked_address_is_logged_as_a_warning() -> None:
    from imgsvc import fetch
    from imgsvc.errors import BlockedUrl
    from imgsvc.fetch import dns

    with (
        mock.patch.object(dns, "resolve_host", return_value=["10.0.0.7"]),
        mock.patch.object(dns.logger, "warning") as warning,
        pytest.raises(BlockedUrl),
    ):
        fetch.fetch_bytes("http://internal.example/x.jpg", max_bytes=1024, allow_private=False)
    warning.assert_called_once()
    assert warning.call_args.kwargs["extra"]["address"] == "10.0.0.7"
