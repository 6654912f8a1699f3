"""Classes of hostile input, each over every route it applies to: always a small 4xx.

Unusual text (lone surrogates), unbounded error messages (100,000 unknown keys), identifiers
matched loosely (an id followed by an encoded newline), bad query values.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conftest import ROOT, LambdaContext, api_event, load_handler

DOCUMENT = json.loads((ROOT / "functions" / "status" / "openapi.json").read_text())
FOLDER = {  # route -> function folder (template.yaml's CodeUri)
    "/analyze": "analyze",
    "/uploads": "uploads",
    "/uploads/{upload_id}/files": "uploads",
    "/uploads/{upload_id}": "uploads",
    "/images": None,  # GET/DELETE: images; POST: import_image
    "/images/{image_id}": "images",
    "/images/lookup": "images",
    "/images/{image_id}/content": "images",
    "/images/{image_id}/thumbnail": "images",
    "/images/{image_id}/rendition": "rendition",
    "/images/{image_id}/crop": "crop",
    "/images/{image_id}/diff/{other_id}": "diff",
    "/images/{image_id}/similar": "similar",
    "/images/{image_id}/ascii": "ascii",
    "/history": "history",
    "/stats": "stats",
}
IMAGE_ID = "a" * 64
UPLOAD_ID = "3b241101-e2bb-4255-8caf-4136c566a962"
LONE = "\ud800"


def folder_of(method: str, path: str) -> str:
    if path == "/images":
        return "import_image" if method == "POST" else "images"
    return FOLDER[path]


def concrete(path: str) -> str:
    return (
        path.replace("{image_id}", IMAGE_ID)
        .replace("{other_id}", IMAGE_ID)
        .replace("{upload_id}", UPLOAD_ID)
    )


def json_routes() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, ops in DOCUMENT["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                name = content["schema"]["$ref"].rsplit("/", 1)[1]
                example = DOCUMENT["components"]["schemas"][name]["examples"][0]
                out.append((method.upper(), path, example))
    return out


def string_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_paths(v, (*prefix, i))]
    return [prefix] if isinstance(value, str) else []


def replaced(value: Any, where: tuple, new: Any) -> Any:
    out = copy.deepcopy(value)
    target = out
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = new
    return out


def send(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, str]:
    handler = load_handler(folder_of(method, path))
    headers = {"Content-Type": "application/json"}
    event = api_event(method, concrete(path), body=body, headers=headers, **kwargs)
    event["resource"] = path
    response = handler.lambda_handler(event, LambdaContext())
    return response["statusCode"], response["body"]


CASES = [
    (method, path, where, example)
    for method, path, example in json_routes()
    for where in string_paths(example)
]


def test_every_json_route_is_covered() -> None:
    assert {(m, p) for m, p, _ in json_routes()} == {
        ("POST", "/analyze"),
        ("POST", "/uploads"),
        ("POST", "/uploads/{upload_id}/files"),
        ("POST", "/images"),
        ("POST", "/images/{image_id}/crop"),
        ("POST", "/images/lookup"),
    }
    assert len(CASES) >= 6


@pytest.mark.parametrize(("method", "path", "where", "example"), CASES)
def test_lone_surrogates_in_any_string_field_are_a_400(aws, method, path, where, example) -> None:
    text = json.dumps(replaced(example, where, LONE))  # json.dumps writes it as "\ud800"
    assert "\\ud800" in text
    status, body = send(method, path, text)
    assert status == 400, (where, body)
    assert "not valid Unicode" in json.loads(body)["message"]


@pytest.mark.parametrize(("method", "path", "example"), json_routes())
def test_lone_surrogate_keys_and_pairs(aws, method, path, example) -> None:
    status, _ = send(method, path, json.dumps({**example, LONE: 1}))
    assert status == 400
    # A well-formed pair is real text (an emoji): it is not refused for being escaped.
    status, body = send(method, path, json.dumps({**example, "\U0001f600": 1}))
    assert status == 400 and "not valid Unicode" not in body


@pytest.mark.parametrize(("method", "path", "example"), json_routes())
def test_error_bodies_stay_small_whatever_the_input(aws, method, path, example) -> None:
    body = {**example, **{f"unknown{i}": i for i in range(100_000)}}
    status, text = send(method, path, json.dumps(body))
    assert status == 400 and len(text) < 1000, text[:2000]
    message = json.loads(text)["message"]
    assert "more problems" in message and message.count("unknown") <= 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        (m.upper(), p)
        for p, ops in DOCUMENT["paths"].items()
        for m in ops
        if "{image_id}" in p or "{upload_id}" in p
    ],
)
@pytest.mark.parametrize("suffix", ["\n", "%0A", " ", "\x00", "A"])
def test_ids_are_matched_exactly(aws, method, path, suffix) -> None:
    loose = (
        concrete(path)
        .replace(IMAGE_ID, IMAGE_ID + suffix, 1)
        .replace(UPLOAD_ID, UPLOAD_ID + suffix, 1)
    )
    handler = load_handler(folder_of(method, path))
    event = api_event(
        method, loose, body=json.dumps({}), headers={"Content-Type": "application/json"}
    )
    response = handler.lambda_handler(event, LambdaContext())
    assert response["statusCode"] in (400, 404), (loose, response["body"])
    assert json.loads(response["body"])["status"] == "error"


def test_an_id_with_a_newline_deletes_nothing(aws) -> None:
    import io

    from PIL import Image

    from imgsvc.ingest import ingest_bytes

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    image, _ = ingest_bytes(buf.getvalue(), filename="x.png", name="x")
    images = load_handler("images")
    for path in (f"/images/{image['image_id']}\n", f"/images/{image['image_id']}%0A"):
        response = images.lambda_handler(api_event("DELETE", path), LambdaContext())
        assert response["statusCode"] in (400, 404)
    response = images.lambda_handler(
        api_event("GET", f"/images/{image['image_id']}"), LambdaContext()
    )
    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/images", {"limit": "1e3"}),
        ("/images", {"limit": LONE}),
        ("/images", {"cursor": LONE}),
        ("/images", {"cursor": "x" * 5000}),
        ("/history", {"limit": "-1"}),
        ("/images", {"confirm": "TRUE"}),
    ],
)
def test_bad_query_values_are_a_400(aws, path, query) -> None:
    method = "DELETE" if "confirm" in query else "GET"
    handler = load_handler(folder_of(method, path))
    response = handler.lambda_handler(api_event(method, path, query=query), LambdaContext())
    assert response["statusCode"] == 400, response["body"]
