"""The display-phash backfill end to end: `python -m scripts.migrate run ... --local` against
the local stack, the work done by MigrationFunction through the emulated SQS event source."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests
from PIL import Image, ImageOps

from imgsvc.phash import display_phash_hex, phash_hex
from imgsvc.phash_index import hamming, index_keys
from tests.conftest import PHOTOS, ROOT
from tests.e2e.test_service import photo, upload, wait_done

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

SIDEWAYS = "coffee_iphone_rot6.jpg"  # stored sideways, EXIF orientation 6
# Stored sideways too but without the tag: its twin under the old hash, not as displayed.
STORED_TWIN = "coffee_sony_padded.jpg"
OTHERS = ["chelsea_canon.jpg", "motorcycle_left.jpg"]


def upright_copy() -> bytes:
    """The picture as displayed, stored upright: its twin under the new hash."""
    with Image.open(PHOTOS / SIDEWAYS) as im:
        out = io.BytesIO()
        ImageOps.exif_transpose(im).save(out, "JPEG", quality=95)
        return out.getvalue()


def migrate(stack: LocalStackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scripts.migrate", *args, "--local"]
    command += ["--ready-file", str(stack.ready_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr + stack.log()[-3000:]
    return done


def make_stale(stack: LocalStackProcess, image_id: str, old: str) -> None:
    """As an image stored before display hashes: the stored pixels' hash, its index items."""
    t = stack.table
    key = {"PK": f"IMAGE#{image_id}", "SK": "META"}
    for pk in index_keys(t.get_item(Key=key)["Item"]["phash"]):
        t.delete_item(Key={"PK": pk, "SK": image_id})
    for pk in index_keys(old):
        t.put_item(Item={"PK": pk, "SK": image_id, "phash": old})
    t.update_item(
        Key=key,
        UpdateExpression="SET phash = :p REMOVE migrations",  # written before: no marks
        ExpressionAttributeValues={":p": old},
    )
    # ... and before thumbnails.
    stack.s3.delete_object(Bucket=stack.bucket_name, Key=f"renditions/{image_id}/thumb.webp")


def thumbnail_status(stack: LocalStackProcess, image_id: str) -> int:
    link = stack.session.get(stack.url(f"/images/{image_id}/thumbnail"), allow_redirects=False)
    assert link.status_code == 302
    return requests.get(link.headers["Location"], timeout=10).status_code


def similar_ids(stack: LocalStackProcess, image_id: str) -> dict[str, int]:
    response = stack.session.get(stack.url(f"/images/{image_id}/similar"))
    assert response.status_code == 200, response.text
    return {r["image_id"]: r["distance"] for r in response.json()["results"]}


def progress(stack: LocalStackProcess) -> dict[str, Any]:
    key = {"PK": "MIGRATION#display-phash", "SK": "RUN"}
    return stack.table.get_item(Key=key, ConsistentRead=True)["Item"]


@pytest.fixture(scope="module")
def own_stack(stack_factory) -> LocalStackProcess:
    """A stack of its own: the migration runs over the whole library."""
    return stack_factory()


def test_the_backfill_moves_old_hashes_resumes_and_changes_nothing_twice(own_stack) -> None:
    stack = own_stack
    files = [(n, photo(n)) for n in [SIDEWAYS, STORED_TWIN, *OTHERS]]
    files.append(("coffee_upright.jpg", upright_copy()))
    ids = {n: f["image_id"] for n, f in wait_done(stack, upload(stack, files)).items()}
    sideways, stored_twin, upright = ids[SIDEWAYS], ids[STORED_TWIN], ids["coffee_upright.jpg"]
    with Image.open(PHOTOS / SIDEWAYS) as im:
        old, displayed = phash_hex(im), display_phash_hex(im, 6)
    assert stack.session.get(stack.url(f"/images/{sideways}")).json()["phash"] == displayed
    make_stale(stack, sideways, old)
    assert thumbnail_status(stack, sideways) == 404
    near = similar_ids(stack, sideways)
    assert stored_twin in near and upright not in near  # what old hashes see

    # Interrupted after one page of two images: the cursor is kept.
    first = migrate(stack, "run", "display-phash", "--page-size", "2", "--max-pages", "1")
    assert "enqueued 2 (page 1)" in first.stdout
    assert progress(stack)["listed"] is False and progress(stack)["cursor"]

    resumed = migrate(stack, "run", "display-phash", "--page-size", "2", "--wait")
    assert "resuming display-phash@1" in resumed.stdout
    assert "enqueued 5 (page 3)" in resumed.stdout
    assert "done 5 of 5 (changed 1, failed 0)" in resumed.stdout
    state = progress(stack)
    assert (state["enqueued"], state["done"], state["changed"], state["failed"]) == (5, 5, 1, 0)
    assert state["listed"] is True and state["finished_at"]

    assert stack.session.get(stack.url(f"/images/{sideways}")).json()["phash"] == displayed
    near = similar_ids(stack, sideways)
    assert upright in near and stored_twin not in near  # what people see
    assert sideways in similar_ids(stack, upright)
    assert sideways not in similar_ids(stack, stored_twin)  # its old index items are gone
    diff = stack.session.get(stack.url(f"/images/{upright}/diff/{sideways}")).json()
    assert diff["distance"] == near[upright] == hamming(displayed, diff["hashes"][upright])

    status = migrate(stack, "status", "display-phash")
    assert "done 5 of 5, changed 1, failed 0" in status.stdout and "finished" in status.stdout

    # Again from the top: every image is skipped, nothing but the progress item changes.
    def images() -> list[str]:
        items = stack.table.scan()["Items"]
        kept = [i for i in items if not i["PK"].startswith("MIGRATION#")]
        return sorted(json.dumps(i, sort_keys=True, default=str) for i in kept)

    before = images()
    again = migrate(stack, "run", "display-phash", "--restart", "--wait")
    assert "done 5 of 5 (changed 0, failed 0)" in again.stdout
    assert images() == before

    # Every migration in one command: display-phash is complete (nothing to send), the
    # thumbnail backfill writes the one missing thumbnail and skips the rest.
    every = migrate(stack, "run", "all", "--wait")
    assert "done 5 of 5 (changed 1, failed 0)" in every.stdout
    assert thumbnail_status(stack, sideways) == 200
    item = stack.table.get_item(Key={"PK": f"IMAGE#{sideways}", "SK": "META"})["Item"]
    assert item["migrations"] == {"display-phash@1", "thumbnails@1"}
