"""Lossless 8-bit chunks are coded with int16 coefficient buffers (half the
memory of int32): the result must be exactly that of the int32 path, which
the same samples take when stored as int16 (a 16-bit dtype), and anything
int16 cannot hold must fall back to int32."""
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
