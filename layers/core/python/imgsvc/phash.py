"""Perceptual hash (pHash) without scipy, bit-identical to ``imagehash.phash``.

The ImagingLayer ships Pillow, numpy and imagehash but not scipy (Lambda size limit), and
``imagehash.phash`` imports ``scipy.fftpack``. This module computes the same hash with numpy
only. The hash is ``low > median(low)`` over the 8x8 lowest DCT coefficients, so every bit
must come out exactly as scipy's would, including on ties with the median.

Why not a plain float64 DCT matrix product: it is mathematically right, but its rounding
noise is not scipy's. On flat, periodic or symmetric images many coefficients tie with the
median; a flat grey image has 63 AC coefficients that are exactly 0, scipy (pocketfft) returns
exact zeros and hashes it ``8000000000000000``, a matrix product returns +-1e-13 noise and
sets bits all over the hash (254 of the ~490 generated test images differ). Snapping tiny
values to 0 fixes flat images only: ties are not always at 0 (a symmetric image has pairs of
equal coefficients) and 6 test images still differ. Even using ``np.cos`` instead of
pocketfft's own twiddle factors, 1 to 20 ulps apart, flips bits of 3 of them.

What we do instead: replicate, operation by operation, the algorithm scipy runs, so our
floats are the same floats. ``scipy.fftpack.dct`` (type 2, norm=None) calls pocketfft's
``T_dcst23::exec``: a pre-pass, a *backward real FFT* of length 32 on the half-complex
array, and a twiddle post-pass. numpy >= 2.0 ``numpy.fft.irfft`` runs that same pocketfft
C++ real backward FFT (``norm="forward"`` means a scale factor of exactly 1, i.e. none), so
only the cheap pre/post passes and the twiddle table are reproduced here. The unit tests
check the result bit for bit against scipy, per float and per hash.
"""

from __future__ import annotations

import math

import imagehash
import numpy as np
from PIL import Image

__all__ = ["display_phash_hex", "phash", "phash_hex"]

HASH_SIZE = 8  # imagehash default hash_size: 8x8 = 64 bits
_N = HASH_SIZE * 4  # imagehash default highfreq_factor=4: images are reduced to 32x32


def _pocketfft_cos_twiddles(n: int, count: int) -> np.ndarray:
    """Real parts of pocketfft's ``sincos_2pibyn(n)[1..count]``, i.e. cos(2*pi*i/n).

    Why not ``np.cos``: pocketfft builds a root of unity as the product of two table entries
    (``v1[i & mask] * v2[i >> shift]``), so 14 of the 32 values differ from a direct cosine
    by 1 to 20 ulps, and those ulps reach the hash. This ports that constructor and
    ``operator[]`` line by line: same libm cos/sin (like pocketfft, whatever the platform's
    libm returns), same products. Each entry's second component is its sine.
    """
    ang = 0.25 * math.pi / n  # pocketfft: Thigh(0.25L*pi/n); exact for n a power of two

    def calc(x: int) -> tuple[float, float]:
        # One root of unity at angle x/n turns, reduced to the first octant first.
        x <<= 3
        if x < 4 * n:  # first half
            if x < 2 * n:  # first quadrant
                if x < n:
                    return math.cos(x * ang), math.sin(x * ang)
                return math.sin((2 * n - x) * ang), math.cos((2 * n - x) * ang)
            x -= 2 * n  # second quadrant
            if x < n:
                return -math.sin(x * ang), math.cos(x * ang)
            return -math.cos((2 * n - x) * ang), math.sin((2 * n - x) * ang)
        x = 8 * n - x
        if x < 2 * n:  # third quadrant
            if x < n:
                return math.cos(x * ang), -math.sin(x * ang)
            return math.sin((2 * n - x) * ang), -math.cos((2 * n - x) * ang)
        x -= 2 * n  # fourth quadrant
        if x < n:
            return -math.sin(x * ang), -math.cos(x * ang)
        return -math.cos((2 * n - x) * ang), -math.sin((2 * n - x) * ang)

    nval = (n + 2) // 2
    shift = 1
    while (1 << shift) * (1 << shift) < nval:
        shift += 1
    mask = (1 << shift) - 1
    v1 = [(1.0, 0.0)] + [calc(i) for i in range(1, mask + 1)]
    v2 = [(1.0, 0.0)] + [calc(i * (mask + 1)) for i in range(1, (nval + mask) // (mask + 1))]
    out = []
    for idx in range(1, count + 1):
        if 2 * idx > n:  # the real part is symmetric: cos(-a) == cos(a)
            idx = n - idx
        (r1, i1), (r2, i2) = v1[idx & mask], v2[idx >> shift]
        out.append(r1 * r2 - i1 * i2)
    return np.array(out, dtype=np.float64)


# T_dcst23(N) uses twiddle[i] = sincos_2pibyn(4N)[i + 1].r for i in 0..N-1. The post-pass
# pairs k = 1..N/2-1 with kc = N-k; precomputed as slices (cheaper than fancy indexing).
_TWIDDLE = _pocketfft_cos_twiddles(4 * _N, _N)
_TW_K = _TWIDDLE[0 : _N // 2 - 1]  # twiddle[k-1]
_TW_KC = _TWIDDLE[_N - 2 : _N // 2 - 1 : -1]  # twiddle[kc-1]


def _dct2_rows(x: np.ndarray) -> np.ndarray:
    """Unnormalised DCT-II of length 32 along the last axis, as ``scipy.fftpack.dct(x)``.

    Mirrors pocketfft's ``T_dcst23::exec`` (type 2, cosine, even N) for all rows at once:
    each numpy op below is one rounded float64 op of the C++ code (multiplying by 2 or 0.5
    is exact, and swapping the operands of + or * never changes an IEEE result).
    """
    n = _N
    x = np.asarray(x, dtype=np.float64)  # scipy also turns integer input into float64
    # Pre-pass: c[0] *= 2; c[N-1] *= 2; then for odd k: c[k+1] -= c[k]; c[k] += old c[k+1].
    # That leaves FFTPACK half-complex order (r0, r1, i1, ..., r15, i15, r16); written into
    # buf as interleaved complex (r0, 0, r1, i1, ..., r16, 0) it is the spectrum numpy wants,
    # and numpy's irfft copies it back into exactly that half-complex layout.
    buf = np.zeros((*x.shape[:-1], n + 2), dtype=np.float64)
    buf[..., 0] = 2 * x[..., 0]
    buf[..., 2 : n - 1 : 2] = x[..., 1 : n - 2 : 2] + x[..., 2 : n - 1 : 2]
    buf[..., 3:n:2] = x[..., 2 : n - 1 : 2] - x[..., 1 : n - 2 : 2]
    buf[..., n] = 2 * x[..., n - 1]
    # pocketfft's real backward FFT; norm="forward" means a scale factor of 1 (no multiply).
    c = np.fft.irfft(buf.view(np.complex128), n=n, norm="forward")
    # Post-pass: for k = 1..N/2-1, kc = N-k, rotate the pair (c[k], c[kc]) by twiddles.
    ck, ckc = c[..., 1 : n // 2], c[..., n - 1 : n // 2 : -1]
    t1 = _TW_K * ckc + _TW_KC * ck
    t2 = _TW_K * ck - _TW_KC * ckc
    c[..., 1 : n // 2] = 0.5 * (t1 + t2)
    c[..., n - 1 : n // 2 : -1] = 0.5 * (t1 - t2)
    c[..., n // 2] *= _TWIDDLE[n // 2 - 1]
    return c


def phash(image: Image.Image) -> imagehash.ImageHash:
    """The 64-bit perceptual hash, bit-identical to ``imagehash.phash(image)`` (defaults)."""
    # Same reduction as imagehash (which uses LANCZOS under its old name ANTIALIAS).
    small = image.convert("L").resize((_N, _N), Image.Resampling.LANCZOS)
    pixels = np.asarray(small)
    # imagehash: dct(dct(pixels, axis=0), axis=1)[:8, :8]. Both passes run along the last
    # (contiguous) axis on transposes, and the second only on the 8 rows that are kept:
    # rows are transformed independently, so the values are the same.
    cols = _dct2_rows(pixels.T)  # cols[j, u] = dct(pixels, axis=0)[u, j]
    low = _dct2_rows(cols[:, :HASH_SIZE].T)[:, :HASH_SIZE]
    return imagehash.ImageHash(low > np.median(low))


def phash_hex(image: Image.Image) -> str:
    """The hash as 16 lowercase hex characters (``str(imagehash.phash(image))``)."""
    return str(phash(image))


def display_phash_hex(image: Image.Image, orientation: int | None) -> str:
    """The hash of the picture as displayed: ``imagehash.phash(ImageOps.exif_transpose(im))``.

    ``orientation`` is the image's EXIF orientation (None or 1: already upright). Greyscale
    conversion is per pixel, so it commutes with the transpose; converting first turns a
    full-size RGB rotation into a one-byte-per-pixel one, with bit-identical results.
    HEIF decoders apply the container's rotation themselves and report orientation 1.
    """
    from imgsvc.imaging.decode import TRANSPOSE  # the one table (imaging imports this lazily)

    op = TRANSPOSE.get(orientation or 1)
    if op is None:
        return phash_hex(image)
    return phash_hex(image.convert("L").transpose(op))
