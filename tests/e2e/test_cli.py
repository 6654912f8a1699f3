"""The ``imgsvc`` command and its client over a local stack of their own (``rm --all`` runs)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imgsvc_client import ApiError, Client
from imgsvc_client.cli import cli
from imgsvc_client.uploader import Journal
from tests.conftest import PHOTOS

pytestmark = pytest.mark.e2e


def sha(name: str) -> str:
    return hashlib.sha256((PHOTOS / name).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def own_stack(stack_factory):
    return stack_factory()


@pytest.fixture(scope="module")
def client(own_stack) -> Client:
    return Client(own_stack.api_url, own_stack.api_key)


@pytest.fixture
def run(own_stack, tmp_path):
    """``run(*args, input=None)`` -> (exit code, stdout, stderr) of the command, in-process."""
    env = {"IMGSVC_API": own_stack.api_url, "IMGSVC_API_KEY": own_stack.api_key}

    def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
        try:
            runner = CliRunner(mix_stderr=False)  # click 8.1
        except TypeError:  # click 8.2 keeps stderr apart by itself
            runner = CliRunner()
        result = runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def upload_file_items(stack) -> int:
    """Upload file records in the table: one per file ever sent through a presigned POST."""
    pages = stack.dynamodb.get_paginator("scan").paginate(
        TableName=stack.table_name,
        FilterExpression="begins_with(SK, :f)",
        ExpressionAttributeValues={":f": {"S": "FILE#"}},
        Select="COUNT",
    )
    return sum(page["Count"] for page in pages)


def test_lookup_route(client):
    stored = client.upload_file(PHOTOS / "gravel.gif")
    assert stored["status"] == "done"
    absent = hashlib.sha256(b"absent").hexdigest()
    assert client.lookup([absent, sha("gravel.gif")]) == {sha("gravel.gif")}
    with pytest.raises(ApiError) as caught:
        client.lookup(["NOT-HEX"])
    assert caught.value.code == "bad_request" and caught.value.status == 400


def test_upload_folder_and_zip_then_rerun_sends_nothing(run, own_stack, client, tmp_path):
    folder = tmp_path / "DCIM"
    (folder / "100APPLE").mkdir(parents=True)
    (folder / "101APPLE").mkdir()
    shutil.copy(PHOTOS / "astronaut_nikon.jpg", folder / "100APPLE" / "IMG_0001.JPG")
    shutil.copy(PHOTOS / "chelsea_canon.jpg", folder / "101APPLE" / "IMG_0001.JPG")
    (folder / ".DS_Store").write_bytes(b"junk")
    archive = tmp_path / "trip.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(PHOTOS / "horse_rgba.png", "deep/er/still/horse.png")
        zf.write(PHOTOS / "astronaut_nikon.jpg", "copy-of-astronaut.jpg")  # a duplicate
        zf.write(PHOTOS / "bad_truncated.jpg", "broken.jpg")
        zf.writestr("notes.txt", "not an image")
        zf.writestr("__MACOSX/deep/._horse.png", b"resource fork")
        zf.writestr("../escape.jpg", (PHOTOS / "clock.bmp").read_bytes())
    journal = tmp_path / "journal.json"

    code, stdout, _ = run("upload", str(folder), str(archive), "--jobs", "3", "--json",
                          "--journal", str(journal))  # fmt: skip
    summary = json.loads(stdout)
    assert code == 1  # something was rejected
    files = {f["label"].rsplit("/", 1)[-1]: f for f in summary["files"]}
    assert (summary["created"], summary["duplicates"], summary["rejected"]) == (3, 1, 3)
    assert summary["files_sent"] == 4  # the three new images and the broken one
    assert files["trip.zip!copy-of-astronaut.jpg"]["status"] == "duplicate"
    assert "truncated" in files["trip.zip!broken.jpg"]["reason"]
    assert "not an image type" in files["trip.zip!notes.txt"]["reason"]
    assert "escapes" in files["escape.jpg"]["reason"]
    assert not any("__MACOSX" in f["label"] or ".DS_Store" in f["label"] for f in summary["files"])
    names = {f["name"] for f in summary["files"] if f["status"] == "created"}
    assert names == {
        "100APPLE__IMG_0001.JPG",
        "101APPLE__IMG_0001.JPG",
        "deep__er__still__horse.png",
    }
    for photo in ("astronaut_nikon.jpg", "chelsea_canon.jpg", "horse_rgba.png"):
        assert client.get_image(sha(photo))["sha256"] == sha(photo)

    sent_before = upload_file_items(own_stack)
    code, stdout, _ = run("upload", str(folder), str(archive), "--json", "--journal", str(journal))
    again = json.loads(stdout)
    assert code == 1  # the broken file is still reported as rejected
    assert (again["files_sent"], again["bytes_sent"], again["created"]) == (0, 0, 0)
    assert again["duplicates"] == 4 and again["rejected"] == 3
    assert upload_file_items(own_stack) == sent_before  # the service saw no upload at all


def test_upload_human_output_and_success_exit(run, tmp_path):
    shutil.copy(PHOTOS / "brick.webp", tmp_path / "brick.webp")
    code, stdout, _ = run("upload", str(tmp_path / "brick.webp"), "--journal",
                          str(tmp_path / "j.json"))  # fmt: skip
    assert code == 0
    assert "created 1, duplicates 0, rejected 0, failed 0" in stdout


def test_resume_from_a_journal_left_mid_run(run, own_stack, client, tmp_path):
    folder = tmp_path / "resume"
    folder.mkdir()
    for name in ("coins.tiff", "camera_gray.png", "motorcycle_left.jpg", "bad_truncated.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    # A run that sent two files and died before their verdicts, and one whose session is gone.
    journal = Journal(tmp_path / "journal.json")
    specs = [
        {"filename": "coins.tiff", "content_type": "image/tiff"},
        {"filename": "bad_truncated.jpg", "content_type": "image/jpeg"},
    ]
    session = client.create_upload(specs)
    for post, spec in zip(session["files"], specs, strict=True):
        client.post_file(post, folder / spec["filename"], content_type=spec["content_type"])
        journal.mark_sent(sha(spec["filename"]), session["upload_id"], spec["filename"])
    gone = "00000000-0000-4000-8000-000000000000"
    journal.mark_sent(sha("camera_gray.png"), gone, "camera_gray.png")
    before = upload_file_items(own_stack)

    code, stdout, _ = run("upload", str(folder), "--json", "--journal", str(journal.path))
    summary = json.loads(stdout)
    files = {f["name"]: f for f in summary["files"]}
    assert code == 1  # the broken file
    # The broken file is not in the library: only the journal knows it was sent.
    assert files["bad_truncated.jpg"]["status"] == "rejected"
    assert "truncated" in files["bad_truncated.jpg"]["reason"]
    # coins.tiff: the library has it by now, or the journal's session reports it.
    assert files["coins.tiff"]["status"] in ("created", "duplicate")
    assert files["camera_gray.png"]["status"] == files["motorcycle_left.jpg"]["status"] == "created"
    assert summary["files_sent"] == 2  # neither journalled file was sent again
    assert upload_file_items(own_stack) == before + 2
    assert json.loads(journal.path.read_text())["sent"] == {}


def test_every_other_command_in_both_modes(run, client, photo_server, tmp_path):
    # b is a's upright twin as displayed (hashes are of the displayed picture), in HEIF.
    for name in ("chelsea_pixel.jpg", "coffee_iphone_rot6.jpg", "coffee_samsung.heif"):
        assert client.upload_file(PHOTOS / name)["status"] == "done"
    a, b = sha("coffee_iphone_rot6.jpg"), sha("coffee_samsung.heif")

    def both(*args: str) -> tuple[Any, str]:
        code, human, errors = run(*args)
        assert code == 0, (args, human, errors)
        code, raw, errors = run(*args, "--json")
        assert code == 0, (args, raw, errors)
        return json.loads(raw), human

    data, human = both("status")
    assert data["limits"]["max_files_per_request"] == 50 and "max_upload_bytes" in human
    data, human = both("ls", "--limit", "2")
    assert data["count"] == 2 and data["next_cursor"] and "more: imgsvc ls --cursor" in human
    data, _ = both("ls", "--all")
    assert {a, b, sha("chelsea_pixel.jpg")} <= {i["image_id"] for i in data["images"]}
    data, human = both("get", a)
    # A presigned upload is named after its file (the web app shows and downloads that name).
    assert data["image_id"] == a and data["name"] == "coffee_iphone_rot6.jpg" and a[:40] in human
    data, human = both("download", a, "--to", str(tmp_path / "one"))
    assert (tmp_path / "one" / f"{a}.jpg").read_bytes() == (
        PHOTOS / "coffee_iphone_rot6.jpg"
    ).read_bytes()
    data, _ = both("download", "--all", "--to", str(tmp_path / "all"))
    assert data["count"] == len(list((tmp_path / "all").iterdir())) >= 3
    url = photo_server.url("gravel.gif")
    data, human = both("analyze", url)
    assert data["result"]["format"] == "GIF" and "GIF" in human
    data, human = both("history")
    assert url in data["cached_items"] and url in human
    data, human = both("import", photo_server.url("clock.bmp"), "--name", "clock")
    assert data["image_id"] == sha("clock.bmp") and "BMP" in human
    data, human = both("crop", a, "10", "10", "110", "60")
    assert data["derived_from"] == a and (data["width"], data["height"]) == (100, 50)
    data, human = both("diff", a, b, "--threshold", "10")
    assert data["similar"] is True and "similar" in human
    data, human = both("similar", a, "--max-distance", "8")
    assert b in {m["image_id"] for m in data["results"]} and b[:12] in human
    data, human = both("ascii", a, "--width", "30")
    assert data["width"] == 30 and max(len(line) for line in human.splitlines()) == 30
    data, human = both("stats")
    assert data["total_images"] >= 4 and "uploads per day" in human and "JPEG" in human
    code, human, _ = run("rm", a)
    assert code == 0 and a in human
    code, raw, _ = run("rm", b, "--json")
    assert code == 0 and json.loads(raw) == {"status": "deleted", "image_id": b}


def test_rm_all_asks_first(run, client):
    client.upload_file(PHOTOS / "reconyx_trailcam.jpg")
    code, _, _ = run("rm", "--all", input="n\n")
    assert code != 0 and client.list_images(1)["count"] == 1
    code, stdout, _ = run("rm", "--all", input="y\n")
    assert code == 0 and "deleted 1" in stdout and client.list_images(1)["count"] == 0
    client.upload_file(PHOTOS / "reconyx_trailcam.jpg")
    code, stdout, _ = run("rm", "--all", "--json", "--yes")
    assert code == 0 and json.loads(stdout)["deleted"] >= 1
    assert client.list_images(1)["count"] == 0


def test_api_errors_in_words_and_as_json(run):
    missing = "0" * 64
    code, _, stderr = run("get", missing)
    assert code == 1 and "not_found" in stderr and missing in stderr
    code, stdout, _ = run("get", "nope", "--json")
    assert code == 1 and json.loads(stdout)["code"] == "bad_request"


def test_finds_the_local_stack_by_its_ready_file(own_stack, tmp_path):
    (tmp_path / ".local-stack").mkdir()
    shutil.copy(own_stack.ready_file, tmp_path / ".local-stack" / "ready.json")
    (tmp_path / "sub").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSVC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "client")
    command = [sys.executable, "-m", "imgsvc_client.cli", "ls", "--json", "--limit", "1"]
    done = subprocess.run(command, cwd=tmp_path / "sub", env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "images" in json.loads(done.stdout)
    nowhere = subprocess.run(command, cwd=tmp_path.parent, env=env, capture_output=True,
                             timeout=60)  # fmt: skip
    assert nowhere.returncode == 2 and b"make local" in nowhere.stderr


def test_ctrl_c_mid_run_then_the_rerun_sends_only_the_rest(own_stack, client, tmp_path):
    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(20):
        Image.effect_noise((48, 32), 40 + n).convert("RGB").save(folder / f"noise{n:02d}.png")
    journal = tmp_path / "journal.json"
    env = {**os.environ, "IMGSVC_API": own_stack.api_url, "IMGSVC_API_KEY": own_stack.api_key}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "client")
    command = [sys.executable, "-m", "imgsvc_client.cli", "upload", str(folder), "--jobs", "1",
               "--json", "--journal", str(journal)]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (journal.exists() and json.loads(journal.read_text())["sent"]):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and b"the next run resumes" in stderr
    ids = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in folder.iterdir()}
    sent_before = set(json.loads(journal.read_text())["sent"]) | client.lookup(list(ids))
    assert sent_before  # the first run got some way

    done = subprocess.run(command, env=env, capture_output=True, timeout=300)
    summary = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert summary["files_sent"] == 20 - len(sent_before)  # nothing sent twice
    assert client.lookup(list(ids)) == set(ids)
