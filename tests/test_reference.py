"""The optimised C transform against a plain numpy reference of the JPEG 2000
Part 1 definitions (independent code: np.pad symmetric extension, whole
arrays, no strips or lanes)."""
import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import _core


def lift53_1d(x: np.ndarray, axis: int) -> np.ndarray:
    """One forward reversible 5/3 level along `axis`: low half then high half."""
    x = np.moveaxis(x.astype(np.int64), axis, 0)
    n = x.shape[0]
    if n < 2:
        return np.moveaxis(x, 0, axis)
    # whole-sample symmetric extension: ext[j] = x[j - 2], x[-1] = x[1], x[n] = x[n - 2]
    ext = np.pad(x, [(2, 2)] + [(0, 0)] * (x.ndim - 1), mode="reflect")
    k = (n + 1) // 2
    # d_all[j]: detail at original odd position 2j - 1, j = 0..k
    d_all = ext[1:2 * k + 2:2] - ((ext[0:2 * k + 1:2] + ext[2:2 * k + 3:2]) >> 1)
    nd, ns = n // 2, n - n // 2
    d = d_all[1:1 + nd]
    s = ext[2:2 * ns + 1:2] + ((d_all[:ns] + d_all[1:ns + 1] + 2) >> 2)
    return np.moveaxis(np.concatenate([s, d]), 0, axis)


def reference_low_band(arr: np.ndarray, levels: int, axes=None) -> np.ndarray:
    """The 5/3 low band after `levels` levels over `axes` (default all)."""
    low = arr.astype(np.int64)
    for _ in range(levels):
        for axis in (range(low.ndim) if axes is None else sorted(axes)):  # C: z, y, x
            n = low.shape[axis]
            low = lift53_1d(low, axis)
            low = np.take(low, np.arange((n + 1) // 2), axis=axis)
    return low


@pytest.mark.parametrize("shape", [(64, 64), (37, 23), (5, 2), (17, 9, 6)])
def test_low_bands_match_reference(real, shape):
    src = real("mni152_t1_uint8_3d")[60:60 + shape[0], 80:80 + shape[1]]
    arr = src[..., 90] if len(shape) == 2 else src[..., 90:90 + shape[2]]
    arr = (arr.astype(np.int32) * 200 - 20000).astype(np.int16)  # signed, wide range
    enc = pj.encode(arr)
    header = pj.read_header(enc)
    info = np.iinfo(arr.dtype)
    for level in range(1, header.levels + 1):
        expected = np.clip(reference_low_band(arr, level), info.min, info.max)
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
