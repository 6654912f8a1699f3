"""Generate functions/status/openapi.json from the handlers' own Powertools resolvers.

Every function under functions/ builds its routes on a Powertools resolver with typed
parameters and response models; each resolver's ``get_openapi_schema()`` describes its routes,
and ``OpenAPIMerge`` merges them into the one document the status function serves (the deployed
functions cannot import each other, so the merge happens here, at commit time).

Handlers build their resolver through ``imgsvc.http.create_app()``, a call ``OpenAPIMerge``'s
discovery does not recognise, so this script loads each handler and adds its schema itself.

`python scripts/openapi.py` rewrites the file; `--check` fails if it is out of date (a test
runs the check). The routes are checked against template.yaml, including which need a key.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "functions" / "status" / "openapi.json"
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core" / "python")]  # a script, not a test
# Handlers read these at import; nothing here talks to AWS.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge  # noqa: E402
from aws_lambda_powertools.event_handler.openapi.models import (  # noqa: E402
    APIKey,
    APIKeyIn,
    Server,
    Tag,
)

from imgsvc import __version__  # noqa: E402
from imgsvc.direct_uploads import DESC_MAX, DIRECT_UPLOAD_MAX_BYTES, NAME_MAX  # noqa: E402
from local_stack.template import read_stack  # noqa: E402

DESCRIPTION = """\
Analyze images by URL, upload photos straight to S3 with presigned POSTs, and use the library:
list, get, download, delete, import, crop, compare by perceptual hash, find similar images,
ASCII art and statistics.

Send your API key in the `x-api-key` header (routes marked with a lock). Every error has one
shape: `{"status": "error", "code": "...", "message": "..."}`. Image ids are the sha256 of the
image's bytes: the same content uploaded twice is one image."""
TAGS = [
    Tag(name="service", description="Liveness and documentation (no key)."),
    Tag(name="analyze", description="Format, size and mode of an image by URL, cached."),
    Tag(name="uploads", description="Presigned S3 uploads and their processing state."),
    Tag(name="library", description="The stored images."),
    Tag(name="operations", description="Crop, compare, similar images, ASCII art."),
]
API_KEY = "apiKey"
# POST /images takes JSON or multipart; Powertools validates one body type per route, so the
# handler parses its own body and the multipart form is described here.
MULTIPART = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {
            "type": "string",
            "format": "binary",
            "description": f"The image file, up to {DIRECT_UPLOAD_MAX_BYTES} bytes.",
        },
        "name": {"type": "string", "maxLength": NAME_MAX},
        "desc": {"type": "string", "maxLength": DESC_MAX},
    },
}


def _load_resolver(handler: Path) -> Any:
    name = f"openapi_{handler.parent.name}"
    spec = importlib.util.spec_from_file_location(name, handler)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return getattr(module, "app", None)


def _error(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _tidy(document: dict[str, Any], spec: Any) -> None:
    """What the template knows and the resolvers do not: keys, and the multipart body."""
    from imgsvc.direct_uploads import ImportRequest

    key_required = {(r.method.lower(), r.path): r.api_key_required for r in spec.routes}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            # Powertools adds its own 422 for validation errors; this API answers them with 400.
            if "HTTPValidationError" in json.dumps(op["responses"].get("422", {})):
                del op["responses"]["422"]
            if key_required.get((method, path)):
                op["security"] = [{API_KEY: []}]
                # API Gateway answers these itself, in the same error shape (GatewayResponses).
                op["responses"]["403"] = _error("The x-api-key header is missing or wrong.")
                op["responses"]["429"] = _error("Too many requests for this key: retry later.")
            else:
                op["security"] = []
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    create = document["paths"]["/images"]["post"]
    schemas["ImportRequest"] = ImportRequest.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    create["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ImportRequest"}},
            "multipart/form-data": {"schema": MULTIPART},
        },
    }


def build() -> dict[str, Any]:
    spec = read_stack(ROOT / "template.yaml", aws_endpoint="http://localhost")
    merge = OpenAPIMerge(
        title="imgsvc",
        version=__version__,
        description=DESCRIPTION,
        tags=TAGS,
        servers=[Server(url=".", description="This stage (the page's own address).")],
        security_schemes={API_KEY: APIKey(name="x-api-key", in_=APIKeyIn.header)},
        on_conflict="error",
    )
    routed = {r.function for r in spec.routes}
    for handler in sorted(
        f.handler_file for f in spec.functions.values() if f.logical_id in routed
    ):
        app = _load_resolver(handler)
        if app is not None and hasattr(app, "get_openapi_schema"):
            merge.add_schema(app.get_openapi_schema(title="imgsvc", version=__version__))
    document = json.loads(merge.get_openapi_json_schema())
    _tidy(document, spec)
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    expected = {(r.method, r.path) for r in spec.routes}
    if listed != expected:
        raise SystemExit(
            f"the handlers' routes differ from template.yaml: only in handlers "
            f"{sorted(listed - expected)}, only in the template {sorted(expected - listed)}"
        )
    return document


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
