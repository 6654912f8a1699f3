"""imgsvc.imaging against the shared test photos (tests/data/photos, see its README)."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from imgsvc import imaging
from imgsvc.errors import BadRequest, InvalidImage, PayloadTooLarge
from imgsvc.imaging import (
    ASCII_MAX_ROWS,
    ASCII_RAMP,
    ImageInfo,
    ascii_art,
    crop_image,
    inspect_image,
    probe,
)

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
MANIFEST: list[dict[str, Any]] = json.loads((PHOTOS / "manifest.json").read_text())
BY_FILE = {entry["file"]: entry for entry in MANIFEST}
GOOD = [entry for entry in MANIFEST if not entry["file"].startswith("bad_")]
GOOD_IDS = [entry["file"] for entry in GOOD]

MAX_PIXELS = 100_000_000
MAX_BYTES = 25 * 1024 * 1024
DARKEST, LIGHTEST = ASCII_RAMP[0], ASCII_RAMP[-1]


def read(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def inspect(data: bytes, **limits: int) -> tuple[imaging.ImageMetadata, Image.Image]:
    limits.setdefault("max_pixels", MAX_PIXELS)
    limits.setdefault("max_bytes", MAX_BYTES)
    return inspect_image(data, **limits)


def crop(data: bytes, box: Any) -> bytes:
    return crop_image(data, box, max_pixels=MAX_PIXELS)[0]


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def chunked(data: bytes, size: int, pulled: list[int] | None = None) -> Iterator[bytes]:
    """Yield ``data`` in ``size`` chunks, appending each chunk's length to ``pulled``."""
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        if pulled is not None:
            pulled.append(len(chunk))
        yield chunk


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    np = pytest.importorskip("numpy")
    assert a.size == b.size
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


def noise_image(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(seed)
    bands = len(mode)
    pixels = rng.integers(0, 256, (size[1], size[0], bands), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def exif_with(**tags: Any) -> Image.Exif:
    exif = Image.Exif()
    names = {"make": 271, "model": 272, "orientation": 274}
    for name, value in tags.items():
        if name == "taken":
            exif.get_ifd(0x8769)[36867] = value
        else:
            exif[names[name]] = value
    return exif


# --------------------------------------------------------------------------- inspect_image


@pytest.mark.parametrize("entry", GOOD, ids=GOOD_IDS)
def test_inspect_matches_manifest(entry: dict[str, Any]) -> None:
    meta, image = inspect(read(entry["file"]))

    for field in ("format", "width", "height", "mode", "make", "model", "orientation"):
        assert getattr(meta, field) == entry[field], field
    for field in ("bytes", "sha256", "sha1"):
        assert getattr(meta, field) == entry[field], field
    taken = entry["datetime_original"]
    expected_taken = datetime.strptime(taken, "%Y:%m:%d %H:%M:%S").isoformat() if taken else None
    assert meta.taken_at == expected_taken
    swapped = entry["orientation"] in (5, 6, 7, 8)
    expected_display = (
        (entry["height"], entry["width"]) if swapped else (entry["width"], entry["height"])
    )
    assert (meta.display_width, meta.display_height) == expected_display
    if entry["make"] and entry["model"]:
        assert meta.camera == f"{entry['make']} - {entry['model']}"
    else:
        assert meta.camera == (entry["make"] or entry["model"])
    # The decoded image comes back as stored, decoded already.
    assert image.size == (entry["width"], entry["height"])
    assert image.mode == entry["mode"]
    assert image.getpixel((0, 0)) is not None
    as_dict = meta.to_dict()
    assert as_dict["sha256"] == entry["sha256"]
    assert as_dict["display_width"] == expected_display[0]
    assert len(as_dict["phash"]) == 16


@pytest.mark.parametrize("entry", GOOD, ids=GOOD_IDS)
def test_inspect_phash_is_imagehash_phash_of_the_displayed_picture(
    entry: dict[str, Any],
) -> None:
    import imagehash  # its phash needs scipy.fftpack: a dev requirement, never skipped

    meta, _ = inspect(read(entry["file"]))
    with Image.open(PHOTOS / entry["file"]) as image:
        assert meta.phash == str(imagehash.phash(ImageOps.exif_transpose(image)))


def _sideways(upright: Image.Image, fmt: str) -> bytes:
    """The picture stored rotated, with the EXIF Orientation (6) that shows it upright."""
    exif = Image.Exif()
    exif[274] = 6
    out = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(out, fmt, exif=exif)
    return out.getvalue()


def _plain_bytes(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_sideways_copy_with_orientation_tag_hashes_as_its_upright_twin() -> None:
    with Image.open(PHOTOS / "chelsea_canon.jpg") as photo:
        upright = photo.convert("RGB")
    # Lossless: the very same pixels once rotated back, so exactly the same hash.
    plain, _ = inspect(_plain_bytes(upright, "PNG"))
    sideways, _ = inspect(_sideways(upright, "PNG"))
    assert sideways.orientation == 6
    assert (sideways.width, sideways.height) == (upright.height, upright.width)
    assert sideways.phash == plain.phash
    # JPEG: re-encoding noise only.
    plain_jpeg, _ = inspect(_plain_bytes(upright, "JPEG"))
    sideways_jpeg, _ = inspect(_sideways(upright, "JPEG"))
    distance = bin(int(plain_jpeg.phash, 16) ^ int(sideways_jpeg.phash, 16)).count("1")
    assert distance <= 2
    # Without the tag the stored pixels are another picture: the hash sees that.
    rotated_untagged, _ = inspect(_plain_bytes(upright.transpose(Image.Transpose.ROTATE_90), "PNG"))
    assert bin(int(rotated_untagged.phash, 16) ^ int(plain.phash, 16)).count("1") > 10


def test_rotated_photo_is_displayed_portrait() -> None:
    meta, image = inspect(read("coffee_iphone_rot6.jpg"))
    assert (meta.width, meta.height) == (600, 400)
    assert meta.orientation == 6
    assert (meta.display_width, meta.display_height) == (400, 600)
    assert image.size == (600, 400)  # not rotated: phash and callers see it as stored


def test_padded_make_and_model_are_stripped() -> None:
    with Image.open(PHOTOS / "coffee_sony_padded.jpg") as raw:
        assert raw.getexif()[271] != "SONY"  # the file really is padded
    meta, _ = inspect(read("coffee_sony_padded.jpg"))
    assert (meta.make, meta.model, meta.camera) == ("SONY", "ILCE-7M2", "SONY - ILCE-7M2")


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        (b"Caf\xc3\xa9 Cam", "X1", ("Café Cam", "X1", "Café Cam - X1")),  # UTF-8 bytes
        ("  Pad\x00\x00", "\x00 Mod \x00junk", ("Pad", "Mod", "Pad - Mod")),  # NULs, padding
        ("A\tB\x01C", None, ("A B C", None, "A B C")),  # controls; make alone is the camera
        (None, "M" * 100, (None, "M" * 64, "M" * 64)),  # capped; model alone is the camera
        ("   ", "\x00\x00", (None, None, None)),  # blank is absent
    ],
)
def test_exif_text_is_cleaned(make: Any, model: Any, expected: tuple[Any, ...]) -> None:
    tags = {k: v for k, v in (("make", make), ("model", model)) if v is not None}
    data = encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif_with(**tags))
    meta, _ = inspect(data)
    assert (meta.make, meta.model, meta.camera) == expected
    for value in (meta.make, meta.model, meta.camera):
        if value is not None:
            value.encode("utf-8")  # valid UTF-8 (no surrogates)


@pytest.mark.parametrize("taken", ["0000:00:00 00:00:00", "    :  :     ", "yesterday"])
def test_invalid_date_taken_is_none(taken: str) -> None:
    data = encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif_with(taken=taken, make="Cam"))
    meta, _ = inspect(data)
    assert meta.taken_at is None
    assert meta.make == "Cam"


def test_out_of_range_orientation_is_none_and_not_applied() -> None:
    data = encode(Image.new("RGB", (30, 20)), "JPEG", exif=exif_with(orientation=9))
    meta, _ = inspect(data)
    assert meta.orientation is None
    assert (meta.display_width, meta.display_height) == (30, 20)


@pytest.mark.parametrize(
    ("name", "max_pixels", "fragments"),
    [
        ("bad_empty.jpg", MAX_PIXELS, ["the file is empty"]),
        ("bad_not_an_image.jpg", MAX_PIXELS, ["not an image", "allowed formats are"]),
        ("bad_truncated.jpg", MAX_PIXELS, ["truncated or corrupt", "upload the complete file"]),
        ("bad_bomb_12000.png", 100_000_000, ["12000x12000", "144,000,000", "100,000,000"]),
        ("bad_bomb_40000.png", MAX_PIXELS, ["40000x40000", "1,600,000,000"]),
    ],
)
def test_bad_files_are_invalid_with_a_specific_message(
    name: str, max_pixels: int, fragments: list[str]
) -> None:
    with pytest.raises(InvalidImage) as caught:
        inspect(read(name), max_pixels=max_pixels)
    assert caught.value.status_code == 422
    for fragment in fragments:
        assert fragment in caught.value.message


def test_bomb_is_probed_from_its_header_but_rejected_by_inspect() -> None:
    data = read("bad_bomb_12000.png")
    info, consumed = probe(chunked(data, 1024))
    assert info == ImageInfo("PNG", 12000, 12000, "L")
    assert consumed <= 1024
    with pytest.raises(InvalidImage, match="12000x12000"):
        inspect(data)


def test_pixel_limit_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self: Any) -> None:
        raise AssertionError("decoded pixels of an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for name in ("bad_bomb_12000.png", "bad_bomb_40000.png"):
        with pytest.raises(InvalidImage, match="more than the limit"):
            inspect(read(name))
    # Under Pillow's own bomb limits: only our check stands between the header and decoding.
    with pytest.raises(InvalidImage, match="more than the limit of 262,143 pixels"):
        inspect(read("camera_gray.png"), max_pixels=262_143)


def test_pixel_limit_is_the_setting() -> None:
    data = read("camera_gray.png")  # 512x512 = 262,144 pixels
    with pytest.raises(InvalidImage) as caught:
        inspect(data, max_pixels=262_143)
    assert "512x512" in caught.value.message and "262,143" in caught.value.message
    meta, _ = inspect(data, max_pixels=262_144)
    assert meta.width == 512


def test_pillow_bomb_limit_also_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's DecompressionBombWarning is an error for us even when our own limit is higher.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidImage, match="1,000 pixels"):
        inspect(read("chelsea_pixel.jpg"), max_pixels=10**9)


def test_pillow_bomb_warning_is_an_error_even_without_our_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The backstop: should the header check ever miss, Pillow's warning still refuses.
    monkeypatch.setattr(imaging.decode, "_check_pixels", lambda *args: None)
    with pytest.raises(InvalidImage, match="12000x12000"):
        inspect(read("bad_bomb_12000.png"), max_pixels=10**9)


def test_limits_and_warning_filters_are_left_alone() -> None:
    limit = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    for name in ("bad_bomb_12000.png", "bad_bomb_40000.png", "bad_truncated.jpg"):
        with pytest.raises(InvalidImage):
            inspect(read(name))
    inspect(read("chelsea_pixel.jpg"))
    assert limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


def _ico() -> bytes:
    return encode(Image.new("RGB", (32, 32), "red"), "ICO")


def _pcx() -> bytes:
    return encode(Image.new("RGB", (32, 32), "red"), "PCX")


UNSUPPORTED = {
    "ico": (_ico, "unsupported format ICO"),
    "pcx": (_pcx, "unsupported format PCX"),
    "svg": (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "jpeg2000": (lambda: encode(Image.new("RGB", (32, 32), "red"), "JPEG2000"), "JPEG2000"),
}


@pytest.mark.parametrize("kind", sorted(UNSUPPORTED))
def test_format_outside_the_allowlist_is_invalid(kind: str) -> None:
    make, fragment = UNSUPPORTED[kind]
    data = make()
    for attempt in (lambda: inspect(data), lambda: probe([data])):
        with pytest.raises(InvalidImage) as caught:
            attempt()
        assert fragment in caught.value.message
        assert (
            "allowed formats are AVIF, BMP, GIF, HEIF, JPEG, PNG, TIFF, WEBP"
            in caught.value.message
        )


def test_heif_header_without_pictures_is_invalid_not_an_error() -> None:
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    for attempt in (lambda: inspect(data), lambda: probe([data])):
        with pytest.raises(InvalidImage, match=r"truncated|corrupt"):
            attempt()


def test_over_max_bytes_is_payload_too_large() -> None:
    data = read("chelsea_pixel.jpg")
    with pytest.raises(PayloadTooLarge) as caught:
        inspect(data, max_bytes=len(data) - 1)
    assert caught.value.status_code == 413
    assert f"{len(data):,} bytes" in caught.value.message
    meta, _ = inspect(data, max_bytes=len(data))
    assert meta.bytes == len(data)


def test_multi_picture_jpeg_is_a_jpeg() -> None:
    first = noise_image((60, 40))
    data = encode(first, "MPO", save_all=True, append_images=[noise_image((60, 40), seed=1)])
    assert Image.open(io.BytesIO(data)).format == "MPO"  # what Pillow calls it
    meta, _ = inspect(data)
    assert (meta.format, meta.width, meta.height) == ("JPEG", 60, 40)
    assert probe(chunked(data, 1024)) == (ImageInfo("JPEG", 60, 40, "RGB"), 1024)


# --------------------------------------------------------------------------- probe

PROBED = [*GOOD, BY_FILE["bad_truncated.jpg"], BY_FILE["bad_bomb_12000.png"]]


@pytest.mark.parametrize("entry", PROBED, ids=[e["file"] for e in PROBED])
def test_probe_matches_manifest(entry: dict[str, Any]) -> None:
    info, consumed = probe(chunked(read(entry["file"]), 1024))
    assert info == ImageInfo(entry["format"], entry["width"], entry["height"], entry["mode"])
    assert info.to_dict() == {
        "format": entry["format"],
        "size": f"{entry['width']}x{entry['height']}",
        "width": entry["width"],
        "height": entry["height"],
        "mode": entry["mode"],
        # Only PNG counts its frames in the header (acTL); WebP flags an animation.
        "animated": False if entry["format"] in ("PNG", "WEBP") else None,
        "frames": 1 if entry["format"] == "PNG" else None,
    }
    assert consumed <= 4096
    assert consumed < entry["bytes"]


@pytest.mark.parametrize("entry", GOOD, ids=GOOD_IDS)
def test_probe_byte_by_byte_waits_for_the_whole_header(entry: dict[str, Any]) -> None:
    # Every prefix length is tried: a header parsed from too short a prefix would show here
    # (a BMP whose palette is cut off parses as "P" instead of "L").
    data = read(entry["file"])
    info, consumed = probe(chunked(data, 1))
    assert info == ImageInfo(entry["format"], entry["width"], entry["height"], entry["mode"])
    assert consumed < len(data)


def test_probe_of_a_large_jpeg_reads_only_its_header() -> None:
    data = read("reconyx_trailcam.jpg")
    assert len(data) == BY_FILE["reconyx_trailcam.jpg"]["bytes"] > 400_000
    pulled: list[int] = []
    info, consumed = probe(chunked(data, 1024, pulled))
    assert (info.width, info.height) == (2048, 1536)
    assert consumed <= 4 * 1024  # the first few KB of 416 KB
    assert consumed * 100 < len(data)
    assert sum(pulled) == consumed  # no chunk pulled after the header was known


def test_probe_waits_for_the_complete_bmp_palette() -> None:
    info, consumed = probe(chunked(read("clock.bmp"), 1))
    assert info.mode == "L"
    assert consumed >= 14 + 40 + 256 * 4  # file header, info header, palette


def test_probe_of_a_big_bomb_reports_its_size() -> None:
    info, consumed = probe(chunked(read("bad_bomb_40000.png"), 1024))
    assert info == ImageInfo("PNG", 40000, 40000, "L")
    assert consumed == 1024


@pytest.mark.parametrize(
    ("variant", "params"),
    [
        ("lossy", {"quality": 90}),
        ("lossy-alpha", {"quality": 90}),
        ("lossless", {"lossless": True}),
        ("lossless-alpha", {"lossless": True}),
        ("animated", {"save_all": True}),
    ],
)
def test_probe_webp_reads_only_its_first_chunk_header(variant: str, params: dict[str, Any]) -> None:
    image = noise_image((300, 200), "RGBA" if "alpha" in variant else "RGB")
    if "alpha" in variant:
        image.putalpha(Image.new("L", image.size, 128))
    if variant == "animated":
        params = {**params, "append_images": [image.transpose(Image.Transpose.ROTATE_180)]}
    data = encode(image, "WEBP", **params)
    with Image.open(io.BytesIO(data)) as pillow:
        expected = ImageInfo("WEBP", *pillow.size, pillow.mode)
    assert expected.mode == ("RGBA" if "alpha" in variant else "RGB")
    info, consumed = probe(chunked(data, 1024))
    assert info == expected
    assert consumed == 1024 < len(data) // 10


def test_probe_of_an_empty_stream() -> None:
    with pytest.raises(InvalidImage, match="the file is empty"):
        probe(iter([b"", b""]))


def test_probe_of_a_stream_ending_inside_the_header() -> None:
    data = read("astronaut_nikon.jpg")[:300]  # the JPEG header runs to about 760 bytes
    with pytest.raises(InvalidImage, match="truncated"):
        probe(chunked(data, 64))


def test_probe_of_text() -> None:
    with pytest.raises(InvalidImage, match="not an image"):
        probe(chunked(read("bad_not_an_image.jpg"), 8))


# --------------------------------------------------------------------------- crop_image


def test_crop_of_a_rotated_photo_uses_display_coordinates() -> None:
    data = read("coffee_iphone_rot6.jpg")
    box = (50, 100, 350, 500)  # fits the 400x600 display, not the 600x400 storage
    result = opened(crop(data, box))
    assert result.format == "JPEG"
    assert result.size == (300, 400)
    exif = result.getexif()
    assert exif.get(274) in (None, 1)  # upright, nothing left for a viewer to rotate
    assert (exif.get(271), exif.get(272)) == ("Apple", "iPhone 12 Pro")
    assert exif.get_ifd(0x8769).get(36867) == "2024:05:06 08:00:00"
    with Image.open(PHOTOS / "coffee_iphone_rot6.jpg") as original:
        expected = ImageOps.exif_transpose(original).crop(box)
        unrotated = original.crop((50, 0, 350, 400))  # same size, wrong orientation
    assert mean_abs_diff(result, expected) < 2.5
    assert mean_abs_diff(result, unrotated) > 20


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 600, 400),  # the stored size: too wide as displayed
        (10, 10, 10, 20),
        (20, 10, 10, 30),
        (0, 30, 10, 20),
        (-1, 0, 10, 10),
        (0, 0, 401, 10),
        (0, 0, 10, 601),
    ],
)
def test_crop_box_out_of_range_names_the_range(box: tuple[int, int, int, int]) -> None:
    with pytest.raises(BadRequest) as caught:
        crop(read("coffee_iphone_rot6.jpg"), box)
    assert caught.value.status_code == 400
    assert "0 <= left < right <= 400 and 0 <= top < bottom <= 600" in caught.value.message


@pytest.mark.parametrize(
    "box", [(0, 0, 10), (0, 0, 10.0, 10), (0, True, 10, 10), "0,0,10,10", None, (0, 0, "9", 9)]
)
def test_crop_box_must_be_four_integers(box: Any) -> None:
    with pytest.raises(BadRequest, match="four integers"):
        crop(read("chelsea_pixel.jpg"), box)


@pytest.mark.parametrize("entry", GOOD, ids=GOOD_IDS)
def test_crop_keeps_the_format(entry: dict[str, Any]) -> None:
    data = read(entry["file"])
    meta, _ = inspect(data)
    w, h = meta.display_width, meta.display_height
    box = (w // 4, h // 5, w // 4 + w // 2, h // 5 + h // 2)
    out, fmt = crop_image(data, box, max_pixels=MAX_PIXELS)
    assert out != data
    result = opened(out)
    # HEIF has no encoder here: its crops are JPEG (without alpha), and say so.
    expected_format = "JPEG" if entry["format"] == "HEIF" else entry["format"]
    assert result.format == fmt == expected_format
    assert result.size == (box[2] - box[0], box[3] - box[1])
    with Image.open(PHOTOS / entry["file"]) as original:
        expected = ImageOps.exif_transpose(original).crop(box)
    opaque = expected.mode == "RGBA" and expected.getextrema()[3] == (255, 255)
    # JPEG has no alpha; libavif leaves out an alpha plane that is opaque everywhere.
    dropped = entry["format"] == "HEIF" or (entry["format"] == "AVIF" and opaque)
    assert result.mode == ("RGB" if dropped and entry["mode"] == "RGBA" else entry["mode"])
    lossy = entry["format"] in ("JPEG", "HEIF", "AVIF") or (
        entry["format"] == "WEBP" and b"VP8L" not in data[:64]
    )
    if entry["format"] == "HEIF" and entry["mode"] == "RGBA":
        assert result.getpixel((0, 0)) == (255, 255, 255) or expected.getpixel((0, 0))[3] > 0
    elif lossy:
        assert mean_abs_diff(result.convert("RGB"), expected.convert("RGB")) < 2.5
    else:
        assert result.tobytes() == expected.tobytes()


def test_crop_png_rgba_keeps_alpha() -> None:
    box = (0, 0, 200, 164)
    result = opened(crop(read("horse_rgba.png"), box))
    assert (result.format, result.mode, result.size) == ("PNG", "RGBA", (200, 164))
    with Image.open(PHOTOS / "horse_rgba.png") as original:
        expected = original.crop(box)
    alpha = result.getchannel("A")
    assert alpha.tobytes() == expected.getchannel("A").tobytes()
    assert alpha.getextrema()[0] < 255  # really see-through somewhere


def _palette_image() -> Image.Image:
    image = Image.new("P", (40, 30), 0)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [9] * (768 - 12))
    image.paste(1, (5, 5, 15, 15))
    image.paste(3, (20, 5, 35, 25))
    return image


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_crop_keeps_palette_and_transparency(fmt: str) -> None:
    data = encode(_palette_image(), fmt, transparency=0)
    source = opened(data)
    assert source.mode == "P" and source.info["transparency"] == 0
    box = (2, 2, 32, 27)
    result = opened(crop(data, box))
    assert (result.format, result.mode, result.size) == (fmt, "P", (30, 25))
    assert result.info.get("transparency") == source.info["transparency"]
    assert result.tobytes() == source.crop(box).tobytes()  # same palette indices
    assert result.convert("RGBA").tobytes() == source.crop(box).convert("RGBA").tobytes()


def test_crop_greyscale_gif_stays_greyscale() -> None:
    result = opened(crop(read("gravel.gif"), (0, 0, 100, 50)))
    assert (result.format, result.mode, result.size) == ("GIF", "L", (100, 50))


@pytest.mark.parametrize(
    ("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True}), ("WEBP", {"quality": 90})]
)
def test_crop_keeps_exif_and_drops_orientation(fmt: str, params: dict[str, Any]) -> None:
    image = noise_image((40, 30))
    exif = exif_with(make="Maker", model="Mod", orientation=6, taken="2020:01:02 03:04:05")
    exif.get_ifd(0x8769)[40962] = 40  # PixelXDimension
    data = encode(image, fmt, exif=exif, **params)
    result = opened(crop(data, (0, 0, 20, 10)))
    assert (result.format, result.size) == (fmt, (20, 10))
    out_exif = result.getexif()
    assert out_exif.get(274) in (None, 1)
    assert (out_exif.get(271), out_exif.get(272)) == ("Maker", "Mod")
    assert out_exif.get_ifd(0x8769).get(36867) == "2020:01:02 03:04:05"
    assert out_exif.get_ifd(0x8769).get(40962) == 20
    expected = image.transpose(Image.Transpose.ROTATE_270).crop((0, 0, 20, 10))
    if params.get("lossless") or fmt == "PNG":
        assert result.convert("RGB").tobytes() == expected.tobytes()


def test_crop_webp_keeps_alpha_and_losslessness() -> None:
    image = noise_image((40, 30), "RGBA")
    data = encode(image, "WEBP", lossless=True)
    out = crop(data, (5, 5, 25, 25))
    assert b"VP8L" in out[:64]
    result = opened(out)
    assert result.mode == "RGBA"
    assert result.tobytes() == opened(data).crop((5, 5, 25, 25)).tobytes()


def test_crop_tiff_keeps_compression_and_text_tags() -> None:
    image = noise_image((40, 30))
    data = encode(image, "TIFF", compression="tiff_lzw", tiffinfo={271: "TMake", 272: "TModel"})
    result = opened(crop(data, (4, 3, 24, 13)))
    assert (result.format, result.size) == ("TIFF", (20, 10))
    assert result.info["compression"] == "tiff_lzw"
    assert (result.getexif().get(271), result.getexif().get(272)) == ("TMake", "TModel")
    assert result.tobytes() == image.crop((4, 3, 24, 13)).tobytes()


def test_crop_jpeg_is_high_quality_444() -> None:
    data = read("motorcycle_left.jpg")
    box = (1, 1, 740, 499)
    result = opened(crop(data, box))
    assert JpegImagePlugin.get_sampling(result) == 0  # 4:4:4, no chroma subsampling
    with Image.open(PHOTOS / "motorcycle_left.jpg") as original:
        assert mean_abs_diff(result, original.crop(box)) < 1.5


def test_crop_of_the_whole_upright_image_is_refused() -> None:
    with pytest.raises(BadRequest, match="whole image"):
        crop(read("chelsea_pixel.jpg"), (0, 0, 300, 200))
    # A rotated photo's whole box still does something: it makes the pixels upright.
    result = opened(crop(read("coffee_iphone_rot6.jpg"), (0, 0, 400, 600)))
    assert result.size == (400, 600)


def test_crop_of_bad_data_is_invalid_image() -> None:
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        crop(read("bad_truncated.jpg"), (0, 0, 10, 10))
    with pytest.raises(InvalidImage, match="12000x12000"):
        crop(read("bad_bomb_12000.png"), (0, 0, 10, 10))


# --------------------------------------------------------------------------- ascii_art


@pytest.mark.parametrize("width", [9, 401, 0, -5, "40", 40.0, True, None])
def test_ascii_width_is_validated(width: Any) -> None:
    with pytest.raises(BadRequest, match="width must be an integer from 10 to 400"):
        ascii_art(Image.new("L", (20, 20)), width)


def test_ascii_lines_and_width() -> None:
    _, image = inspect(read("camera_gray.png"))  # 512x512
    art = ascii_art(image, 80)
    lines = art.split("\n")
    assert len(lines) == 40  # square image: half as many rows as columns
    assert all(len(line) == 80 for line in lines)
    assert set(art) <= set(ASCII_RAMP) | {"\n"}
    assert len(set(art)) > 5  # a photo, not a flat field


@pytest.mark.parametrize(
    ("size", "width", "rows"),
    [((200, 100), 40, 10), ((100, 200), 40, 40), ((451, 300), 100, 33), ((1000, 10), 10, 1)],
)
def test_ascii_corrects_for_character_cells(size: tuple[int, int], width: int, rows: int) -> None:
    lines = ascii_art(Image.new("RGB", size, "gray"), width).split("\n")
    assert len(lines) == rows
    assert {len(line) for line in lines} == {width}


def test_ascii_rows_are_capped() -> None:
    lines = ascii_art(Image.new("L", (2, 10_000), 255), 10).split("\n")
    assert len(lines) == ASCII_MAX_ROWS


def _flat(mode: str, white: bool) -> Image.Image:
    if mode in ("I;16", "I", "F"):  # wide samples: full scale is 65535 (or 1.0 for floats)
        full = {"I;16": 65535, "I": 65535, "F": 1.0}[mode]
        return Image.new(mode, (64, 48), full if white else 0)
    return Image.new("RGB", (64, 48), "white" if white else "black").convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "CMYK", "I;16", "I", "F"])
def test_ascii_white_is_lightest_and_black_darkest(mode: str) -> None:
    assert set(ascii_art(_flat(mode, True), 20).replace("\n", "")) == {LIGHTEST}
    assert set(ascii_art(_flat(mode, False), 20).replace("\n", "")) == {DARKEST}


def test_ascii_transparent_pixels_are_light() -> None:
    clear_black = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    assert set(ascii_art(clear_black, 30).replace("\n", "")) == {LIGHTEST}
    half = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    half.paste((0, 0, 0, 255), (0, 0, 30, 40))
    lines = ascii_art(half, 30).split("\n")
    assert all(line == DARKEST * 15 + LIGHTEST * 15 for line in lines)
    palette = _palette_image()
    palette.info["transparency"] = 0  # index 0 is black but transparent
    lines = ascii_art(palette, 40).split("\n")
    assert lines[0] == LIGHTEST * 40


def test_ascii_gradient_goes_dark_to_light() -> None:
    # linear_gradient: black at the top, white at the bottom; turned a quarter to the left.
    gradient = Image.linear_gradient("L").rotate(90, expand=True)
    for line in ascii_art(gradient, 50).split("\n"):
        ranks = [ASCII_RAMP.index(ch) for ch in line]
        assert ranks[0] == 0 and ranks[-1] == len(ASCII_RAMP) - 1
        assert ranks == sorted(ranks)


def test_ascii_respects_exif_orientation() -> None:
    _, image = inspect(read("coffee_iphone_rot6.jpg"))  # stored 600x400, shown 400x600
    art = ascii_art(image, 40)
    lines = art.split("\n")
    assert len(lines) == 30  # portrait: round(600 / 400 * 40 * 0.5)
    upright = ascii_art(ImageOps.exif_transpose(image), 40)
    same = sum(a == b for a, b in zip(art, upright, strict=True))
    assert same >= 0.97 * len(art)  # resize-then-rotate vs rotate-then-resize rounding
    stored = Image.frombytes(image.mode, image.size, image.tobytes())  # same pixels, no EXIF
    assert len(ascii_art(stored, 40).split("\n")) == 13  # what ignoring EXIF would give
