"""Generate functions/status/openapi.json: routes from template.yaml, bodies from the models.

`python scripts/openapi.py` rewrites the file; `--check` fails if it is out of date (a test
runs the check, so the document can never drift from the template or the request models).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "functions" / "status" / "openapi.json"
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core" / "python")]  # a script, not a test

from imgsvc import __version__  # noqa: E402
from imgsvc.analyze import AnalyzeRequest  # noqa: E402
from imgsvc.imports import ImportRequest  # noqa: E402
from imgsvc.library import LookupRequest  # noqa: E402
from imgsvc.operations import CropRequest  # noqa: E402
from imgsvc.uploads import AddFilesRequest, CreateUploadRequest  # noqa: E402
from local_stack.template import read_stack  # noqa: E402

# JSON request bodies; every key must be a route of template.yaml (checked below).
BODIES = {
    ("POST", "/analyze"): AnalyzeRequest,
    ("POST", "/uploads"): CreateUploadRequest,
    ("POST", "/uploads/{upload_id}/files"): AddFilesRequest,
    ("POST", "/images"): ImportRequest,
    ("POST", "/images/{image_id}/crop"): CropRequest,
    ("POST", "/images/lookup"): LookupRequest,
}
MULTIPART = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "up to 4 MiB"},
        "name": {"type": "string", "maxLength": 200},
        "desc": {"type": "string", "maxLength": 2000},
    },
}
ERROR = {
    "type": "object",
    "required": ["status", "code", "message"],
    "properties": {
        "status": {"const": "error"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
}


def build() -> dict[str, Any]:
    spec = read_stack(ROOT / "template.yaml", aws_endpoint="http://localhost")
    schemas: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    known = {(r.method, r.path) for r in spec.routes}
    missing = set(BODIES) - known
    if missing:
        raise SystemExit(f"scripts/openapi.py names routes template.yaml lacks: {missing}")
    for route in sorted(spec.routes, key=lambda r: (r.path, r.method)):
        op: dict[str, Any] = {
            "operationId": f"{route.method.lower()}{re.sub(r'[^A-Za-z]', '_', route.path)}",
            "summary": f"{route.method} {route.path} ({route.function})",
            "responses": {
                "default": {
                    "description": "an error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "security": [{"apiKey": []}] if route.api_key_required else [],
        }
        params = re.findall(r"{(\w+)}", route.path)
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        model = BODIES.get((route.method, route.path))
        if model is not None:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            content = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            }
            if route.path == "/images":
                content["multipart/form-data"] = {"schema": MULTIPART}
            op["requestBody"] = {"required": True, "content": content}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",  # JSON Schema 2020-12, as pydantic writes it
        "info": {"title": "imgsvc", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python scripts/openapi.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
