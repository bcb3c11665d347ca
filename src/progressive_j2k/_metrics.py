"""Error measures of a decode: squared error and PSNR, the PSNR's peak,
and whether a PSNR target on a chunk measures against a peak far above its
values (PSNRPeakWarning)."""
from __future__ import annotations

import math

import numpy as np

from progressive_j2k import _core
from progressive_j2k._dtypes import DTYPE_CODES


def psnr_peak(original: np.ndarray) -> float:
    """2**bits - 1 for integers, the value range for floats."""
    if original.dtype.kind == "f":
        return float(original.max()) - float(original.min()) if original.size else 0.0
    return float(2 ** (8 * original.dtype.itemsize) - 1)


#: Elements per block of squared_error's numpy path: its float64 differences
#: stay in the cache and need no chunk-sized temporaries (a whole-array
#: difference took 3 float64 copies: 24x an 8-bit chunk's size, twice as slow).
ERROR_BLOCK = 1 << 16


#: A psnr target warns (PSNRPeakWarning) on 16- and 32-bit integer chunks
#: whose values span less than NARROW_RANGE_SHARE of the dtype's peak (12-bit
#: microscopy in uint16, CT numbers in int16) where the RMS error it allows
#: is above LOOSE_ERROR_SHARE of that span (a 30 dB target on values that
#: fill their range).  8-bit images fill their range; their dark chunks are
#: what the target asks for.
NARROW_RANGE_SHARE = 1 / 8
LOOSE_ERROR_SHARE = 0.03


def narrow_for_psnr(arr: np.ndarray, target: float) -> bool:
    """Whether a psnr target on this integer chunk measures its errors
    against a peak far above its values and so allows large errors."""
    if arr.dtype.kind not in "iu" or arr.dtype.itemsize < 2 or not arr.size:
        return False
    span, peak = float(arr.max()) - float(arr.min()), psnr_peak(arr)
    allowed_rms = peak * 10 ** (-target / 20)
    return 0 < span < peak * NARROW_RANGE_SHARE and allowed_rms > LOOSE_ERROR_SHARE * span


def narrow_psnr_message(target: float, dtype, remedy: str = "a step or a tolerance") -> str:
    """PSNRPeakWarning's message where narrow_for_psnr holds (encode()'s
    and export's), ending with what to give instead, `remedy`."""
    dtype = np.dtype(dtype)
    return (f"psnr={target:g} is measured against {dtype}'s peak {2 ** (8 * dtype.itemsize) - 1}, "
            f"and these values span less than 1/{round(1 / NARROW_RANGE_SHARE)} of it: the target "
            f"allows RMS errors above {LOOSE_ERROR_SHARE:.0%} of their span. Give such data a "
            f"higher psnr, {remedy}")


def squared_error(decoded: np.ndarray, original: np.ndarray) -> float:
    """The sum of (decoded - original)**2, in float64: in C where both have
    one of the format's dtypes, native and aligned (exact for 8 and 16 bits
    while the sum stays below 2**53; 10x numpy's blocks on 8-bit images),
    else in numpy blocks (e.g. a peer's decode in another dtype)."""
    x, y = decoded.reshape(-1), original.reshape(-1)
    if x.size != y.size:
        raise ValueError(f"squared_error: {x.size} values against {y.size}")
    code = DTYPE_CODES.get(x.dtype) if x.dtype == y.dtype and x.dtype.isnative else None
    if code is not None and all(v.flags.c_contiguous and v.flags.aligned for v in (x, y)):
        return _core.squared_error(x.view(np.uint8), y.view(np.uint8), code)
    difference = np.empty(min(ERROR_BLOCK, x.size))
    total = 0.0
    for start in range(0, x.size, ERROR_BLOCK):
        d = difference[:min(ERROR_BLOCK, x.size - start)]
        np.subtract(x[start:start + d.size], y[start:start + d.size], out=d, dtype=np.float64)
        np.multiply(d, d, out=d)
        total += float(d.sum())   # (not np.dot: BLAS threads cost more than they save here)
    return total


def psnr(decoded: np.ndarray, original: np.ndarray, peak: float | None = None) -> float:
    """PSNR with peak psnr_peak(original) (or `peak`, that value computed once)."""
    if peak is None:
        peak = psnr_peak(original)
    return psnr_of_mse(squared_error(decoded, original) / original.size if original.size else 0.0,
                       peak)


def psnr_of_mse(mse: float, peak: float) -> float:
    if mse == 0.0:
        return math.inf
    return 10 * math.log10(peak**2 / mse) if peak > 0 else -math.inf


def peak_magnitude(arr: np.ndarray) -> float:
    """max |x| without np.abs, which wraps the most negative integer."""
    return max(-float(arr.min()), float(arr.max())) if arr.size else 0.0


def data_quantum(arr: np.ndarray) -> float:
    """The smallest error that changes a value: 1 for integers, the float
    spacing at the largest magnitude for floats."""
    if arr.dtype.kind != "f":
        return 1.0
    return float(np.spacing(arr.dtype.type(peak_magnitude(arr))))
