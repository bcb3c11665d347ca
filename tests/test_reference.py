"""The optimised C transform against a plain numpy reference of the
definitions (JPEG 2000 Part 1's 5/3, the rounded 5/3 of wavelets 3 and 4,
and 9/7-M; independent code: np.pad symmetric extension, whole arrays, no
strips or lanes)."""
from itertools import product

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import _core, _dtypes
from spec_decoder import ALPHA, BETA, DELTA, GAMMA, K


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


def close_gaps(arr: np.ndarray, gaps) -> np.ndarray:
    """FORMAT.md 2's value gaps closed: each value less the lengths of the
    gaps below it (gaps as the header gives them: the coded value each
    follows, and its length)."""
    closed, below = arr.astype(np.int64), 0
    for after, length in gaps:
        start = after + 1 + below   # (in sample values)
        closed -= np.where(arr >= start, length, 0)
        below += length
    return closed


def open_gaps(coded: np.ndarray, gaps) -> np.ndarray:
    """... and opened: each coded value plus the lengths of the gaps it is above."""
    return coded + sum(np.where(coded > after, length, 0) for after, length in gaps)


#: whether each chunk has value gaps: the CT's always (one), the lattice
#: of values only in the chunk of five distinct values (FORMAT.md 2: at most 4 gaps)
GAPPED = {**{("ct693", shape): True for shape in [(64, 64), (37, 23), (5, 2), (17, 9, 6)]},
          ("mni152", (64, 64)): False, ("mni152", (37, 23)): False,
          ("mni152", (5, 2)): True, ("mni152", (17, 9, 6)): False}


@pytest.mark.parametrize("shape", [(64, 64), (37, 23), (5, 2), (17, 9, 6)])
@pytest.mark.parametrize("source", ["mni152", "ct693"])
def test_low_bands_match_reference(real, shape, source):
    """Every level of lossless streams against the reference low band of the
    samples, and with close_gaps of the samples with their value gaps closed,
    then opened (FORMAT.md 2; a lattice of values keeps its gaps except in a
    tiny chunk, a CT's padding beside its air makes one)."""
    if source == "mni152":
        src = real("mni152_t1_uint8_3d")[60:60 + shape[0], 80:80 + shape[1]]
        arr = src[..., 90] if len(shape) == 2 else src[..., 90:90 + shape[2]]
        arr = (arr.astype(np.int32) * 200 - 20000).astype(np.int16)  # signed, wide range
    else:   # the edge of its field of view: padding (-2000) beside air (about 20)
        ct = real("ct693_int16")
        y, x = 66 - shape[0] // 2, 81 - shape[1] // 2
        arr = ct[y:y + shape[0], x:x + shape[1]]
        if len(shape) == 3:
            arr = np.stack([ct[y:y + shape[0], x + k:x + k + shape[1]]
                            for k in range(shape[2])], axis=-1)
    info = np.iinfo(arr.dtype)
    every = tuple(range(arr.ndim))   # the reference transforms every axis
    levels = pj.read_header(pj.encode(arr, axes=every)).levels
    for wavelet, m97_levels, gaps in product(
            (0, 4), sorted({0, 1, (1 << levels) - 1, 0b10101 & ((1 << levels) - 1)}),
            (False, True)):
        # wavelet 4 (the rounded 5/3) is what encode() writes; 0 (JPEG 2000's) older streams
        prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                                  arr.shape, every, -1, levels, wavelet, 0.0, 0.0, m97_levels,
                                  gaps)
        enc = prepared.encode(0.0)
        header = pj.read_header(enc)
        assert (header.wavelet, header.m97_levels) == (wavelet, m97_levels)
        assert bool(header.gaps) == (gaps and GAPPED[source, shape])
        if wavelet == 4 and m97_levels == 1:
            assert enc == pj.encode(arr, axes=every, m97_levels=1, close_gaps=gaps)
        np.testing.assert_array_equal(pj.decode(enc), arr)
        closed = close_gaps(arr, header.gaps)
        for level in range(1, levels + 1):
            low = reference_low_band(closed, level, m97_levels=m97_levels, rounded=wavelet == 4)
            expected = np.clip(open_gaps(low, header.gaps), info.min, info.max)
            np.testing.assert_array_equal(pj.decode(enc, level=level), expected)


# The forward 9/7 (JPEG 2000 Part 1's lifting, lift97_impl.h's order and
# scaling, the constants of FORMAT.md 4 as the spec decoder has them) in
# numpy, in the encoder's type (float64, or float32 for 8- and 16-bit
# samples, whose constants numpy then rounds to float32 as the C does): bit
# for bit what the encoder computes, since both do the same IEEE operations
# in the same order (no fused multiply-add).


def forward_97_lines(lines: np.ndarray) -> np.ndarray:
    """One forward 9/7 level of every line (last axis, n >= 2): low half
    then high half, whole-sample symmetric at both ends."""
    s, d = lines[..., 0::2].copy(), lines[..., 1::2].copy()
    ns, nd = s.shape[-1], d.shape[-1]

    def around_d():      # s[i] + s[i + 1] for each d[i]; s[ns] = s[ns - 1]
        right = s[..., 1:nd + 1] if ns > nd else np.concatenate([s[..., 1:], s[..., -1:]], axis=-1)
        return s[..., :nd] + right

    def around_s():      # d[i - 1] + d[i] for each s[i]; d[-1] = d[0], d[nd] = d[nd - 1]
        left = np.concatenate([d[..., :1], d[..., :ns - 1]], axis=-1)
        right = d if ns == nd else np.concatenate([d, d[..., -1:]], axis=-1)
        return left + right

    d += ALPHA * around_d()
    s += BETA * around_s()
    d += GAMMA * around_d()
    s += DELTA * around_s()
    return np.concatenate([s * (1.0 / K), d * (K / 2.0)], axis=-1)


def reference_97(arr: np.ndarray, levels: int, store) -> np.ndarray:
    """Every level of the forward 9/7 over all axes of a 3-D array (z, y, x
    in turn, each on the level's corner), computed and stored as `store`
    (float32 for 8- and 16-bit samples), returned as float64."""
    work = arr.astype(store)
    for level in range(levels):
        corner = tuple(slice(0, -(-n // 2 ** level)) for n in arr.shape)
        for axis in range(3):
            if work[corner].shape[axis] >= 2:
                lines = np.moveaxis(work[corner], axis, -1)
                work[corner] = np.moveaxis(forward_97_lines(lines), -1, axis)
    return work.astype(np.float64)


def test_forward_97_matches_reference_with_zero_lines(real):
    """The lossy encoder's coefficients, bit for bit, on a volume's corner:
    its background's all-zero lines (which the transform skips) beside
    tissue, and lines of -0.0 (float input), which it must not skip."""
    corner = real("mni152_t1_uint8_3d")[70:91, 0:37, 30:75]
    assert 0.2 < np.mean(~corner.any(axis=-1)) < 0.9   # zero lines and others
    signed_zeros = corner.astype(np.float64) / 7.0
    signed_zeros[:, 0:4] = -0.0    # whole lines along every axis: they lift to +0.0
    assert np.signbit(signed_zeros[:, 0:4]).all()
    assert not np.signbit(reference_97(signed_zeros, 1, np.float64)[:, 0:2]).any()
    only_signed_zeros = np.full((9, 10, 11), -0.0)   # every pass's lines: +0.0 after
    for arr, store in ((corner, np.float32), (signed_zeros, np.float64),
                       (only_signed_zeros, np.float64)):
        levels = 3
        prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                                  arr.shape, (0, 1, 2), -1, levels, 1, 1.0)
        got = np.empty(prepared.coefficients())
        prepared.coefficients(got)
        expected = reference_97(arr, levels, store)
        np.testing.assert_array_equal(got.view(np.uint64), expected.reshape(-1).view(np.uint64))


@pytest.mark.parametrize("n", range(2, 10))
def test_forward_97_matches_reference_on_short_lines(real, n):
    """The 9/7's sweep along the first two axes (lift97_impl.h) reads rows
    mirrored at any distance from a line's ends: lines of 2 to 9 samples
    along each of them, in strips of 16 or 64 lanes and a partial one, and
    two levels where the second makes lines of 1 to 5."""
    vol = real("mni152_t1_uint8_3d")[60:, 70:, 40:]
    for shape in ((n, 9, 70), (7, n, 67), (n, n, 5)):
        arr = np.ascontiguousarray(vol[:shape[0], :shape[1], :shape[2]])
        assert arr.all()   # tissue: no line is all zeros (those are skipped)
        for data, store in ((arr, np.float32), (arr.astype(np.float64) / 3.0, np.float64)):
            levels = 2
            prepared = _core.Prepared(data.reshape(-1).view(np.uint8),
                                      _dtypes.DTYPE_CODES[data.dtype], data.shape, (0, 1, 2), -1,
                                      levels, 1, 1.0)
            got = np.empty(prepared.coefficients())
            prepared.coefficients(got)
            expected = reference_97(data, levels, store)
            np.testing.assert_array_equal(got.view(np.uint64), expected.reshape(-1).view(np.uint64),
                                          err_msg=f"{shape} {store.__name__}")


def test_crc32c_paths_agree_with_reference():
    google_crc32c = pytest.importorskip("google_crc32c")
    rng = np.random.default_rng(5)
    assert _core.crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C
    for n in (0, 1, 7, 8, 9, 63, 1000, 4099):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        expected = google_crc32c.value(data)
        assert _core.crc32c(data, portable=True) == expected
        assert _core.crc32c(data) == expected
