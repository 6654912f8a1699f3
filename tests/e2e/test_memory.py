"""The local stack's memory stays bounded: 200 uploads into a table that already holds a few
hundred images grow it by under 1 MB each (moto's whole-table copy per transaction item used to
grow it by tens of megabytes per upload)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.test_service import noise_png, upload, wait_done

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

PRELOADED = 400
UPLOADS = 200
MAX_GROWTH_PER_UPLOAD = 1024 * 1024


def rss(pid: int) -> int:
    """Resident bytes of a process and its children (the stack: moto + API + workers)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except FileNotFoundError:
            continue
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        for task in Path(f"/proc/{current}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    return total * 1024


def preload(stack: LocalStackProcess, n: int) -> None:
    """Image items with their phash index entries, as ingest writes them (no bytes needed:
    the cost under test is the table's size)."""
    table = stack.table
    with table.batch_writer() as batch:
        for i in range(n):
            sha = hashlib.sha256(b"preload%d" % i).hexdigest()
            phash = sha[:16]
            batch.put_item(
                Item={
                    "PK": f"IMAGE#{sha}", "SK": "META", "GSI1PK": "IMAGES",
                    "GSI1SK": f"2026-01-01T00:00:00+00:00#{sha}", "image_id": sha, "sha256": sha,
                    "format": "PNG", "width": 64, "height": 48, "phash": phash, "bytes": 9000,
                }
            )  # fmt: skip
            for chunk in range(4):
                pk = f"PHASH#{chunk}#{phash[chunk * 4 : chunk * 4 + 4]}"
                batch.put_item(Item={"PK": pk, "SK": sha, "phash": phash})


def test_memory_per_upload_is_bounded(stack_factory) -> None:
    stack = stack_factory()
    preload(stack, PRELOADED)
    # Warm up: every worker has loaded the ingest handler and moto its structures.
    wait_done(stack, upload(stack, [(f"w{i}.png", noise_png(9000 + i)) for i in range(20)], 8))
    before = rss(stack.info["pid"])
    files = [(f"m{i:03d}.png", noise_png(10_000 + i)) for i in range(UPLOADS)]
    states = wait_done(stack, upload(stack, files, workers=8), timeout=600)
    assert all(s["status"] == "done" for s in states.values())
    growth = rss(stack.info["pid"]) - before
    print(f"RSS growth: {growth / 2**20:.1f} MiB over {UPLOADS} uploads "
          f"({growth / UPLOADS / 1024:.0f} KiB per upload)")  # fmt: skip
    assert growth < UPLOADS * MAX_GROWTH_PER_UPLOAD
