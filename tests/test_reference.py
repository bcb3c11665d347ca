"""The optimised C transform against a plain numpy reference of the
definitions (JPEG 2000 Part 1's 5/3, the rounded 5/3 of wavelets 3 and 4,
and 9/7-M; independent code: np.pad symmetric extension, whole arrays, no
strips or lanes)."""
from itertools import product

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import _api, _core


def lift_1d(x: np.ndarray, axis: int, m97: bool = False, rounded: bool = False) -> np.ndarray:
    """One forward reversible level along `axis`, 5/3 (predict rounded to
    nearest if `rounded`) or 9/7-M: low half then high half."""
    x = np.moveaxis(x.astype(np.int64), axis, 0)
    n = x.shape[0]
    if n < 2:
        return np.moveaxis(x, 0, axis)
    # whole-sample symmetric extension (numpy repeats it for short lines):
    # ext[t + 4] = x[t], x[-t] = x[t], x[n - 1 + t] = x[n - 1 - t]
    ext = np.pad(x, [(4, 4)] + [(0, 0)] * (x.ndim - 1), mode="reflect")

    def at(t):
        return ext[t + 4]

    k = (n + 1) // 2
    t = 2 * np.arange(k + 1) - 1        # odd positions -1, 1, .., 2k - 1
    if m97:
        predict = (9 * (at(t - 1) + at(t + 1)) - (at(t - 3) + at(t + 3)) + 8) >> 4
    else:
        predict = (at(t - 1) + at(t + 1) + int(rounded)) >> 1
    d_all = at(t) - predict             # d_all[j]: detail at position 2j - 1
    nd, ns = n // 2, n - n // 2
    d = d_all[1:1 + nd]
    s = at(2 * np.arange(ns)) + ((d_all[:ns] + d_all[1:ns + 1] + 2) >> 2)
    return np.moveaxis(np.concatenate([s, d]), 0, axis)


def reference_low_band(arr: np.ndarray, levels: int, axes=None, m97_levels: int = 0,
                       rounded: bool = False) -> np.ndarray:
    """The low band after `levels` levels over `axes` (default all), level l
    lifted with 9/7-M where bit l - 1 of m97_levels is set, else 5/3 (its
    predict rounded if `rounded`)."""
    low = arr.astype(np.int64)
    for level in range(levels):
        for axis in (range(low.ndim) if axes is None else sorted(axes)):  # C: z, y, x
            n = low.shape[axis]
            low = lift_1d(low, axis, bool(m97_levels >> level & 1), rounded)
            low = np.take(low, np.arange((n + 1) // 2), axis=axis)
    return low


@pytest.mark.parametrize("shape", [(64, 64), (37, 23), (5, 2), (17, 9, 6)])
def test_low_bands_match_reference(real, shape):
    src = real("mni152_t1_uint8_3d")[60:60 + shape[0], 80:80 + shape[1]]
    arr = src[..., 90] if len(shape) == 2 else src[..., 90:90 + shape[2]]
    arr = (arr.astype(np.int32) * 200 - 20000).astype(np.int16)  # signed, wide range
    info = np.iinfo(arr.dtype)
    every = tuple(range(arr.ndim))   # the reference transforms every axis
    levels = pj.read_header(pj.encode(arr, axes=every)).levels
    for wavelet, m97_levels in product((0, 4), sorted({0, 1, (1 << levels) - 1,
                                                       0b10101 & ((1 << levels) - 1)})):
        # wavelet 4 (the rounded 5/3) is what encode() writes; 0 (JPEG 2000's) older streams
        prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _api._DTYPE_CODES[arr.dtype],
                                  arr.shape, every, -1, levels, wavelet, 0.0, 0.0, m97_levels)
        enc = prepared.encode(0.0)
        header = pj.read_header(enc)
        assert (header.wavelet, header.m97_levels) == (wavelet, m97_levels)
        if wavelet == 4 and m97_levels == 1:
            assert enc == pj.encode(arr, axes=every, m97_levels=1)
        np.testing.assert_array_equal(pj.decode(enc), arr)
        for level in range(1, levels + 1):
            expected = np.clip(reference_low_band(arr, level, m97_levels=m97_levels,
                                                  rounded=wavelet == 4), info.min, info.max)
            np.testing.assert_array_equal(pj.decode(enc, level=level), expected)


def test_crc32c_paths_agree_with_reference():
    google_crc32c = pytest.importorskip("google_crc32c")
    rng = np.random.default_rng(5)
    assert _core.crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C
    for n in (0, 1, 7, 8, 9, 63, 1000, 4099):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        expected = google_crc32c.value(data)
        assert _core.crc32c(data, portable=True) == expected
        assert _core.crc32c(data) == expected
