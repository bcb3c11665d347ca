"""Lossless 8-bit chunks are coded with int16 coefficient buffers (half the
memory of int32): the result must be exactly that of the int32 path, which
the same samples take when stored as int16 (a 16-bit dtype), and anything
int16 cannot hold must fall back to int32.  Lossy values likewise go through
int16 (8-bit samples) or int32 and fall back to int32, then int64."""
import numpy as np
import pytest

import progressive_j2k as pj

from helpers import reseal


def pieces(enc: bytes) -> bytes:
    return enc[pj.read_header(enc).header_length:]


@pytest.mark.parametrize("name, options", [
    ("camera", {}), ("moon", {"levels": 3}), ("astronaut", {"colour_axis": -1}),
    ("mni152_t1_uint8_3d", {}), ("coins", {"layers": 3})])
def test_int16_path_codes_and_decodes_like_int32(real, name, options):
    arr = real(name)
    if arr.ndim == 3 and arr.shape[-1] != 3:
        arr = arr[60:90]
    narrow = pj.encode(arr, **options)                      # uint8: int16 buffers
    wide = pj.encode(arr.astype(np.int16), **options)       # int16 data: int32 buffers
    assert pieces(narrow) == pieces(wide)
    header = pj.read_header(narrow)
    for level in range(header.levels + 1):
        # reduced levels may overshoot 0..255: the uint8 decode clamps
        np.testing.assert_array_equal(pj.decode(narrow, level=level),
                                      pj.decode(wide, level=level).clip(0, 255).astype(np.uint8))
    np.testing.assert_array_equal(pj.decode(narrow), arr)


def test_signed_8bit_extremes(real):
    arr = ((real("camera").astype(np.int16) > 128) * 255 - 128).astype(np.int8)  # +-127/-128
    enc = pj.encode(arr)
    np.testing.assert_array_equal(pj.decode(enc), arr)
    assert pieces(enc) == pieces(pj.encode(arr.astype(np.int16)))


def test_values_beyond_int16_fall_back_to_int32(real):
    """A stream whose coefficients need more than int16 but which the format
    allows for 8-bit data (exponents up to 18): made by relabelling a 16-bit
    stream as uint8.  The decode must equal the int32 decode, clamped."""
    # camera stretched to the whole int16 range: its 5/3 details exceed int16
    big = (real("camera")[:128, :128].astype(np.int32) * 257 - 32768).astype(np.int16)
    enc16 = pj.encode(big)
    header = pj.read_header(enc16)
    forged = bytearray(enc16)
    forged[5] = 0                                   # dtype: uint8
    forged = reseal(bytes(forged), header.levels)
    for level in range(header.levels + 1):
        expected = pj.decode(enc16, level=level).clip(0, 255).astype(np.uint8)
        np.testing.assert_array_equal(pj.decode(forged, level=level), expected)


@pytest.mark.parametrize("name, options", [
    ("camera", {"step": 6.0}),
    ("camera", {"step": 0.01}),                               # beyond int16: int32
    ("astronaut", {"step": 2.0, "rdo": True}),                # colour, RD-optimised
    ("coins", {"step": 1.0, "layers": 3, "rdo": True}),
    ("mni152_t1_uint8_3d", {"step": 4.0, "rdo": True})])
def test_lossy_int16_path_codes_like_int32(real, name, options):
    """The lossy encoder quantises 8-bit samples into int16 (widening to
    int32 where a value needs it); the same samples as uint16 take int32:
    the pieces are the same, byte for byte.  The decoder reads them alike
    (int16 first for 8-bit samples, int32 where a value needs it; both in
    float32), up to the uint8 store's clamp."""
    arr = real(name)
    if arr.ndim == 3 and arr.shape[-1] != 3:
        arr = arr[60:90]
    narrow = pj.encode(arr, reversible=False, **options)
    wide = pj.encode(arr.astype(np.uint16), reversible=False, **options)
    assert pieces(narrow) == pieces(wide)
    header = pj.read_header(narrow)
    for level in (0, 1, header.levels):
        np.testing.assert_array_equal(pj.decode(narrow, level=level),
                                      np.minimum(pj.decode(wide, level=level), 255))


def test_lossy_decodes_narrow_and_falls_back_wide(real):
    """Lossy values of 16-bit and wider samples are decoded into int32 first; quantised values beyond
    int32 (a fine step on large data: the low band's q here is ~8e10) must
    fall back to int64 and still decode to within the step."""
    arr = real("camera").astype(np.float64) * 1e4
    step = 1e-3
    enc = pj.encode(arr, reversible=False, step=step)
    dec = pj.decode(enc)
    assert np.sqrt(np.mean((dec - arr) ** 2)) < 0.6 * step
    coarse = pj.encode(arr, reversible=False, step=1e4)     # fits int32: the narrow path
    assert np.sqrt(np.mean((pj.decode(coarse) - arr) ** 2)) < 0.6 * 1e4


def test_lossy_int32_low_band_near_its_limit():
    """Quantised low-band values near 2**31 (up to 1.7e9 here) sit in int32,
    and the median-edge prediction sums two of them: it must be summed wide.
    fuzz_roundtrip found the overflow (its input is kept in fuzz/regressions/
    and replayed by every fuzz run); Python builds the extension with -fwrapv,
    where the wrapped sum happened to give the right value, so this test
    checks the results, the fuzz replay the arithmetic."""
    rng = np.random.default_rng(2)
    arr = rng.integers(1_500_000_000, 2_600_000_000, (5, 5, 5), dtype=np.uint32)
    dec = pj.decode(pj.encode(arr, reversible=False, step=3.5, levels=1))
    assert np.sqrt(np.mean((dec.astype(float) - arr) ** 2)) < 0.6 * 3.5 + 1
