"""The /analyze header probe on hostile structures vs an ordinary file of the same size.

Each file is 1 MB with its frame header at the end, so the probe must read all of it in 16 KiB
chunks. CPU time of ``imaging.probe``; ratios are against the ordinary file measured here.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator

from bench import report

SIZE = 1_000_000
CHUNK = 16 * 1024


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG")
    return buf.getvalue()


def _app_segments(total: int, tiny: int = 0) -> bytes:
    """``tiny`` 4-byte comment segments, then 64 KB APP1 segments up to ``total`` bytes."""
    out = bytearray(b"\xff\xfe\x00\x02" * tiny)
    while total - len(out) > 4:
        n = min(65533, total - len(out) - 4)
        out += b"\xff\xe1" + (n + 2).to_bytes(2, "big") + b"x" * n
    return bytes(out)


def _tiff_ifd_at_end() -> bytes:
    # Little-endian TIFF whose first IFD sits at the end of a 1 MB file.
    entries = [
        (256, 3, 1, 64), (257, 3, 1, 48), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 48), (279, 4, 1, 64 * 48),
    ]  # fmt: skip
    offset = SIZE - 2 - 12 * len(entries) - 4
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, typ, count, value) for tag, typ, count, value in entries
    )
    data = b"II*\x00" + struct.pack("<I", offset)
    return data + b"\x00" * (offset - len(data)) + ifd + b"\x00\x00\x00\x00"


def _cpu(data: bytes, repeat: int = 3) -> float:
    from imgsvc.imaging import probe

    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        probe(_chunks(data))
        best = min(best, time.process_time() - started)
    return best


def run() -> bool:
    from imgsvc.imaging import MAX_JPEG_SEGMENTS

    jpg = _jpeg()
    body = SIZE - len(jpg)
    files = {
        "ordinary JPEG (64 KB APP1 segments, SOF at the end)": jpg[:2]
        + _app_segments(body)
        + jpg[2:],
        f"JPEG with {MAX_JPEG_SEGMENTS - 20} tiny segments first": jpg[:2]
        + _app_segments(body, MAX_JPEG_SEGMENTS - 20)
        + jpg[2:],
        "TIFF whose IFD is at the end": _tiff_ifd_at_end(),
    }
    baseline = None
    rows = []
    worst = 0.0
    for name, data in files.items():
        cpu = _cpu(data)
        baseline = baseline or cpu
        ratio = cpu / baseline
        worst = max(worst, ratio)
        rows.append([name, f"{len(data):,}", report.ms(cpu), f"{ratio:.1f}x"])
    report.table(["file (1 MB, header at the end)", "bytes", "probe CPU", "vs ordinary"], rows)
    report.note(
        "Attempts are spaced geometrically and a JPEG's segment chain is walked once as bytes "
        f"arrive, so no structure costs more than a few times an ordinary file ({worst:.1f}x "
        f"here); more than {MAX_JPEG_SEGMENTS} segments before the frame header is refused."
    )
    if worst > 4:
        report.warning(f"a hostile structure costs {worst:.1f}x an ordinary file")
        return True
    return False
