"""`imgsvc upload --jobs 8` against one-at-a-time uploads, over a local stack of its own.

Both upload 200 distinct generated photos (different sets, so neither finds the other's in
the library); then the command runs again on its folder and reports what it sent (goal: zero
image bytes), checked against the upload records the service holds.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.env import ROOT

PHOTOS_PER_RUN = 200
JOBS = 8
START_TIMEOUT_S = 60


def generate(folder: Path, count: int, seed: int) -> int:
    """Distinct photo-like JPEGs (gradients, shapes, a little noise); returns total bytes."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for n in range(count):
        w, h = 640, 480
        image = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = rng.randrange(w), rng.randrange(h)
            r = rng.randrange(20, 160)
            color = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        image = image.filter(ImageFilter.GaussianBlur(2))
        noise = Image.effect_noise((w, h), 12).convert("RGB")
        image = Image.blend(image, noise, 0.08)
        path = folder / f"IMG_{n:04d}.jpg"
        image.save(path, quality=88)
        total += path.stat().st_size
    return total


def _start_stack(workdir: Path) -> tuple[subprocess.Popen[bytes], dict, Path]:
    ready, log = workdir / "ready.json", workdir / "stack.log"
    env = {
        **os.environ,
        "API_KEY": secrets.token_urlsafe(16),
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_stack", "--port", "0", "--aws-port", "0",
             "--ready-file", str(ready)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the local stack did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process, json.loads(ready.read_text()), log


def _upload_records(info: dict) -> int:
    import boto3

    ddb = boto3.client(
        "dynamodb", endpoint_url=info["aws_endpoint"], region_name=info["region"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    pages = ddb.get_paginator("scan").paginate(
        TableName=next(iter(info["tables"].values())),
        FilterExpression="begins_with(SK, :f)",
        ExpressionAttributeValues={":f": {"S": "FILE#"}},
        Select="COUNT",
    )
    return sum(p["Count"] for p in pages)


def _command(info: dict, folder: Path, journal: Path) -> tuple[float, dict, int]:
    env = {**os.environ, "IMGSVC_API": info["api_url"], "IMGSVC_API_KEY": info["api_key"]}
    env["PYTHONPATH"] = str(ROOT / "client")  # whether or not the venv has it installed
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "imgsvc_client.cli", "upload", str(folder), "--jobs", str(JOBS),
         "--json", "--journal", str(journal)],
        env=env, capture_output=True, timeout=1800,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    return elapsed, json.loads(done.stdout), done.returncode


def run() -> bool:
    from imgsvc_client import Client

    problem = False
    with tempfile.TemporaryDirectory(prefix="imgsvc-bench-cli-") as tmp:
        work = Path(tmp)
        one_size = generate(work / "one", PHOTOS_PER_RUN, seed=1)
        cmd_size = generate(work / "cmd", PHOTOS_PER_RUN, seed=2)
        generate(work / "warm", 1, seed=3)
        process, info, _ = _start_stack(work)
        try:
            client = Client(info["api_url"], info["api_key"])
            client.upload_file(work / "warm" / "IMG_0000.jpg")  # handler imports, first calls

            start = time.perf_counter()
            states = [client.upload_file(p) for p in sorted((work / "one").iterdir())]
            one_s = time.perf_counter() - start
            one_ok = sum(1 for s in states if s["status"] == "done")

            cmd_s, summary, code = _command(info, work / "cmd", work / "journal.json")
            records = _upload_records(info)
            rerun_s, again, rerun_code = _command(info, work / "cmd", work / "journal.json")
            added = _upload_records(info) - records
        finally:
            process.terminate()
            process.wait(30)

    report.table(
        ["", "files", "bytes", "created", "time", "files/s", "vs one-at-a-time"],
        [
            ["one at a time (client.upload_file)", PHOTOS_PER_RUN, report.size(one_size),
             one_ok, report.ms(one_s), f"{PHOTOS_PER_RUN / one_s:.1f}", "x1"],
            [f"imgsvc upload --jobs {JOBS}", PHOTOS_PER_RUN, report.size(cmd_size),
             summary["created"], report.ms(cmd_s), f"{PHOTOS_PER_RUN / cmd_s:.1f}",
             report.times_faster(one_s, cmd_s)],
            ["rerun of the command", PHOTOS_PER_RUN, report.size(again["bytes_sent"]),
             again["created"], report.ms(rerun_s), f"{PHOTOS_PER_RUN / rerun_s:.1f}",
             report.times_faster(one_s, rerun_s)],
        ],
    )  # fmt: skip
    report.note(
        f"rerun: {again['files_sent']} files and {again['bytes_sent']} image bytes sent, "
        f"{added} upload records added (goal: 0); {again['duplicates']} answered by the "
        "lookup route. The command's time includes its interpreter start and hashing."
    )
    report.note(
        "The local stack runs one ingest at a time, so parallel sending overlaps only S3 "
        "POSTs and API calls with it; on AWS ingests run concurrently."
    )
    if code != 0 or rerun_code != 0 or summary["created"] != PHOTOS_PER_RUN:
        report.warning(f"the command exited {code}/{rerun_code}: {summary['created']} created")
        problem = True
    if again["bytes_sent"] or added:
        report.warning("the rerun sent image bytes")
        problem = True
    if one_ok != PHOTOS_PER_RUN:
        report.warning(f"one-at-a-time: {one_ok} of {PHOTOS_PER_RUN} done")
        problem = True
    return problem
