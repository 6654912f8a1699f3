"""imgsvc.phash: bit-identical to imagehash.phash (which needs scipy), without scipy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from imgsvc.phash import _dct2_rows, display_phash_hex, phash, phash_hex
from imgsvc.phash_index import hamming

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data" / "photos"

# Every photo Pillow decodes. bad_* are excluded on purpose: bad_empty, bad_not_an_image and
# bad_bomb_40000 do not open, bad_truncated opens but its pixels do not decode, and
# bad_bomb_12000 is 144 Mpx of zeros (a DecompressionBombWarning, an error under our pytest
# config); its content, a flat black image, is covered by the generated flat images below.
MANIFEST = json.loads((PHOTOS / "manifest.json").read_text())
PHOTO_FILES = sorted(
    e["file"] for e in MANIFEST if e["pillow_opens"] and not e["file"].startswith("bad_")
)


def _noise(rng: np.random.Generator, mode: str, size: tuple[int, int]) -> Image.Image:
    w, h = size
    if mode == "1":
        return Image.fromarray(rng.random((h, w)) < 0.5)  # bool array -> mode "1"
    if mode == "I;16":
        # convert("L") clips I;16 at 255: keep most values in range so the result is not flat.
        vals = rng.integers(0, 320, (h, w)).astype("<u2")
        return Image.frombytes("I;16", size, vals.tobytes())
    if mode == "P":
        im = Image.frombytes("P", size, rng.integers(0, 256, (h, w), dtype=np.uint8).tobytes())
        im.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        return im
    bands = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    return Image.frombytes(mode, size, arr.tobytes())


def _gray(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))  # 2-D uint8 -> L


def generated_images() -> Iterator[tuple[str, Image.Image]]:
    """A few hundred images chosen to hit ties with the median (flat, symmetric, periodic)."""
    rng = np.random.default_rng(20240611)
    sizes = [(1, 1), (2, 3), (3, 2), (7, 5), (31, 33), (32, 32), (64, 48), (100, 100)]
    sizes += [(257, 129), (1000, 3), (3, 1000), (4000, 2), (1, 5000), (640, 480)]
    for mode in ("L", "RGB", "RGBA", "P", "I;16", "1"):
        for size in sizes:
            for i in range(3):
                yield f"noise-{mode}-{size}-{i}", _noise(rng, mode, size)

    for v in (0, 1, 2, 64, 127, 128, 129, 200, 254, 255):
        for size in ((1, 1), (2, 3), (32, 32), (50, 70)):
            yield f"flat-L-{v}-{size}", Image.new("L", size, v)
    for colour in ("black", "white", "red", "lime", "blue", "gray", (12, 200, 99), (128,) * 3):
        yield f"flat-RGB-{colour}", Image.new("RGB", (40, 30), colour)
    yield "flat-RGBA-transparent", Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    yield "flat-RGBA-white", Image.new("RGBA", (16, 16), (255, 255, 255, 128))
    yield "flat-1-black", Image.new("1", (9, 9), 0)
    yield "flat-1-white", Image.new("1", (9, 9), 1)
    yield "flat-P", Image.new("P", (20, 20), 3)
    for v in (0, 100, 255, 256, 65535):
        yield f"flat-I16-{v}", Image.new("I;16", (10, 12), v)

    for w, h in ((32, 32), (64, 64), (100, 37), (3, 300), (1000, 1)):
        x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
        y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
        yield f"grad-h-{w}x{h}", _gray(x)
        yield f"grad-v-{w}x{h}", _gray(y)
        yield f"grad-diag-{w}x{h}", _gray((x + y) / 2)
        yield f"grad-antidiag-{w}x{h}", _gray((255 - x + y) / 2)
        yield f"grad-radial-{w}x{h}", _gray(np.hypot(x - 127.5, y - 127.5))
        rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
        yield f"grad-rgb-{w}x{h}", Image.fromarray(rgb)

    for side in (32, 64, 96, 100):
        yy, xx = np.mgrid[0:side, 0:side]
        for cell in (1, 2, 4, 8, 16, 3, 5):
            board = ((xx // cell + yy // cell) % 2) * 255
            yield f"checker-{side}-{cell}", _gray(board)
            yield f"stripes-v-{side}-{cell}", _gray((xx // cell % 2) * 255)
            yield f"stripes-h-{side}-{cell}", _gray((yy // cell % 2) * 200 + 20)

    for i in range(8):  # random images made symmetric in one or more ways
        side = (16, 32, 33, 64)[i % 4]
        a = rng.integers(0, 256, (side, side)).astype(np.float64)
        yield f"sym-lr-{i}", _gray((a + a[:, ::-1]) / 2)
        yield f"sym-ud-{i}", _gray((a + a[::-1, :]) / 2)
        yield f"sym-both-{i}", _gray((a + a[::-1] + a[:, ::-1] + a[::-1, ::-1]) / 4)
        yield f"sym-rot180-{i}", _gray((a + a[::-1, ::-1]) / 2)
        yield f"sym-transpose-{i}", _gray((a + a.T) / 2)
        yield f"sym-antilr-{i}", _gray(128 + (a - a[:, ::-1]) / 2)
        yield f"sym-antiud-{i}", _gray(128 + (a - a[::-1, :]) / 2)
    yy, xx = np.mgrid[0:64, 0:64]
    yield "cross", _gray(((abs(xx - 31.5) < 4) | (abs(yy - 31.5) < 4)) * 255)
    yield "frame", _gray(((xx < 4) | (xx > 59) | (yy < 4) | (yy > 59)) * 255)
    yield "dot-centre", _gray((np.hypot(xx - 31.5, yy - 31.5) < 10) * 255)
    yield "half-left", _gray((xx < 32) * 255)
    yield "half-top", _gray((yy < 32) * 255)
    yield "single-pixel", _gray(np.pad([[255]], ((10, 21), (10, 21))))


GENERATED = list(generated_images())


def _reduced_pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS))


def _open_photo(name: str) -> Image.Image:
    with Image.open(PHOTOS / name) as im:
        im.load()
        return im.copy()


def test_corpus_is_what_we_think() -> None:
    assert len(PHOTO_FILES) >= 10
    assert len(GENERATED) >= 300
    assert len({name for name, _ in GENERATED}) == len(GENERATED)


@pytest.mark.parametrize("name", PHOTO_FILES)
def test_photo_hash_identical_to_imagehash(name: str) -> None:
    im = _open_photo(name)
    expected = imagehash.phash(im)
    got = phash(im)
    assert got == expected
    assert str(got) == str(expected)


def test_generated_hashes_identical_to_imagehash() -> None:
    mismatches = [
        (name, str(phash(im)), str(imagehash.phash(im)))
        for name, im in GENERATED
        if phash(im) != imagehash.phash(im)
    ]
    assert mismatches == []


def test_dct_floats_identical_to_scipy() -> None:
    """Stronger than the hashes: every one of the 32x32 coefficients, bit for bit."""
    from scipy import fftpack  # a dev dependency: these tests never skip

    pixel_sets = [_reduced_pixels(im) for _, im in GENERATED]
    pixel_sets += [_reduced_pixels(_open_photo(name)) for name in PHOTO_FILES]
    rng = np.random.default_rng(7)
    pixel_sets += [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(200)]
    for pixels in pixel_sets:
        expected = fftpack.dct(fftpack.dct(pixels, axis=0), axis=1)
        got = _dct2_rows(_dct2_rows(pixels.T).T)
        assert got.dtype == expected.dtype == np.float64
        np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def test_corpus_has_ties_a_plain_dct_gets_wrong() -> None:
    """Guards the corpus itself: a textbook float64 DCT must fail on it, or it proves little."""
    n = np.arange(32)
    basis = 2 * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64)
    wrong = 0
    for _, im in GENERATED:
        low = (basis @ _reduced_pixels(im).astype(np.float64) @ basis.T)[:8, :8]
        wrong += imagehash.ImageHash(low > np.median(low)) != imagehash.phash(im)
    assert wrong >= 10


def test_known_hashes() -> None:
    # Flat images: every AC coefficient is exactly 0, so only the DC bit is above the median.
    assert phash_hex(Image.new("L", (32, 32), 128)) == "8000000000000000"
    assert phash_hex(Image.new("RGB", (5, 7), "white")) == "8000000000000000"
    assert phash_hex(Image.new("L", (32, 32), 0)) == "0000000000000000"


def test_phash_hex_format() -> None:
    for name, im in GENERATED[::25]:
        h = phash_hex(im)
        assert len(h) == 16, name
        assert set(h) <= set("0123456789abcdef"), name
        assert h == str(phash(im))


def test_phash_does_not_mutate_the_image() -> None:
    im = Image.new("RGBA", (40, 20), (10, 20, 30, 40))
    before = im.tobytes()
    phash(im)
    assert im.mode == "RGBA"
    assert im.size == (40, 20)
    assert im.tobytes() == before


def test_no_scipy_import_and_works_without_scipy() -> None:
    """In a fresh interpreter where scipy cannot be imported, as on Lambda."""
    code = textwrap.dedent(
        """
        import importlib.abc
        import sys

        class NoScipy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "scipy" or name.startswith("scipy."):
                    raise ImportError("scipy is not in the Lambda layer")
                return None

        sys.meta_path.insert(0, NoScipy())
        from PIL import Image
        import imgsvc.phash as p

        im = Image.radial_gradient("L").resize((50, 40))
        print(p.phash_hex(im), str(p.phash(im)))
        print(sorted(m for m in sys.modules if m == "scipy" or m.startswith("scipy.")))
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers" / "core" / "python"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    hashes, modules = proc.stdout.splitlines()
    assert modules == "[]"
    first, second = hashes.split()
    assert first == second
    assert len(first) == 16
    pytest.importorskip("scipy")  # the checks above do not need it
    expected = str(imagehash.phash(Image.radial_gradient("L").resize((50, 40))))
    assert first == expected


def test_hamming_known_values() -> None:
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("0000000000000000", "ffffffffffffffff") == 64
    assert hamming("0000000000000001", "0000000000000000") == 1
    assert hamming("8000000000000000", "0000000000000001") == 2
    assert hamming("f0f0f0f0f0f0f0f0", "0f0f0f0f0f0f0f0f") == 64
    assert hamming("00000000000000ff", "000000000000000f") == 4
    assert hamming("ABCDEFabcdef0123", "abcdefABCDEF0123") == 0  # case does not matter


def test_hamming_symmetric_and_matches_imagehash() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b = (f"{int(v):016x}" for v in rng.integers(0, 2**64, 2, dtype=np.uint64))
        d = hamming(a, b)
        assert d == hamming(b, a)
        assert 0 <= d <= 64
        assert d == imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)
        assert hamming(a, a) == 0


def test_hamming_of_real_photos() -> None:
    near = hamming(
        phash_hex(_open_photo("chelsea_canon.jpg")), phash_hex(_open_photo("chelsea_pixel.jpg"))
    )
    far = hamming(phash_hex(_open_photo("chelsea_canon.jpg")), phash_hex(_open_photo("coins.tiff")))
    assert near < far


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 15,
        "0" * 17,
        "0x" + "0" * 14,
        "g" * 16,
        " " + "0" * 15,
        "0" * 16 + "\n",
        "+" + "0" * 15,
        "-" + "0" * 15,
        "0" * 8 + "_" + "0" * 7,
        "\uff10" * 16,  # fullwidth digit zero: int(..., 16) would accept it
        "\u0660" * 16,  # arabic-indic digit zero: likewise
        None,
        b"0000000000000000",
        0,
    ],
)
def test_hamming_rejects_invalid(bad: object) -> None:
    with pytest.raises(ValueError):
        hamming(bad, "0" * 16)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hamming("0" * 16, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("orientation", [None, *range(1, 9)])
@pytest.mark.parametrize("name", PHOTO_FILES)
def test_display_phash_is_imagehash_phash_of_the_exif_transposed_image(
    name: str, orientation: int | None
) -> None:
    from PIL import ImageOps

    image = _open_photo(name)
    tagged = image.copy()
    exif = Image.Exif()
    if orientation is not None:
        exif[274] = orientation
    tagged.info["exif"] = exif.tobytes()
    expected = str(imagehash.phash(ImageOps.exif_transpose(tagged)))
    assert display_phash_hex(image, orientation) == expected
