"""The /analyze header probe: parsing attempts spaced geometrically, a JPEG's segments walked
once, and a JPEG with more segments before its frame than any real file refused."""

from __future__ import annotations

import math

import pytest

from bench.probe import CHUNK, SIZE, _app_segments, _chunks, _jpeg, _tiff_ifd_at_end
from imgsvc import imaging
from imgsvc.errors import InvalidImage
from imgsvc.imaging import header


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = header._identify  # probe's own reference: patch it where it is used

    def counting(data: bytes, *, complete: bool) -> object:
        calls.append(len(data))
        return real(data, complete=complete)

    monkeypatch.setattr(header, "_identify", counting)
    return calls


def test_a_header_at_the_end_is_parsed_a_logarithmic_number_of_times(monkeypatch) -> None:
    calls = count_parses(monkeypatch)
    info, read = imaging.probe(_chunks(_tiff_ifd_at_end()))
    assert (info.format, info.width, info.height) == ("TIFF", 64, 48) and read == SIZE
    # One parse per chunk would be SIZE / CHUNK = 62; doubling needs about log2 of that.
    assert len(calls) <= math.ceil(math.log2(SIZE / CHUNK)) + 2
    assert sum(calls) <= 4 * SIZE  # total bytes parsed: linear in the bytes read


def test_a_jpeg_is_parsed_once_its_frame_header_arrived(monkeypatch) -> None:
    jpg = _jpeg()
    data = jpg[:2] + _app_segments(SIZE - len(jpg), 100) + jpg[2:]
    calls = count_parses(monkeypatch)
    info, _ = imaging.probe(_chunks(data))
    assert (info.format, info.width, info.height) == ("JPEG", 64, 48)
    assert calls == [SIZE]


def test_too_many_jpeg_segments_before_the_frame_are_refused(monkeypatch) -> None:
    jpg = _jpeg()
    limit = imaging.MAX_JPEG_SEGMENTS
    ok = jpg[:2] + b"\xff\xfe\x00\x02" * (limit - 10) + jpg[2:]
    assert imaging.probe(_chunks(ok))[0].format == "JPEG"
    calls = count_parses(monkeypatch)
    bad = jpg[:2] + b"\xff\xfe\x00\x02" * (limit + 1) + jpg[2:]
    with pytest.raises(InvalidImage, match="segments before its frame header"):
        imaging.probe(_chunks(bad))
    assert calls == []  # refused by the walk, before any parse
