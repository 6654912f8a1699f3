"""Rendering thumbnails and renditions from decoded images: modes, orientation, sizes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgsvc import renditions


def decoded(image: Image.Image, fmt: str, **params) -> Image.Image:
    """The image written and read back, as ingest hands it over (decoded, EXIF kept)."""
    out = io.BytesIO()
    image.save(out, fmt, **params)
    reread = Image.open(io.BytesIO(out.getvalue()))
    reread.load()
    return reread


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    ("mode", "fmt", "expected_mode"),
    [
        ("RGB", "JPEG", "RGB"),
        ("L", "PNG", "RGB"),  # WebP has no greyscale: libwebp stores RGB
        ("I;16", "PNG", "RGB"),
        ("CMYK", "JPEG", "RGB"),
        ("P", "GIF", "RGB"),
        ("LA", "PNG", "RGBA"),
        ("RGBA", "PNG", "RGBA"),
        ("1", "BMP", "RGB"),
    ],
)
def test_every_mode_gives_a_thumbnail(mode, fmt, expected_mode):
    image = decoded(Image.new(mode, (640, 480)), fmt)
    with opened(renditions.thumbnail(image)) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (320, 240)
        assert thumb.mode == expected_mode


def test_sixteen_bit_samples_are_scaled_not_clipped():
    image = decoded(Image.new("I;16", (64, 64), 32768), "PNG")  # mid grey in 16 bits
    with opened(renditions.thumbnail(image)) as thumb:
        value = thumb.convert("L").getpixel((10, 10))
    assert 120 <= value <= 136  # about 128, not 255


def test_transparent_palette_images_keep_their_transparency():
    image = Image.new("P", (100, 50), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (50, 0, 100, 50))
    reread = decoded(image, "GIF", transparency=0)
    with opened(renditions.thumbnail(reread)) as thumb:
        assert thumb.mode == "RGBA"
        assert thumb.getpixel((10, 10))[3] == 0 and thumb.getpixel((90, 10))[3] == 255


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_like_exif_transpose(orientation):
    from PIL import ImageOps

    source = Image.new("RGB", (60, 40), (0, 0, 0))
    source.paste((255, 0, 0), (0, 0, 30, 20))  # a red corner shows where "top left" went
    exif = Image.Exif()
    exif[274] = orientation
    image = decoded(source, "PNG", exif=exif)
    expected = ImageOps.exif_transpose(image)
    got = opened(renditions.render(image, expected.width, renditions.ENCODINGS["png"]))
    assert got.size == expected.size
    assert got.convert("RGB").tobytes() == expected.convert("RGB").tobytes()


def test_small_pictures_are_never_enlarged():
    image = decoded(Image.new("RGB", (90, 30)), "PNG")
    with opened(renditions.thumbnail(image)) as thumb:
        assert thumb.size == (90, 30)


def test_the_handlers_formats_are_the_encodings():
    import typing

    from tests.conftest import load_handler

    handler = load_handler("rendition")
    hints = typing.get_type_hints(handler.get_rendition, include_extras=True)
    literal = typing.get_args(hints["format"])[0]
    assert set(typing.get_args(literal)) == set(renditions.FORMATS)
