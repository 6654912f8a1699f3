"""The OpenAPI document: generated from template.yaml and the models, valid, up to date."""

from __future__ import annotations

import json
import subprocess
import sys

from openapi_spec_validator import validate

from tests.conftest import ROOT, LambdaContext, api_event, call, load_handler


def test_the_committed_document_is_up_to_date():
    result = subprocess.run(
        [sys.executable, "scripts/openapi.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_served_document_is_valid_and_lists_every_route():
    from local_stack.template import read_stack

    status, document, _ = call(load_handler("status"), api_event("GET", "/openapi.json"))
    assert status == 200
    validate(document)
    routes = read_stack(ROOT / "template.yaml", aws_endpoint="http://localhost").routes
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert listed == {(r.method, r.path) for r in routes}
    for r in routes:
        op = document["paths"][r.path][r.method.lower()]
        assert bool(op["security"]) == r.api_key_required, (r.method, r.path)
    crop = document["paths"]["/images/{image_id}/crop"]["post"]
    schema = crop["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(document["components"]["schemas"][schema.rsplit("/", 1)[1]]["required"]) == {
        "left", "top", "right", "bottom"
    }  # fmt: skip


def test_docs_page_points_at_the_document():
    response = load_handler("status").lambda_handler(api_event("GET", "/docs"), LambdaContext())
    assert response["statusCode"] == 200
    assert 'url: "openapi.json"' in response["body"]
    json.loads((ROOT / "functions" / "status" / "openapi.json").read_text())
