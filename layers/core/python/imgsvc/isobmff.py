"""Size and mode of a HEIF or AVIF image from its header boxes, without decoding.

Why by hand: libheif (pi-heif) and libavif (Pillow) only open a complete file, and analyze by
URL must not download a 20 MB photo to report its size. Both formats are ISO base media
files: an ``ftyp`` box, then a ``meta`` box (a few KB, before the pixel data in files that
phones and encoders write) that describes the primary item: ``ispe`` (its size), ``irot``
(a rotation), ``pixi`` (channels) and an alpha auxiliary item. Only those boxes are read.

What the decoders report, and so what this reports:
- HEIF: libheif applies ``clap`` (crop), ``irot`` and ``imir`` while decoding, so a 90 or
  270 degree rotation swaps the size (pi-heif then resets the EXIF Orientation to 1).
- AVIF: Pillow leaves the pixels as stored and reports the rotation as EXIF Orientation, so
  the size is ``ispe``'s.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
_ALPHA_URNS = frozenset(
    {b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"}
)
# The meta box of a real photo is a few KB (a grid of 48 tiles included); more is not a header.
MAX_META_BYTES = 1024 * 1024


class NeedMore(Exception):  # a signal, not an error
    """The header continues past the bytes given."""


class Malformed(Exception):
    """The boxes do not describe an image."""


@dataclass(frozen=True)
class Header:
    brand: str  # "HEIF" or "AVIF"
    width: int  # stored (ispe) size
    height: int
    rotation: int  # irot: quarter turns anticlockwise, 0-3
    alpha: bool
    channels: int  # pixi, 3 when absent
    # After the transformations libheif applies, in their order: clap (the clean aperture:
    # HEVC codes even sizes, so an odd-sized photo is padded and cropped back) and irot.
    transformed: tuple[int, int] = (0, 0)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[start:end], which is all present."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise Malformed("a box header is cut off")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Malformed("a box header is cut off")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the enclosing box
        if size < header or pos + size > end:
            raise Malformed(f"box {kind!r} has size {size}, outside its parent")
        yield kind, pos + header, pos + size
        pos += size


def brand_of(data: bytes) -> str | None:
    """'HEIF' or 'AVIF' from the ftyp box's brands, or None."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    size = struct.unpack_from(">I", data, 0)[0]
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(size, len(data)) - 3, 4)]
    if any(b in AVIF_BRANDS for b in brands):
        return "AVIF"
    if any(b in HEIF_BRANDS for b in brands):
        return "HEIF"
    return None


def _item_id(data: bytes, pos: int, version: int) -> tuple[int, int]:
    if version == 0:
        return struct.unpack_from(">H", data, pos)[0], pos + 2
    return struct.unpack_from(">I", data, pos)[0], pos + 4


def parse(data: bytes) -> Header:
    """The primary item's header. Raises NeedMore when the meta box is not all in ``data``,
    Malformed when it cannot describe an image."""
    brand = brand_of(data)
    if brand is None:
        raise Malformed("not a HEIF or AVIF file")
    pos = 0
    while True:  # the top-level boxes up to meta: the file goes on past what we have
        if pos > MAX_META_BYTES:
            raise Malformed("no meta box near the start of the file")
        if pos + 16 > len(data):
            raise NeedMore
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        if kind == b"meta":
            if not header + 4 <= size <= MAX_META_BYTES:
                raise Malformed(f"the meta box has an implausible size ({size} bytes)")
            if pos + size > len(data):
                raise NeedMore
            meta = (pos + header + 4, pos + size)  # a FullBox: version and flags first
            break
        if kind == b"mdat" or size < header:  # size 0 runs to the end of the file
            raise Malformed("no meta box before the image data")
        pos += size
    try:
        return _parse_meta(data, *meta, brand)
    except (struct.error, IndexError) as exc:
        raise Malformed(f"a header box is cut short: {exc}") from exc


def _parse_meta(data: bytes, start: int, end: int, brand: str) -> Header:
    primary = None
    properties: list[tuple[bytes, int, int]] = []
    associations: dict[int, list[int]] = {}
    aux_of: dict[int, int] = {}  # auxiliary item -> the item it belongs to
    for kind, body, box_end in _boxes(data, start, end):
        if kind == b"pitm":
            primary, _ = _item_id(data, body + 4, data[body])
        elif kind == b"iprp":
            for sub, sub_body, sub_end in _boxes(data, body, box_end):
                if sub == b"ipco":
                    properties = list(_boxes(data, sub_body, sub_end))
                elif sub == b"ipma":
                    _read_ipma(data, sub_body, associations)
        elif kind == b"iref":
            version = data[body]
            for ref, ref_body, _ref_end in _boxes(data, body + 4, box_end):
                if ref != b"auxl":
                    continue
                source, pos = _item_id(data, ref_body, version)
                count = struct.unpack_from(">H", data, pos)[0]
                pos += 2
                for _ in range(count):
                    target, pos = _item_id(data, pos, version)
                    aux_of[source] = target
    if primary is None:
        raise Malformed("no primary item")
    size = None
    rotation = 0
    channels = 3
    transformed = (0, 0)
    for index in associations.get(primary, []):
        if not 1 <= index <= len(properties):
            continue
        kind, body, _prop_end = properties[index - 1]
        if kind == b"ispe":
            size = transformed = struct.unpack_from(">II", data, body + 4)
        elif kind == b"irot":
            rotation = data[body] & 3
            if rotation in (1, 3):
                transformed = (transformed[1], transformed[0])
        elif kind == b"clap":
            wn, wd, hn, hd = struct.unpack_from(">IIII", data, body)
            if not wd or not hd:
                raise Malformed("the clean aperture box divides by zero")
            transformed = (round(wn / wd), round(hn / hd))
        elif kind == b"pixi":
            channels = data[body + 4]
    alpha = False
    for item, target in aux_of.items():
        if target != primary:
            continue
        for index in associations.get(item, []):
            if 1 <= index <= len(properties) and properties[index - 1][0] == b"auxC":
                _kind, body, prop_end = properties[index - 1]
                urn = data[body + 4 : prop_end].split(b"\x00", 1)[0]
                alpha = alpha or urn in _ALPHA_URNS
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise Malformed("the primary item has no size")
    return Header(brand, size[0], size[1], rotation, alpha, channels, transformed)


def _read_ipma(data: bytes, body: int, out: dict[int, list[int]]) -> None:
    version, flags = data[body], int.from_bytes(data[body + 1 : body + 4], "big")
    count = struct.unpack_from(">I", data, body + 4)[0]
    pos = body + 8
    for _ in range(count):
        item, pos = _item_id(data, pos, 0 if version < 1 else 1)
        n = data[pos]
        pos += 1
        indexes = out.setdefault(item, [])
        for _ in range(n):
            if flags & 1:
                indexes.append(struct.unpack_from(">H", data, pos)[0] & 0x7FFF)
                pos += 2
            else:
                indexes.append(data[pos] & 0x7F)
                pos += 1


def decoded_size_and_mode(header: Header) -> tuple[int, int, str]:
    """Width, height and mode as the decoder (libheif via pi-heif, or Pillow's AVIF) reports."""
    # libavif (Pillow) decodes the coded picture and reports irot as an EXIF orientation.
    width, height = header.transformed if header.brand == "HEIF" else (header.width, header.height)
    if width <= 0 or height <= 0:
        raise Malformed("the clean aperture is empty")
    mode = "RGBA" if header.alpha else "L" if header.channels == 1 else "RGB"
    return width, height, mode
