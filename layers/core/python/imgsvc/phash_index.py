"""The phash index: multi-index hashing of 64-bit perceptual hashes (no scan for neighbours).

The hash is split into CHUNKS disjoint bit ranges. If two hashes differ in at most d bits,
then by pigeonhole at least CHUNKS - d chunks are equal, so looking up any d + 1 chunks
exactly finds every neighbour within distance d (d < CHUNKS).
"""

from __future__ import annotations

import re

# Nine chunks (one of 8 bits, eight of 7) support max_distance up to 8 with ~1/128 of the
# library per bucket.
CHUNK_BITS = (8, 7, 7, 7, 7, 7, 7, 7, 7)
CHUNKS = len(CHUNK_BITS)
MAX_DISTANCE = CHUNKS - 1


def chunk_values(phash_hex: str) -> list[int]:
    value = int(phash_hex, 16)
    out = []
    shift = 64
    for bits in CHUNK_BITS:
        shift -= bits
        out.append((value >> shift) & ((1 << bits) - 1))
    return out


def index_keys(phash_hex: str) -> list[str]:
    """The partition keys under which an image is indexed, one per chunk."""
    return [f"PHASH#{i}#{v:02x}" for i, v in enumerate(chunk_values(phash_hex))]


_HEX64 = re.compile(r"[0-9a-fA-F]{16}")


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two 64-bit hashes given as 16 hex characters.

    Pure Python, so functions without the imaging layer can use it. Raises ValueError unless
    both are exactly 16 hex digits: ``int(s, 16)`` alone would also accept "0x", "_", signs,
    spaces and other lengths.
    """
    for name, value in (("a_hex", a_hex), ("b_hex", b_hex)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise ValueError(f"{name} must be exactly 16 hex characters, got {value!r}")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()
