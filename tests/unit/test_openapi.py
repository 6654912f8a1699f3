"""The OpenAPI document: generated from template.yaml and the models, valid, up to date."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

from tests.conftest import ROOT, LambdaContext, api_event, call, load_handler, response_headers


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


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_docs_page_embeds_swagger_ui_and_the_document(path):
    response = load_handler("status").lambda_handler(api_event("GET", path), LambdaContext())
    assert response["statusCode"] == 200
    body = response["body"]
    # No CDN and no relative URL: the assets and the document are inside the page.
    assert "unpkg" not in body and "cdn" not in body.lower()
    assert "SwaggerUIBundle" in body and '"/images/{image_id}/crop"' in body
    assert "public, max-age=" in response_headers(response)["Cache-Control"]
    json.loads((ROOT / "functions" / "status" / "openapi.json").read_text())


def test_every_operation_is_documented_for_users():
    document = json.loads((ROOT / "functions" / "status" / "openapi.json").read_text())
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("description"), where
            assert any(s.startswith("2") or s == "302" for s in op["responses"]), where
            assert "400" in op["responses"], where
            for param in op.get("parameters", []):
                assert param["schema"].get("type"), (where, param["name"])
                if param["in"] == "path":
                    assert param["schema"]["pattern"].startswith("^"), where
                    assert param["schema"]["pattern"].endswith("$"), where
                    assert "404" in op["responses"], where
                if param["name"] in ("image_id", "other_id"):
                    assert param["schema"]["pattern"] == "^[0-9a-f]{64}$", where
                if param["name"] == "upload_id":
                    assert param["schema"]["pattern"] == (
                        "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
                    ), where
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[1]
                assert document["components"]["schemas"][name].get("examples"), where
    query = {p["name"]: p for p in document["paths"]["/images"]["get"]["parameters"]}
    assert query["limit"]["schema"]["minimum"] == 1 and query["limit"]["schema"]["maximum"] == 100
