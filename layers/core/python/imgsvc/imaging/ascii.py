"""The image as text."""

from __future__ import annotations

from PIL import Image

from imgsvc.errors import BadRequest
from imgsvc.imaging.decode import SWAPS_AXES, TRANSPOSE, orientation_of, read_exif, wide_to_gray

ASCII_VERSION = "1"  # bump when the output for the same image and width changes (caches)
ASCII_RAMP = "@%#*+=-:. "  # dark -> light
ASCII_MIN_WIDTH = 10
ASCII_MAX_WIDTH = 400
# Safety cap: a 1-pixel-wide, 10000-pixel-tall image would otherwise give millions of lines.
ASCII_MAX_ROWS = 1000
CHAR_ASPECT = 0.5  # a character cell is about twice as tall as it is wide

# Luminance 0..255 -> the ASCII code of its ramp character (applied by Image.point).
_RAMP_LUT = [ord(ASCII_RAMP[v * len(ASCII_RAMP) // 256]) for v in range(256)]


def _to_gray(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Downscale first (cheap), then flatten alpha onto white and take the luminance."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return wide_to_gray(image, size)
    if image.has_transparency_data:
        work = image if mode in ("RGBA", "LA") else image.convert("RGBA")
    elif mode in ("L", "RGB"):
        work = image
    else:
        work = image.convert("L")  # P, 1, CMYK, YCbCr, LAB, HSV: resize needs a plain mode
    # BOX averages every source pixel once; Pillow premultiplies alpha when resizing RGBA/LA.
    small = work.resize(size, Image.Resampling.BOX)
    if small.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", small.size, (255, 255, 255, 255))
        small = Image.alpha_composite(white, small.convert("RGBA"))
    return small.convert("L")


def ascii_art(image: Image.Image, width: int) -> str:
    """The image as ``width`` characters per line, one line per row, joined by "\\n".

    Respects EXIF orientation, flattens transparency onto white, and corrects for character
    cells being about twice as tall as wide: rows = round(h / w * width * 0.5), at least 1
    (at most ASCII_MAX_ROWS). Dark pixels map to "@", light ones to " ".
    """
    if (
        not isinstance(width, int)
        or isinstance(width, bool)
        or not ASCII_MIN_WIDTH <= width <= ASCII_MAX_WIDTH
    ):
        raise BadRequest(
            f"width must be an integer from {ASCII_MIN_WIDTH} to {ASCII_MAX_WIDTH}, got {width!r}"
        )
    image.load()
    exif, _ = read_exif(image)
    orientation = orientation_of(exif) or 1
    stored_w, stored_h = image.size
    swapped = orientation in SWAPS_AXES
    shown_w, shown_h = (stored_h, stored_w) if swapped else (stored_w, stored_h)
    rows = min(ASCII_MAX_ROWS, max(1, round(shown_h / shown_w * width * CHAR_ASPECT)))
    # Resize in stored orientation and rotate the small result: far cheaper than rotating
    # the full image first, and the same picture.
    gray = _to_gray(image, (rows, width) if swapped else (width, rows))
    if orientation in TRANSPOSE:
        gray = gray.transpose(TRANSPOSE[orientation])
    codes = gray.point(_RAMP_LUT).tobytes()
    return "\n".join(codes[i : i + width].decode("ascii") for i in range(0, len(codes), width))
