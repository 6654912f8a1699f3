"""HEIC/HEIF and AVIF in, animations counted, hashes of the displayed picture."""

from __future__ import annotations

import contextlib
import io
import json
import random
import struct
from pathlib import Path
from typing import Any

import imagehash
import pytest
from PIL import Image, ImageOps

from imgsvc import isobmff
from imgsvc.errors import InvalidImage
from imgsvc.imaging import ImageInfo, crop_image, inspect_image, probe
from imgsvc.phash_index import hamming

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
MANIFEST = {e["file"]: e for e in json.loads((PHOTOS / "manifest.json").read_text())}
PHONE = sorted(n for n, e in MANIFEST.items() if e.get("format") in ("HEIF", "AVIF"))
LIMITS = {"max_pixels": 100_000_000, "max_bytes": 25 * 1024 * 1024}


def read(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def chunks(data: bytes, size: int = 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_the_corpus_holds_real_and_made_phone_files() -> None:
    assert {"nokia_hdr_phone.heif", "chelsea_iphone_rot6.heic", "coffee_pixel_rot6.avif"} <= set(
        PHONE
    )
    assert {MANIFEST[n]["format"] for n in PHONE} == {"HEIF", "AVIF"}


@pytest.mark.parametrize("name", PHONE)
def test_metadata_is_as_complete_as_for_jpeg(name: str) -> None:
    entry = MANIFEST[name]
    meta, image = inspect_image(read(name), **LIMITS)
    assert (meta.format, meta.width, meta.height, meta.mode) == (
        entry["format"],
        entry["width"],
        entry["height"],
        entry["mode"],
    )
    assert (meta.make, meta.model) == (entry["make"], entry["model"])
    assert meta.orientation == entry["orientation"]
    assert meta.sha256 == entry["sha256"] and meta.sha1 == entry["sha1"]
    if entry["datetime_original"]:
        assert meta.taken_at == entry["datetime_original"].replace(":", "-", 2).replace(" ", "T")
    assert (meta.animated, meta.frames) == (False, 1)
    # The hash is of the picture as displayed, as imagehash computes it.
    assert meta.phash == str(imagehash.phash(ImageOps.exif_transpose(image)))


def test_heic_rotation_is_applied_once_by_libheif() -> None:
    # Stored sideways (300x451 coded) with irot; EXIF said 6. libheif shows it upright and
    # resets the EXIF tag to 1: the service reports what is left to apply, nothing.
    meta, _ = inspect_image(read("chelsea_iphone_rot6.heic"), **LIMITS)
    assert (meta.width, meta.height) == (451, 300)
    assert meta.orientation == 1
    assert (meta.display_width, meta.display_height) == (451, 300)
    upright, _ = inspect_image(read("chelsea_canon.jpg"), **LIMITS)
    assert (upright.display_width, upright.display_height) == (451, 300)
    assert hamming(meta.phash, upright.phash) <= 4  # HEVC vs JPEG noise, same picture


def test_avif_rotation_is_reported_as_orientation_and_hashed_upright() -> None:
    # Pillow decodes AVIF as stored and turns irot into EXIF Orientation: applied by us, once.
    sideways, _ = inspect_image(read("coffee_pixel_rot6.avif"), **LIMITS)
    assert (sideways.width, sideways.height, sideways.orientation) == (600, 400, 6)
    assert (sideways.display_width, sideways.display_height) == (400, 600)
    upright, _ = inspect_image(read("coffee_samsung.heif"), **LIMITS)
    jpeg, _ = inspect_image(read("coffee_iphone_rot6.jpg"), **LIMITS)
    assert hamming(sideways.phash, upright.phash) <= 4
    assert hamming(sideways.phash, jpeg.phash) <= 4


@pytest.mark.parametrize("name", PHONE)
def test_analyze_reads_only_the_header(name: str) -> None:
    data = read(name)
    entry = MANIFEST[name]
    info, consumed = probe(chunks(data))
    assert info == ImageInfo(entry["format"], entry["width"], entry["height"], entry["mode"])
    assert consumed <= 4096


def test_header_after_the_pixels_needs_the_whole_file_but_still_works() -> None:
    """A file with mdat before meta: the header parser gives up, the decoder decides."""
    data = read("horse_alpha.avif")
    ftyp_size = struct.unpack(">I", data[:4])[0]
    boxes, pos = [], ftyp_size
    while pos < len(data):
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        boxes.append(data[pos : pos + size])
        pos += size
    kinds = [b[4:8] for b in boxes]
    assert b"meta" in kinds and b"mdat" in kinds
    # Moving mdat first changes its offset: the item locations (iloc) would be wrong, so
    # the decoder may refuse it; either way the answer is a verdict, never a crash.
    reordered = data[:ftyp_size] + b"".join(sorted(boxes, key=lambda b: b[4:8] != b"mdat"))
    with pytest.raises(isobmff.Malformed):
        isobmff.parse(reordered)
    try:
        info, _ = probe(chunks(reordered))
    except InvalidImage:
        pass
    else:
        assert info.format == "AVIF"


def test_a_cut_header_asks_for_more_then_says_truncated() -> None:
    data = read("chelsea_iphone_rot6.heic")
    with pytest.raises(isobmff.NeedMore):
        isobmff.parse(data[:200])
    with pytest.raises(InvalidImage, match="truncated"):
        probe([data[:200]])


@pytest.mark.parametrize("name", ["chelsea_iphone_rot6.heic", "horse_alpha.avif"])
def test_damaged_headers_get_a_verdict_never_a_crash(name: str) -> None:
    data = read(name)
    rng = random.Random(8)
    for _ in range(150):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            damaged[rng.randrange(8, 1200)] = rng.randrange(256)
        damaged = bytes(damaged[: rng.choice([len(damaged), rng.randrange(16, 1500)])])
        for attempt in (
            lambda d=damaged: probe(chunks(d)),
            lambda d=damaged: inspect_image(d, **LIMITS),
        ):
            with contextlib.suppress(InvalidImage):  # a verdict; anything else fails
                attempt()


@pytest.mark.parametrize("name", PHONE)
def test_crop_of_heif_is_jpeg_and_avif_stays_avif(name: str) -> None:
    data = read(name)
    meta, _ = inspect_image(data, **LIMITS)
    out, fmt = crop_image(
        data,
        (0, 0, meta.display_width // 2, meta.display_height // 2),
        **{"max_pixels": LIMITS["max_pixels"]},
    )
    assert fmt == ("JPEG" if meta.format == "HEIF" else "AVIF")
    cropped, _ = inspect_image(out, **LIMITS)
    assert cropped.format == fmt
    assert (cropped.display_width, cropped.display_height) == (
        meta.display_width // 2,
        meta.display_height // 2,
    )
    assert cropped.make == meta.make  # camera EXIF travels with the crop


# --------------------------------------------------------------------------- animations


def _animation(fmt: str, frames: int, size: tuple[int, int] = (64, 48)) -> bytes:
    images = [Image.new("RGB", size, (i * 40 % 256, 80, 160)) for i in range(frames)]
    out = io.BytesIO()
    params: dict[str, Any] = {"save_all": True, "append_images": images[1:], "duration": 50}
    if fmt == "GIF":
        params["optimize"] = False
    images[0].save(out, fmt, **params)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "AVIF"])
def test_animations_report_their_frames_and_use_the_first(fmt: str) -> None:
    data = _animation(fmt, 5)
    meta, _ = inspect_image(data, **LIMITS)
    assert (meta.format, meta.animated, meta.frames) == (fmt, True, 5)
    first = Image.open(io.BytesIO(data))
    first.seek(0)
    assert meta.phash == str(imagehash.phash(first.convert("RGB")))
    still, _ = inspect_image(_animation(fmt, 1), **LIMITS)
    assert (still.animated, still.frames) == (False, 1)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_analyze_flags_animation_where_the_header_says(fmt: str) -> None:
    info, _ = probe(chunks(_animation(fmt, 4)))
    assert info.animated is True
    assert info.frames == (4 if fmt == "PNG" else None)  # WebP flags, does not count


def test_frames_times_pixels_is_capped() -> None:
    data = _animation("GIF", 30, (100, 100))  # 300,000 frame pixels
    meta, _ = inspect_image(data, max_pixels=1_000_000, max_bytes=LIMITS["max_bytes"])
    assert meta.frames == 30
    with pytest.raises(InvalidImage, match="30 frames of 100x100") as caught:
        inspect_image(data, max_pixels=20_000, max_bytes=LIMITS["max_bytes"])
    assert caught.value.status_code == 422
